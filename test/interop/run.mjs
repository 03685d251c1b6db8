// Runs the interop tests against a freshly built and started `kavach serve`:
// build the binary, start it on a free loopback port with a throwaway
// SQLite database, wait for /readyz, run every *.test.mjs here with node's
// test runner, and stop the server whatever happens. Exits with the test
// runner's status, so CI fails when a test does.
//
// Beside it run an upstream MCP server (./upstream, no OAuth of its own)
// and `kavach gateway` in front of it, on the same database, for
// gateway.test.mjs.
//
//   node run.mjs                # all tests
//   node run.mjs mcp-sdk.test.mjs  # some of them
//
// KAVACH_INTEROP_KEEP=1 keeps the temporary directory (database, server log).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const work = mkdtempSync(join(tmpdir(), 'kavach-interop-'));
const serverLog = join(work, 'server.log');

let server;
let helpers = []; // the upstream and the gateway
let tests;

function log(msg) {
  console.log(`[interop] ${msg}`);
}

function build() {
  log('go build ./cmd/kavach ./test/interop/upstream');
  const bin = join(work, 'kavach');
  let r = spawnSync('go', ['build', '-o', bin, './cmd/kavach'], { cwd: repoRoot, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`go build failed (status ${r.status ?? r.signal})`);
  r = spawnSync('go', ['build', '-o', join(work, 'upstream'), './test/interop/upstream'], { cwd: repoRoot, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`go build of the upstream failed (status ${r.status ?? r.signal})`);
  return bin;
}

// waitReady polls url until it answers 2xx, or the process exits, or 20 s.
async function waitReady(name, proc, url) {
  let exited = null;
  proc.once('exit', (code, signal) => { exited = signal ?? code; });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`${name} exited (${exited}) before it was ready`);
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not become ready within 20 s`);
}

// startHelpers starts the upstream MCP server and the gateway in front of
// it, logging to the server log.
async function startHelpers(bin, env, gatewayPort, upstreamPort) {
  const out = openSync(serverLog, 'a');
  const upstream = spawn(join(work, 'upstream'), [], {
    cwd: work, stdio: ['ignore', out, out],
    env: { ...process.env, UPSTREAM_LISTEN: `127.0.0.1:${upstreamPort}`, UPSTREAM_KEY: 'interop-upstream-key' },
  });
  helpers.push(upstream);
  await waitReady('upstream', upstream, `http://127.0.0.1:${upstreamPort}/healthz`);
  const gatewayURL = `http://127.0.0.1:${gatewayPort}/mcp`;
  const gateway = spawn(bin, ['gateway', '--upstream', `http://127.0.0.1:${upstreamPort}/mcp`, '--public-url', gatewayURL,
    '--server-name', 'files', '--gateway-listen', `127.0.0.1:${gatewayPort}`, '--upstream-header', 'X-Upstream-Key: interop-upstream-key',
    '--approval-wait', '30s'], { cwd: work, stdio: ['ignore', out, out], env });
  helpers.push(gateway);
  await waitReady('kavach gateway', gateway, `http://127.0.0.1:${gatewayPort}/.well-known/oauth-protected-resource/mcp`);
  log(`kavach gateway ready at ${gatewayURL}`);
  return gatewayURL;
}

// freePort asks the kernel for an unused port. Another process could take
// it before kavach binds it; the server then fails to start and we say so.
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function startServer(bin) {
  const port = await freePort();
  const gatewayPort = await freePort();
  const upstreamPort = await freePort();
  const baseURL = `http://127.0.0.1:${port}`;
  const out = openSync(serverLog, 'a');
  const env = {
    ...process.env,
    KAVACH_ENV: 'development',
    KAVACH_LISTEN: `127.0.0.1:${port}`,
    KAVACH_BASE_URL: baseURL,
    KAVACH_DATABASE_URL: `sqlite:${join(work, 'kavach.db')}`,
    KAVACH_PASSWORD_ITERATIONS: '100000',
    KAVACH_SHUTDOWN_TIMEOUT: '2s',
    // Every test signs users up from 127.0.0.1; the production limit (10
    // a minute per IP) is for attackers, not for this suite.
    KAVACH_RATE_LIMIT_PER_IP: '1000',
    // The oauth4webapi tests register machine clients themselves.
    KAVACH_OAUTH_ALLOW_DYNAMIC_MACHINE_CLIENTS: 'true',
    // Tokens may be issued for the gateway's URL.
    KAVACH_OAUTH_RESOURCES: `http://127.0.0.1:${gatewayPort}/mcp`,
    KAVACH_LOG_LEVEL: 'debug',
  };
  server = spawn(bin, ['serve'], {
    cwd: work, // development mode writes kavach.secret and kavach-mail/ here
    stdio: ['ignore', out, out],
    env,
  });
  await waitReady('kavach serve', server, `${baseURL}/readyz`);
  log(`kavach serve ready at ${baseURL} (log: ${serverLog})`);
  const gatewayURL = await startHelpers(bin, env, gatewayPort, upstreamPort);
  return { baseURL, gatewayURL };
}

async function stopProcess(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
}

async function stopServer() {
  for (const h of helpers) await stopProcess(h);
  await stopProcess(server);
}

function runTests({ baseURL, gatewayURL }) {
  const files = process.argv.slice(2).length
    ? process.argv.slice(2)
    : readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort();
  log(`node --test ${files.join(' ')}`);
  tests = spawn(process.execPath, ['--test', '--test-reporter=spec', ...files], {
    cwd: here,
    stdio: 'inherit',
    env: { ...process.env, KAVACH_INTEROP_BASE_URL: baseURL, KAVACH_INTEROP_GATEWAY_URL: gatewayURL },
  });
  // A hung test must not hang CI: node:test's own timeouts should fire
  // first, this is the backstop.
  const backstop = setTimeout(() => {
    log('tests still running after 120 s; killing them');
    tests.kill('SIGKILL');
  }, 120_000);
  return new Promise((ok) => tests.once('exit', (code, signal) => {
    clearTimeout(backstop);
    ok(code ?? (signal ? 1 : 0));
  }));
}

function printServerLog() {
  try {
    const text = readFileSync(serverLog, 'utf8');
    const lines = text.trimEnd().split('\n');
    console.error(`[interop] last lines of the kavach log (${serverLog}):`);
    console.error(lines.slice(-60).join('\n'));
  } catch {
    // no log yet
  }
}

// Ctrl-C or a CI cancel: stop the children, then leave.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    tests?.kill('SIGTERM');
    for (const p of [server, ...helpers]) p?.kill('SIGKILL');
    process.exit(130);
  });
}
process.on('exit', () => {
  for (const p of [server, ...helpers]) {
    if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
});

let status = 1;
try {
  const started = Date.now();
  const urls = await startServer(build());
  status = await runTests(urls);
  log(`tests finished with status ${status} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  console.error(`[interop] ${err.stack ?? err}`);
  status = 1;
} finally {
  await stopServer();
  if (status !== 0) printServerLog();
  if (process.env.KAVACH_INTEROP_KEEP) log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(status);
