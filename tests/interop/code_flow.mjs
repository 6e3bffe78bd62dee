// The authorization-code flow through oauth4webapi, with fetch playing the browser:
// PKCE, RFC 9207 `iss` validation of the authorization response, the code exchange, refresh,
// and revocation. Usage: node code_flow.mjs ISSUER CLIENT_ID USERNAME PASSWORD REDIRECT_URI
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'

const [issuerUrl, clientId, username, password, redirectUri] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true }
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }),
)
const client = { client_id: clientId, token_endpoint_auth_method: 'none' }
const auth = oauth.None()

const verifier = oauth.generateRandomCodeVerifier()
const challenge = await oauth.calculatePKCECodeChallenge(verifier)
const state = oauth.generateRandomState()
const authorize = new URL(as.authorization_endpoint)
for (const [k, v] of Object.entries({
  response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'read',
  state, code_challenge: challenge, code_challenge_method: 'S256',
})) authorize.searchParams.set(k, v)

// A tiny browser: a cookie jar and manual redirects.
const jar = new Map()
async function browse(url, form) {
  const response = await fetch(url, {
    method: form ? 'POST' : 'GET',
    redirect: 'manual',
    headers: {
      cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
      ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    body: form ? new URLSearchParams(form) : undefined,
  })
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(';')
    const [name, value] = pair.split('=')
    jar.set(name, value)
  }
  return response
}
const field = (html, name) => {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`))
  assert.ok(match, `field ${name}`)
  return match[1].replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&')
}

const login = await (await browse(authorize)).text()
const signedIn = await browse(new URL('/login', issuer), {
  username, password, csrf: field(login, 'csrf'), continue: field(login, 'continue'),
})
assert.equal(signedIn.status, 303)
const consent = await (await browse(authorize)).text()
const decision = await browse(new URL('/authorize', issuer), {
  request: field(consent, 'request'), csrf: field(consent, 'csrf'), decision: 'allow',
})
assert.equal(decision.status, 303)
const callback = new URL(decision.headers.get('location'))

// RFC 9207: oauth4webapi checks `iss` against the discovered issuer, and `state`.
const params = oauth.validateAuthResponse(as, client, callback, state)
const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, insecure)
const tokens = await oauth.processAuthorizationCodeResponse(as, client, response)
assert.equal(tokens.scope, 'read')
assert.ok(tokens.refresh_token)

const refreshed = await oauth.processRefreshTokenResponse(
  as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure),
)
assert.notEqual(refreshed.refresh_token, tokens.refresh_token)

// A retry within the window (a lost response) gets the same successor.
const retried = await oauth.processRefreshTokenResponse(
  as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure),
)
assert.equal(retried.refresh_token, refreshed.refresh_token)

// Once the successor is used, the rotated token is reuse: invalid_grant, as a strict client sees it.
await oauth.processRefreshTokenResponse(
  as, client, await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token, insecure),
)
const reused = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure)
await assert.rejects(oauth.processRefreshTokenResponse(as, client, reused), (e) => e.error === 'invalid_grant')

await oauth.processRevocationResponse(
  await oauth.revocationRequest(as, client, auth, refreshed.access_token, insecure),
)
console.log('interop code flow: 6 passed, 0 failed')
