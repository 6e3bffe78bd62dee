"""authlib (Python) against a fresh server: discovery, client_credentials, the access token
verified by joserfc against the JWKS as RFC 9068 asks, introspection and revocation; then the
code flow of a public client with PKCE (requests playing the browser), refresh, and refresh
reuse. Usage: python authlib_flows.py ISSUER CC_ID CC_SECRET SPA_ID USERNAME PASSWORD REDIRECT
"""

import html
import os
import re
import sys
import time
from urllib.parse import parse_qs, urlparse

# The server under test speaks plain http on loopback.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402

issuer, cc_id, cc_secret, spa_id, username, password, redirect_uri = sys.argv[1:8]
passed = 0


def check(condition, what):
    global passed
    if not condition:
        raise AssertionError(what)
    passed += 1


metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
check(metadata["issuer"] == issuer, "discovery names the issuer")

# client_credentials with client_secret_basic.
backend = OAuth2Session(cc_id, cc_secret, scope="read", token_endpoint_auth_method="client_secret_basic")
token = backend.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
check(token["token_type"].lower() == "bearer" and token["scope"] == "read", f"a token: {token}")

# RFC 9068: verify the JWT against the published keys and check its claims.
keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
decoded = jwt.decode(token["access_token"], keys, algorithms=["RS256"])
check(decoded.header["typ"].lower() == "at+jwt", "typ is at+jwt")
jwt.JWTClaimsRegistry(
    iss={"essential": True, "value": issuer},
    exp={"essential": True},
    client_id={"essential": True, "value": cc_id},
).validate(decoded.claims)
check(decoded.claims["exp"] > time.time(), "the token has not expired")

# Introspection and revocation with the same client.
answer = backend.introspect_token(metadata["introspection_endpoint"], token=token["access_token"]).json()
check(answer["active"] is True and answer["client_id"] == cc_id, f"introspection: {answer}")
revoked = backend.revoke_token(metadata["revocation_endpoint"], token=token["access_token"])
check(revoked.status_code == 200, "revocation answers 200")
answer = backend.introspect_token(metadata["introspection_endpoint"], token=token["access_token"]).json()
check(answer == {"active": False}, f"revoked token is inactive: {answer}")

# The code flow: a public client with PKCE (S256).
spa = OAuth2Session(
    spa_id,
    redirect_uri=redirect_uri,
    scope="read",
    code_challenge_method="S256",
    token_endpoint_auth_method="none",
)
verifier = generate_token(48)
url, state = spa.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)

browser = requests.Session()


def hidden(page, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    check(match is not None, f"the page has a {name} field")
    return html.unescape(match.group(1))


login = browser.get(url, timeout=10).text
signed_in = browser.post(
    f"{issuer}/login",
    data={
        "username": username,
        "password": password,
        "csrf": hidden(login, "csrf"),
        "continue": hidden(login, "continue"),
    },
    allow_redirects=False,
    timeout=10,
)
check(signed_in.status_code == 303, "sign-in redirects")
consent = browser.get(url, timeout=10).text
answered = browser.post(
    f"{issuer}/authorize",
    data={"request": hidden(consent, "request"), "csrf": hidden(consent, "csrf"), "decision": "allow"},
    allow_redirects=False,
    timeout=10,
)
location = answered.headers["location"]
check(location.startswith(redirect_uri), f"back to the app: {location}")
query = parse_qs(urlparse(location).query)
check(query["iss"] == [issuer], "RFC 9207: iss in the authorization response")
check(query["state"] == [state], "state comes back")

tokens = spa.fetch_token(
    metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
)
check("refresh_token" in tokens and tokens["scope"] == "read", f"tokens: {tokens}")
first = tokens["refresh_token"]
refreshed = spa.refresh_token(metadata["token_endpoint"], refresh_token=first)
check(refreshed["refresh_token"] != first, "refresh rotates the refresh token")
retried = spa.refresh_token(metadata["token_endpoint"], refresh_token=first)
check(retried["refresh_token"] == refreshed["refresh_token"], "a retry gets the same successor")
spa.refresh_token(metadata["token_endpoint"], refresh_token=refreshed["refresh_token"])
try:
    spa.refresh_token(metadata["token_endpoint"], refresh_token=first)
    check(False, "reusing a refresh token after its successor was used is refused")
except OAuthError as e:
    check(e.error == "invalid_grant", f"reuse is invalid_grant: {e.error}")

print(f"authlib: {passed} passed, 0 failed")
