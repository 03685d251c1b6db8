// The official MCP TypeScript SDK (v1) as a client of Kavach's protected
// /mcp endpoint: 401 → RFC 9728 resource metadata → RFC 8414 metadata →
// RFC 7591 registration → authorize (sign-up cookie + consent) → token →
// tools/list → whoami; then the SDK's refresh path with rotation.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { baseURL, mcpURL, postForm, redirectURI, signUp } from './browser.mjs';

const TIMEOUT = 20_000;

/**
 * An in-memory OAuthClientProvider whose "browser" is a signed-in fetch
 * session: redirectToAuthorization walks sign-in and consent and keeps
 * the code for finishAuth.
 */
class MemoryOAuthProvider {
  constructor(browser) {
    this.browser = browser;
    this.authorizationURLs = [];
    this.code = undefined;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this._discovery = undefined;
  }

  get redirectUrl() {
    return redirectURI;
  }

  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK interop test',
      redirect_uris: [redirectURI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    return this._verifier;
  }

  // Keeping discovery results spares finishAuth a second round of
  // metadata requests, as a real client would.
  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }

  async redirectToAuthorization(url) {
    this.authorizationURLs.push(url);
    const back = await this.browser.authorize(url);
    // SDK v1 does not check RFC 9207 iss or state itself; a real client
    // would, so the test does.
    assert.equal(back.searchParams.get('error'), null, `authorization error: ${back}`);
    assert.equal(back.searchParams.get('state'), this._state, 'state round-trip');
    assert.equal(back.searchParams.get('iss'), baseURL, 'RFC 9207 iss');
    this.code = back.searchParams.get('code');
    assert.ok(this.code, `no code in ${back}`);
  }
}

/** recordingFetch logs method, path and status of every request the SDK makes. */
function recordingFetch(log) {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : input);
    log.push(`${init?.method ?? 'GET'} ${url.pathname} ${res.status}`);
    return res;
  };
}

async function connect(provider, fetchFn) {
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider, fetch: fetchFn });
  const client = new Client({ name: 'kavach-interop', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

async function whoami(client) {
  const res = await client.callTool({ name: 'whoami', arguments: {} });
  assert.ok(!res.isError, `whoami failed: ${JSON.stringify(res)}`);
  // Kavach declares an output schema; the SDK validated structuredContent against it.
  assert.ok(res.structuredContent, `whoami has no structured content: ${JSON.stringify(res)}`);
  return res.structuredContent;
}

describe('@modelcontextprotocol/sdk client', () => {
  test('full flow: 401 → discovery → registration → authorize → token → tools/list → whoami', { timeout: TIMEOUT }, async () => {
    const browser = await signUp('sdk-user');
    const provider = new MemoryOAuthProvider(browser);
    const log = [];

    // First attempt: the SDK meets the 401, discovers, registers and sends
    // the "browser" to authorize; connect fails until the code is redeemed.
    const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider, fetch: recordingFetch(log) });
    await assert.rejects(new Client({ name: 'kavach-interop', version: '1.0.0' }).connect(transport), UnauthorizedError);
    assert.equal(provider.authorizationURLs.length, 1, 'one trip to the authorization endpoint');
    const authURL = provider.authorizationURLs[0];
    assert.equal(authURL.origin + authURL.pathname, `${baseURL}/api/auth/oauth2/authorize`);
    assert.equal(authURL.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authURL.searchParams.get('resource'), mcpURL, 'RFC 8707 resource from the resource metadata');
    assert.equal(authURL.searchParams.get('scope'), 'mcp', 'scope from the WWW-Authenticate challenge');
    assert.ok(provider.clientInformation()?.client_id, 'dynamically registered');

    await transport.finishAuth(provider.code);
    assert.ok(provider.tokens()?.access_token, 'tokens saved');
    assert.deepEqual(log, [
      'POST /mcp 401',
      'GET /.well-known/oauth-protected-resource/mcp 200',
      'GET /.well-known/oauth-authorization-server 200',
      'POST /api/auth/oauth2/register 201',
      'POST /api/auth/oauth2/token 200',
    ]);

    const client = await connect(provider);
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'whoami'), `tools/list: ${tools.map((t) => t.name)}`);
      const me = await whoami(client);
      assert.equal(me.principal, browser.userID);
      assert.equal(me.client_id, provider.clientInformation().client_id);
      assert.deepEqual(me.audience, [mcpURL]);
      assert.ok(me.scopes.includes('mcp'), `scopes ${me.scopes}`);
    } finally {
      await client.close();
    }
  });

  test('refresh through the SDK rotates the refresh token and rejects the old one', { timeout: TIMEOUT }, async (t) => {
    const browser = await signUp('sdk-refresh');
    const provider = new MemoryOAuthProvider(browser);

    // The transport requests exactly the challenge's scope ("mcp"), and
    // Kavach issues refresh tokens only for offline_access, so ask for it
    // through the SDK's own auth() entry point (same discovery, DCR, PKCE).
    assert.equal(await auth(provider, { serverUrl: mcpURL, scope: 'mcp offline_access' }), 'REDIRECT');
    assert.equal(await auth(provider, { serverUrl: mcpURL, authorizationCode: provider.code }), 'AUTHORIZED');
    const first = provider.tokens();
    assert.ok(first.refresh_token, `no refresh token for offline_access: ${JSON.stringify(first)}`);

    const client = await connect(provider);
    try {
      assert.equal((await whoami(client)).principal, browser.userID);
    } finally {
      await client.close();
    }

    // With a stored refresh token and no code, auth() takes the refresh path.
    assert.equal(await auth(provider, { serverUrl: mcpURL }), 'AUTHORIZED');
    const second = provider.tokens();
    assert.notEqual(second.access_token, first.access_token, 'new access token');
    assert.ok(second.refresh_token, 'refresh response carries a refresh token');
    assert.notEqual(second.refresh_token, first.refresh_token, 'refresh token rotated');

    const refreshed = await connect(provider);
    try {
      assert.equal((await whoami(refreshed)).principal, browser.userID);
    } finally {
      await refreshed.close();
    }

    await t.test('the rotated-out refresh token is rejected with invalid_grant', async () => {
      const res = await postForm('/api/auth/oauth2/token', {
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token,
        client_id: provider.clientInformation().client_id,
        resource: mcpURL,
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error, 'invalid_grant');
    });

    await t.test('reusing it revoked the whole grant: the newest tokens are dead too', async () => {
      const res = await postForm('/api/auth/oauth2/token', {
        grant_type: 'refresh_token',
        refresh_token: second.refresh_token,
        client_id: provider.clientInformation().client_id,
        resource: mcpURL,
      });
      assert.equal(res.body.error, 'invalid_grant', `refresh with the newest token after reuse: ${res.status} ${JSON.stringify(res.body)}`);
      const mcp = await fetch(mcpURL, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${second.access_token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      await mcp.body?.cancel();
      assert.equal(mcp.status, 401, 'the access token of the revoked grant is refused at /mcp');
    });
  });
});
