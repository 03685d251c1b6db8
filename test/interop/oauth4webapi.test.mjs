// oauth4webapi (panva's strict, spec-following client) against Kavach:
// discovery, the code flow with PKCE, state and RFC 9207 iss, RFC 9068 JWT
// access tokens checked against our JWKS, refresh rotation,
// client_credentials with a secret and with private_key_jwt, RFC 7662
// introspection and RFC 7009 revocation. Every client is registered with
// RFC 7591 dynamic registration.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';

import * as oauth from 'oauth4webapi';

import { baseURL, mcpURL, redirectURI, signUp } from './browser.mjs';

const TIMEOUT = 20_000;
// Kavach listens on http://127.0.0.1 in this test; oauth4webapi refuses
// plain http unless told.
const insecure = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(baseURL);

let as; // authorization server metadata
let browser; // a signed-in user

before(async () => {
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
  as = await oauth.processDiscoveryResponse(issuer, res);
  browser = await signUp('o4w-user');
});

async function register(metadata) {
  const res = await oauth.dynamicClientRegistrationRequest(as, { client_name: `oauth4webapi ${randomUUID()}`, ...metadata }, insecure);
  return oauth.processDynamicClientRegistrationResponse(res);
}

function registerPublicClient() {
  return register({
    redirect_uris: [redirectURI],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'mcp offline_access',
  });
}

// An ES256 key pair made with WebCrypto; the public half goes into the
// registration as an inline JWK set.
async function es256Key() {
  const { privateKey, publicKey } = await oauth.generateKeyPair('ES256');
  const kid = randomUUID();
  const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid, alg: 'ES256', use: 'sig' };
  delete jwk.key_ops;
  delete jwk.ext;
  return { privateKey: { key: privateKey, kid }, jwks: { keys: [jwk] } };
}

/** codeFlow runs authorize (as the signed-in browser) and the code exchange. */
async function codeFlow(client, scope = 'mcp offline_access') {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: redirectURI,
    response_type: 'code',
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    resource: mcpURL,
  }).toString();
  const callback = await browser.authorize(url);
  // Checks state and, because the metadata says it is supported, that iss
  // is present and equals the issuer (RFC 9207).
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectURI, verifier, {
    additionalParameters: { resource: mcpURL },
    ...insecure,
  });
  assert.match(res.headers.get('cache-control') ?? '', /no-store/, 'token responses are Cache-Control: no-store');
  return { callback, tokens: await oauth.processAuthorizationCodeResponse(as, client, res) };
}

/** validateAccessToken checks a token as a resource server for /mcp would (RFC 9068). */
function validateAccessToken(token) {
  const request = new Request(mcpURL, { headers: { Authorization: `Bearer ${token}` } });
  return oauth.validateJwtAccessToken(as, request, mcpURL, insecure);
}

async function refresh(client, refreshToken) {
  const res = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshToken, {
    additionalParameters: { resource: mcpURL },
    ...insecure,
  });
  return oauth.processRefreshTokenResponse(as, client, res);
}

async function clientCredentials(client, clientAuth) {
  const res = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, { scope: 'mcp', resource: mcpURL }, insecure);
  return oauth.processClientCredentialsResponse(as, client, res);
}

async function introspect(client, clientAuth, token) {
  const res = await oauth.introspectionRequest(as, client, clientAuth, token, insecure);
  return oauth.processIntrospectionResponse(as, client, res);
}

async function revoke(client, clientAuth, token) {
  const res = await oauth.revocationRequest(as, client, clientAuth, token, insecure);
  return oauth.processRevocationResponse(res);
}

// expectOAuthError awaits a request that must fail with an OAuth error
// code. oauth4webapi reports one either as a ResponseBodyError or — when the
// server also sends WWW-Authenticate, as RFC 6749 §5.2 requires after failed
// HTTP Basic client authentication — as a WWWAuthenticateChallengeError
// whose response body holds the error.
async function expectOAuthError(promise, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `want OAuth error ${code}, got success`);
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const body = await err.response.json();
    assert.equal(body.error, code, `${body.error}: ${body.error_description}`);
    return;
  }
  assert.ok(err instanceof oauth.ResponseBodyError, `want an OAuth error response, got ${err}`);
  assert.equal(err.error, code, `${err.error}: ${err.error_description}`);
}

describe('oauth4webapi', () => {
  test('discovery: issuer, iss support, S256, and the /mcp resource metadata', { timeout: TIMEOUT }, async () => {
    // processDiscoveryResponse already required issuer === the URL we asked.
    assert.equal(as.issuer, baseURL);
    assert.equal(as.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(as.response_types_supported, ['code']);
    for (const m of ['none', 'client_secret_basic', 'private_key_jwt']) {
      assert.ok(as.token_endpoint_auth_methods_supported.includes(m), `token_endpoint_auth_methods_supported lacks ${m}`);
    }

    const res = await oauth.resourceDiscoveryRequest(new URL(mcpURL), insecure);
    const rs = await oauth.processResourceDiscoveryResponse(new URL(mcpURL), res);
    assert.deepEqual(rs.authorization_servers, [baseURL]);
    assert.ok(rs.scopes_supported.includes('mcp'));
  });

  test('authorization code flow with PKCE, state and iss; JWT access token; refresh rotation', { timeout: TIMEOUT }, async (t) => {
    const client = await registerPublicClient();
    const { callback, tokens } = await codeFlow(client);
    assert.equal(callback.searchParams.get('iss'), baseURL);
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(tokens.refresh_token, 'offline_access yields a refresh token');

    await t.test('the access token is an RFC 9068 JWT for the /mcp resource, verified with the JWKS', async () => {
      const claims = await validateAccessToken(tokens.access_token);
      assert.equal(claims.iss, baseURL);
      assert.equal(claims.sub, browser.userID);
      assert.equal(claims.client_id, client.client_id);
      assert.ok(claims.aud === mcpURL || (Array.isArray(claims.aud) && claims.aud.includes(mcpURL)), `aud ${claims.aud}`);
      assert.equal(typeof claims.scope, 'string', 'scope is a space-separated string');
      assert.deepEqual(claims.scope.split(' ').sort(), ['mcp', 'offline_access']);
      assert.equal(typeof claims.auth_time, 'number', 'auth_time is known for a human sign-in');
    });

    await t.test('refresh rotates, and the old refresh token is then rejected', async () => {
      const next = await refresh(client, tokens.refresh_token);
      assert.ok(next.refresh_token, 'a new refresh token');
      assert.notEqual(next.refresh_token, tokens.refresh_token);
      assert.notEqual(next.access_token, tokens.access_token);
      const claims = await validateAccessToken(next.access_token);
      assert.equal(claims.sub, browser.userID);

      await expectOAuthError(refresh(client, tokens.refresh_token), 'invalid_grant');
    });
  });

  test('client_credentials with client_secret_basic (registered by DCR)', { timeout: TIMEOUT }, async () => {
    const client = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp' });
    assert.ok(client.client_secret, 'a confidential client gets a secret');
    const tokens = await clientCredentials(client, oauth.ClientSecretBasic(client.client_secret));
    assert.equal(tokens.refresh_token, undefined, 'no refresh token for client_credentials');
    const claims = await validateAccessToken(tokens.access_token);
    assert.equal(claims.client_id, client.client_id);
    assert.equal(claims.sub, client.client_id, 'RFC 9068 §2.2: sub is the client when no user is involved');
    assert.equal(claims.scope, 'mcp');

    await expectOAuthError(clientCredentials(client, oauth.ClientSecretBasic('not-the-secret')), 'invalid_client');
  });

  test('client_credentials with private_key_jwt (DCR with an inline ES256 jwks)', { timeout: TIMEOUT }, async () => {
    const key = await es256Key();
    const client = await register({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: key.jwks,
      scope: 'mcp',
    });
    assert.equal(client.client_secret, undefined, 'a private_key_jwt client gets no secret');
    // oauth4webapi's assertion: iss = sub = client_id, aud = the issuer
    // identifier (RFC 7523 §3 allows any value identifying the AS;
    // draft-ietf-oauth-rfc7523bis requires the issuer).
    const tokens = await clientCredentials(client, oauth.PrivateKeyJwt(key.privateKey));
    const claims = await validateAccessToken(tokens.access_token);
    assert.equal(claims.client_id, client.client_id);
    assert.equal(claims.scope, 'mcp');

    // Someone else's key is refused.
    const other = await es256Key();
    await expectOAuthError(clientCredentials(client, oauth.PrivateKeyJwt(other.privateKey)), 'invalid_client');
  });

  test('private_key_jwt client registered without token_endpoint_auth_signing_alg may sign with ES256', { timeout: TIMEOUT }, async () => {
    // OpenID Connect Dynamic Registration §2: when the alg is omitted, "any
    // algorithm supported by the OP and the RP MAY be used".
    const key = await es256Key();
    const client = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: key.jwks, scope: 'mcp' });
    const tokens = await clientCredentials(client, oauth.PrivateKeyJwt(key.privateKey));
    await validateAccessToken(tokens.access_token);
  });

  test('introspection is active, then inactive after revoking the access token', { timeout: TIMEOUT }, async () => {
    const client = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp' });
    const basic = oauth.ClientSecretBasic(client.client_secret);
    const { access_token: token } = await clientCredentials(client, basic);

    const live = await introspect(client, basic, token);
    assert.equal(live.active, true, JSON.stringify(live));
    assert.equal(live.client_id, client.client_id);
    assert.equal(live.scope, 'mcp');
    assert.ok(live.aud === mcpURL || (Array.isArray(live.aud) && live.aud.includes(mcpURL)), `aud ${live.aud}`);
    assert.equal(typeof live.exp, 'number');

    await revoke(client, basic, token);
    const dead = await introspect(client, basic, token);
    assert.equal(dead.active, false, JSON.stringify(dead));
  });

  test('revoking a refresh token makes its access token inactive', { timeout: TIMEOUT }, async () => {
    const client = await registerPublicClient();
    const { tokens } = await codeFlow(client);
    // Introspection of another client's tokens is for operator-registered
    // resource servers only, and a public client cannot authenticate; so
    // the resource server itself (/mcp) and the token endpoint tell.
    const mcpStatus = async (token) => {
      const res = await fetch(`${baseURL}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      });
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await mcpStatus(tokens.access_token), 200);

    await revoke(client, oauth.None(), tokens.refresh_token);

    assert.equal(await mcpStatus(tokens.access_token), 401, 'access token after revoking its refresh token');
    await expectOAuthError(refresh(client, tokens.refresh_token), 'invalid_grant');
  });

  test('introspection accepts every advertised introspection_endpoint_auth_method', { timeout: TIMEOUT }, async (t) => {
    const secretClient = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp' });
    const { access_token: token } = await clientCredentials(secretClient, oauth.ClientSecretBasic(secretClient.client_secret));
    const advertised = as.introspection_endpoint_auth_methods_supported ?? [];

    // Another (dynamically registered) client sees someone else's token as
    // inactive: introspection is no oracle for strangers.
    const stranger = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp' });
    const seen = await introspect(stranger, oauth.ClientSecretBasic(stranger.client_secret), token);
    assert.equal(seen.active, false, JSON.stringify(seen));

    await t.test('client_secret_post', { skip: !advertised.includes('client_secret_post') && 'not advertised' }, async () => {
      const client = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post', scope: 'mcp' });
      // A client may introspect its own tokens.
      const own = await clientCredentials(client, oauth.ClientSecretPost(client.client_secret));
      const res = await introspect(client, oauth.ClientSecretPost(client.client_secret), own.access_token);
      assert.equal(res.active, true, JSON.stringify(res));
    });

    await t.test('private_key_jwt', { skip: !advertised.includes('private_key_jwt') && 'not advertised' }, async () => {
      const key = await es256Key();
      const client = await register({
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: key.jwks,
        scope: 'mcp',
      });
      const own = await clientCredentials(client, oauth.PrivateKeyJwt(key.privateKey));
      const res = await introspect(client, oauth.PrivateKeyJwt(key.privateKey), own.access_token);
      assert.equal(res.active, true, JSON.stringify(res));
    });
  });
});
