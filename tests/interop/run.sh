#!/usr/bin/env bash
# Runs the strict-client interop checks (oauth4webapi and jose in Node, authlib in Python)
# against a fresh server on SQLite.
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

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
backend="$("$bin" clients create --name interop --grant-type client_credentials --scope "read write" --json)"
node "$here/client_credentials.mjs" "$issuer" "$(field "$backend" client_id)" "$(field "$backend" client_secret)"

password="correct horse battery"
echo "$password" | "$bin" users create --username interop --password-stdin >/dev/null
redirect="http://localhost:3000/callback"
spa() {
  "$bin" clients create --name "$1" --public --redirect-uri "$redirect" \
    --grant-type authorization_code --grant-type refresh_token --scope "read write" --json
}
node "$here/code_flow.mjs" "$issuer" "$(field "$(spa "Interop SPA")" client_id)" interop "$password" "$redirect"

# authlib, from PyPI, in a throwaway virtual environment.
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$work/venv/bin/python" "$here/authlib_flows.py" "$issuer" \
  "$(field "$backend" client_id)" "$(field "$backend" client_secret)" \
  "$(field "$(spa "Authlib SPA")" client_id)" interop "$password" "$redirect"
