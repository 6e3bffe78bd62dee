#!/usr/bin/env bash
# Runs the strict-client interop check against a fresh server on SQLite.
# Usage: tests/interop/run.sh PATH_TO_PORTCULLIS_BINARY
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(realpath "$1")"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

(cd "$here" && npm ci --no-audit --no-fund --silent)

export PORTCULLIS_DATABASE_URL="sqlite://$work/interop.db" PORTCULLIS_KEYS_DIR="$work/keys"
"$bin" serve --bind 127.0.0.1:0 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
issuer="$(sed -n 's/.*listening on .*, issuer \(.*\)$/\1/p' "$work/server.log" | head -n 1)"
[ -n "$issuer" ] || { cat "$work/server.log"; exit 1; }

client="$("$bin" clients create --name interop --grant-type client_credentials --scope "read write" --json)"
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$client" "$1"; }
node "$here/client_credentials.mjs" "$issuer" "$(field client_id)" "$(field client_secret)"

echo "correct horse battery" | "$bin" users create --username interop --password-stdin >/dev/null
redirect="http://localhost:3000/callback"
client="$("$bin" clients create --name "Interop SPA" --public --redirect-uri "$redirect" \
  --grant-type authorization_code --grant-type refresh_token --scope "read write" --json)"
node "$here/code_flow.mjs" "$issuer" "$(field client_id)" interop "correct horse battery" "$redirect"
