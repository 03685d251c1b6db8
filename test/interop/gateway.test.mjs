// The official MCP TypeScript SDK through `kavach gateway` to an upstream
// mcp-go server (./upstream): the SDK finds Kavach from the gateway's
// 401 and metadata, gets a client_credentials token for the gateway's URL
// (its ClientCredentialsProvider), sees only the tools the agent may call,
// is refused a tool outside its grants, and a tool that needs approval
// waits until the owner approves it.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { baseURL, signUp } from './browser.mjs';

const gatewayURL = process.env.KAVACH_INTEROP_GATEWAY_URL;
const TIMEOUT = 60_000;

// api calls Kavach's JSON API as the signed-in browser.
async function api(browser, method, path, body) {
  const res = await fetch(`${baseURL}${path}`, {
    method,
    headers: { Cookie: browser.cookie, Origin: baseURL, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  return { status: res.status, data: json.data, error: json.error };
}

describe('MCP TypeScript SDK through kavach gateway', () => {
  test('client_credentials, filtered tools, a refused call, a call that waits for approval', { timeout: TIMEOUT }, async () => {
    assert.ok(gatewayURL, 'KAVACH_INTEROP_GATEWAY_URL is not set: run the tests with `node run.mjs`');
    const owner = await signUp('gateway-owner');
    const created = await api(owner, 'POST', '/api/auth/agents', {
      name: 'gateway agent',
      permissions: [
        { resource: 'mcp:files:read_file', actions: ['call'] },
        { resource: 'mcp:files:deploy', actions: ['call'], constraints: { requireApproval: true } },
      ],
    });
    assert.equal(created.status, 201, JSON.stringify(created));
    const agentID = created.data.agent.id;
    const client = await api(owner, 'POST', `/api/auth/agents/${agentID}/oauth-client`, { scope: 'mcp' });
    assert.equal(client.status, 201, JSON.stringify(client));

    const provider = new ClientCredentialsProvider({
      clientId: client.data.clientId,
      clientSecret: client.data.clientSecret,
      scope: 'mcp',
      // Credentials go only to this issuer, whatever the metadata says.
      expectedIssuer: baseURL,
    });
    const mcp = new Client({ name: 'kavach-interop-gateway', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(gatewayURL), { authProvider: provider }));
    try {
      const token = provider.tokens()?.access_token;
      assert.ok(token, 'the SDK got no token');
      const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
      assert.equal(claims.aud, gatewayURL, 'the token is for the gateway (RFC 8707 resource)');

      const { tools } = await mcp.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['deploy', 'read_file']);

      const read = await mcp.callTool({ name: 'read_file', arguments: { path: '/etc/motd' } });
      assert.equal(read.isError ?? false, false, JSON.stringify(read));
      assert.equal(read.content[0].text, 'read_file done');

      const secret = await mcp.callTool({ name: 'secret_tool', arguments: {} });
      assert.equal(secret.isError, true, JSON.stringify(secret));
      assert.match(secret.content[0].text, /^PERMISSION_DENIED/);

      // deploy waits at the gateway until the owner approves.
      const approver = (async () => {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const list = await api(owner, 'GET', '/api/auth/approvals');
          const pending = list.data?.approvals?.find((a) => a.agentId === agentID && a.status === 'pending');
          if (pending) {
            const ok = await api(owner, 'POST', `/api/auth/approvals/${pending.id}/approve`, { mode: 'once' });
            assert.equal(ok.status, 200, JSON.stringify(ok));
            return pending.id;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error('no approval request appeared');
      })();
      const deploy = await mcp.callTool({ name: 'deploy', arguments: { env: 'prod' } });
      await approver;
      assert.equal(deploy.isError ?? false, false, JSON.stringify(deploy));
      assert.equal(deploy.content[0].text, 'deploy done');
    } finally {
      await mcp.close();
    }
  });
});
