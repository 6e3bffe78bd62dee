// A strict client and a strict resource server against a running Portcullis:
// oauth4webapi discovers the server (RFC 8414), gets a client_credentials token, and validates
// it as an RFC 9068 access token; jose verifies it against the JWKS. Exits non-zero on any
// deviation. Usage: node client_credentials.mjs ISSUER CLIENT_ID CLIENT_SECRET
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import * as jose from 'jose'

const [issuerUrl, clientId, clientSecret] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true } // the test server is plain http
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }),
)
const client = { client_id: clientId }

const response = await oauth.clientCredentialsGrantRequest(
  as, client, oauth.ClientSecretBasic(clientSecret), new URLSearchParams({ scope: 'read' }), insecure,
)
const tokens = await oauth.processClientCredentialsResponse(as, client, response)
assert.equal(tokens.token_type, 'bearer')
assert.equal(tokens.scope, 'read')

const request = new Request('https://rs.example/', {
  headers: { authorization: `Bearer ${tokens.access_token}` },
})
const claims = await oauth.validateJwtAccessToken(as, request, as.issuer, insecure)
assert.equal(claims.client_id, clientId)

const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri))
const { payload } = await jose.jwtVerify(tokens.access_token, jwks, {
  issuer: as.issuer, audience: as.issuer, typ: 'at+jwt',
})
assert.equal(payload.sub, clientId)

// A wrong secret: 401 with a Basic challenge that oauth4webapi can parse.
const refused = await oauth.clientCredentialsGrantRequest(
  as, client, oauth.ClientSecretBasic('wrong'), new URLSearchParams(), insecure,
)
await assert.rejects(oauth.processClientCredentialsResponse(as, client, refused), (error) => {
  assert.equal(error.constructor.name, 'WWWAuthenticateChallengeError')
  assert.equal(error.status, 401)
  assert.equal(error.cause[0].scheme, 'basic')
  return true
})
console.log('interop: 4 passed, 0 failed')
