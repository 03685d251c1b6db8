// Kavach's own sign-in and consent pages in a real browser: Debian's
// chromium driven by playwright-core (no downloaded browser). A public
// client is registered with RFC 7591 and a user signs up over the API (in
// Node); then the browser opens the authorize URL, lands on the sign-in
// page, signs in, sees the consent page and allows or denies. The client's
// redirect URI is never contacted: page.route answers it, and we read the
// code, state and iss from the URL it was sent.

import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { baseURL, mcpURL, signUp } from './browser.mjs';

const TIMEOUT = 30_000;
const STEP_TIMEOUT = 10_000; // one page step; fail with Playwright's message before TIMEOUT
const PASSWORD = 'correct horse battery staple'; // what browser.mjs signUp uses
const CHROMIUM = process.env.KAVACH_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// A loopback redirect URI nothing listens on: page.route answers it.
const redirectURI = 'http://127.0.0.1:53683/callback';
const authorizeURL = `${baseURL}/api/auth/oauth2/authorize`;
const scope = 'openid mcp';

let browser;
let shots;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  shots = mkdtempSync(join(tmpdir(), 'kavach-pages-'));
});

after(async () => {
  await browser?.close();
  if (shots) rmSync(shots, { recursive: true, force: true });
});

/** registerClient registers a public, loopback-only client with RFC 7591. */
async function registerClient() {
  const name = `Pages test ${randomUUID().slice(0, 8)}`;
  const res = await fetch(`${baseURL}/api/auth/oauth2/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: [redirectURI],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, `register: ${res.status} ${JSON.stringify(body)}`);
  assert.ok(body.client_id, `register answered no client_id: ${JSON.stringify(body)}`);
  return { clientID: body.client_id, name };
}

/** authorization builds an authorize URL with PKCE S256, state and resource. */
function authorization(clientID) {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const url = new URL(authorizeURL);
  url.search = new URLSearchParams({
    client_id: clientID,
    redirect_uri: redirectURI,
    response_type: 'code',
    scope,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    resource: mcpURL,
  }).toString();
  return { url: url.toString(), verifier, state };
}

/**
 * newPage opens a fresh browser context (its own cookies) and answers the
 * client's redirect URI itself. callback() resolves with the URL the
 * browser was sent to.
 */
async function newPage(t) {
  const context = await browser.newContext();
  t.after(() => context.close());
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  let arrived;
  const callback = new Promise((ok) => { arrived = ok; });
  await page.route(`${redirectURI}**`, (route) => {
    arrived(new URL(route.request().url()));
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>Callback</title><p>done</p>' });
  });
  return { page, callback: () => within(callback, `the browser was not sent to ${redirectURI}`) };
}

function within(promise, what) {
  let timer;
  const late = new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`${what} within ${STEP_TIMEOUT} ms`)), STEP_TIMEOUT); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * submit clicks a submit button and returns the response to the form POST
 * (to `path`), failing with the server's answer unless it redirects.
 */
async function submit(page, button, path, { expectRedirect = true } = {}) {
  const posted = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path);
  await button.click();
  const res = await posted;
  if (expectRedirect && res.status() !== 303) {
    const body = await res.text().catch(() => '');
    const origin = await res.request().headerValue('origin');
    assert.fail(`POST ${path} from the page answered ${res.status()} ${body.trim()} (the browser sent Origin: ${origin})`);
  }
  return res;
}

/** finalResponse follows a redirect chain to the response that was shown. */
async function finalResponse(res) {
  let req = res.request();
  while (req.redirectedTo()) req = req.redirectedTo();
  return req.response();
}

/** signIn fills the sign-in page, submits it and waits for the consent page. */
async function signIn(page, email, password = PASSWORD) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  const posted = await submit(page, page.getByRole('button', { name: 'Sign in' }), '/oauth/sign-in');
  await page.waitForURL((u) => u.pathname === '/oauth/consent');
  return finalResponse(posted);
}

function onPath(page, path) {
  const u = new URL(page.url());
  assert.equal(`${u.origin}${u.pathname}`, `${baseURL}${path}`, `browser is on ${page.url()}`);
}

describe('sign-in and consent pages in chromium', () => {
  test('authorize → sign-in → consent → Allow → code, state and iss → token', { timeout: TIMEOUT }, async (t) => {
    const client = await registerClient();
    const user = await signUp('pages-user');
    const { url, verifier, state } = authorization(client.clientID);
    const { page, callback } = await newPage(t);

    const signInRes = await page.goto(url);
    assert.equal(signInRes.status(), 200);
    onPath(page, '/oauth/sign-in');
    assert.equal(new URL(page.url()).searchParams.get('return_to')?.startsWith(authorizeURL + '?'), true, 'return_to is the authorize URL');
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    const email = page.getByLabel('Email');
    const password = page.getByLabel('Password');
    assert.equal(await email.getAttribute('type'), 'email');
    assert.equal(await password.getAttribute('type'), 'password');
    assert.equal(await email.getAttribute('autocomplete'), 'username');
    assert.equal(await password.getAttribute('autocomplete'), 'current-password');

    const consentRes = await signIn(page, user.email);
    assert.equal(consentRes.status(), 200);
    onPath(page, '/oauth/consent');

    // Who asks, where the browser goes afterwards, what it may do.
    await page.getByRole('heading', { level: 1, name: `Allow ${client.name}?` }).waitFor();
    const main = page.getByRole('main');
    const text = await main.innerText();
    assert.ok(text.includes(client.name), `client name missing from the consent page:\n${text}`);
    assert.ok(text.includes('127.0.0.1'), `redirect host missing from the consent page:\n${text}`);
    const items = (await page.getByRole('listitem').allInnerTexts()).map((s) => s.trim());
    assert.deepEqual(items, ['Confirm who you are', "Use Kavach's MCP tools as you"], 'scopes in words');
    assert.ok(!/\bopenid\b|\bmcp\b/.test(items.join(' ')), 'scopes are described, not named');
    const note = page.getByRole('note');
    assert.equal(await note.count(), 1, 'a localhost-only client gets the localhost warning');
    assert.match(await note.innerText(), /localhost/);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    await page.getByRole('button', { name: 'Deny' }).waitFor();

    const shot = join(shots, 'consent.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 1000, 'screenshot is not empty');
    assert.deepEqual([...readFileSync(shot).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'screenshot is a PNG');

    await submit(page, page.getByRole('button', { name: 'Allow' }), '/api/auth/oauth2/consent');
    const cb = await callback();
    assert.equal(`${cb.origin}${cb.pathname}`, redirectURI);
    assert.equal(cb.searchParams.get('error'), null, `authorize answered ${cb}`);
    assert.equal(cb.searchParams.get('state'), state);
    assert.equal(cb.searchParams.get('iss'), baseURL);
    const code = cb.searchParams.get('code');
    assert.ok(code, `no code in ${cb}`);
    await page.waitForURL((u) => u.href.startsWith(redirectURI));

    const res = await fetch(`${baseURL}/api/auth/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: redirectURI,
        client_id: client.clientID,
        resource: mcpURL,
      }),
    });
    const tokens = await res.json();
    assert.equal(res.status, 200, `token: ${res.status} ${JSON.stringify(tokens)}`);
    assert.equal(typeof tokens.access_token, 'string');
    assert.ok(tokens.access_token.length > 0);
    assert.match(tokens.token_type, /^bearer$/i);
  });

  test('a wrong password shows an alert and stays on the sign-in page', { timeout: TIMEOUT }, async (t) => {
    const client = await registerClient();
    const user = await signUp('pages-wrong');
    const { url } = authorization(client.clientID);
    const { page } = await newPage(t);

    await page.goto(url);
    onPath(page, '/oauth/sign-in');
    const returnTo = new URL(page.url()).searchParams.get('return_to');
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill('not the password at all');
    const res = await submit(page, page.getByRole('button', { name: 'Sign in' }), '/oauth/sign-in', { expectRedirect: false });
    assert.equal(res.status(), 401, `wrong password: ${res.status()} ${await res.text().catch(() => '')}`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    onPath(page, '/oauth/sign-in');
    assert.match(await alert.innerText(), /invalid email or password/i);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    assert.equal(await page.getByLabel('Email').inputValue(), user.email, 'the email is kept');
    assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password is not echoed');
    assert.equal(await page.locator('input[name="return_to"]').inputValue(), returnTo, 'the request is kept');
    const cookies = await page.context().cookies(baseURL);
    assert.equal(cookies.length, 0, `no session after a failed sign-in: ${JSON.stringify(cookies)}`);

    // The page still works: the right password goes on to consent.
    await signIn(page, user.email);
    onPath(page, '/oauth/consent');
  });

  test('Deny sends access_denied, state and iss to the client', { timeout: TIMEOUT }, async (t) => {
    const client = await registerClient();
    const user = await signUp('pages-deny');
    const { url, state } = authorization(client.clientID);
    const { page, callback } = await newPage(t);

    await page.goto(url);
    await signIn(page, user.email);
    onPath(page, '/oauth/consent');
    await submit(page, page.getByRole('button', { name: 'Deny' }), '/api/auth/oauth2/consent');
    const cb = await callback();
    assert.equal(`${cb.origin}${cb.pathname}`, redirectURI);
    assert.equal(cb.searchParams.get('error'), 'access_denied');
    assert.equal(cb.searchParams.get('state'), state);
    assert.equal(cb.searchParams.get('iss'), baseURL);
    assert.equal(cb.searchParams.get('code'), null);
  });

  test('pages forbid framing; a consent POST from a foreign origin is refused', { timeout: TIMEOUT }, async (t) => {
    const client = await registerClient();
    const user = await signUp('pages-csp');
    const { url, state } = authorization(client.clientID);
    const { page } = await newPage(t);

    const frameAncestorsNone = (res, what) => {
      const csp = res.headers()['content-security-policy'];
      assert.ok(csp, `${what}: no Content-Security-Policy`);
      const directives = csp.split(';').map((d) => d.trim().split(/\s+/));
      const fa = directives.find((d) => d[0] === 'frame-ancestors');
      assert.deepEqual(fa, ['frame-ancestors', "'none'"], `${what}: CSP ${csp}`);
    };
    const signInRes = await page.goto(url);
    onPath(page, '/oauth/sign-in');
    frameAncestorsNone(signInRes, 'sign-in page');
    // The session from the API sign-up, so this test does not depend on the
    // sign-in form.
    const [name, value] = user.cookie.split(/=(.*)/s);
    await page.context().addCookies([{ name, value, url: baseURL }]);
    const consentRes = await page.goto(url);
    onPath(page, '/oauth/consent');
    frameAncestorsNone(consentRes, 'consent page');

    // Cross-site form posts carrying the user's session cookie: refused.
    const returnTo = new URL(page.url()).searchParams.get('return_to');
    const consent = (origin, decision) => fetch(`${baseURL}/api/auth/oauth2/consent`, {
      method: 'POST',
      headers: { Cookie: user.cookie, Origin: origin, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ return_to: returnTo, decision }),
      redirect: 'manual',
    });
    const evil = await consent('https://evil.example', 'approve');
    const evilBody = await evil.text();
    assert.equal(evil.status, 403, `consent POST from https://evil.example: ${evil.status} ${evilBody}`);
    assert.equal(evil.headers.get('location'), null);

    // Nothing was recorded: the authorize URL still asks for consent.
    const again = await fetch(url, { headers: { Cookie: user.cookie }, redirect: 'manual' });
    await again.body?.cancel();
    assert.equal(again.status, 303);
    assert.equal(new URL(again.headers.get('location'), baseURL).pathname, '/oauth/consent', 'the foreign approval was not recorded');

    // The same POST from our own origin goes through (so the 403 was the origin).
    const ours = await consent(baseURL, 'deny');
    await ours.body?.cancel();
    assert.equal(ours.status, 303);
    const loc = new URL(ours.headers.get('location'));
    assert.equal(loc.searchParams.get('error'), 'access_denied');
    assert.equal(loc.searchParams.get('state'), state);

    // The sign-in form is guarded the same way (login CSRF).
    const evilSignIn = await fetch(`${baseURL}/oauth/sign-in`, {
      method: 'POST',
      headers: { Origin: 'https://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: user.email, password: PASSWORD, return_to: returnTo }),
      redirect: 'manual',
    });
    await evilSignIn.body?.cancel();
    assert.equal(evilSignIn.status, 403, 'sign-in POST from https://evil.example');
    assert.equal(evilSignIn.headers.getSetCookie().length, 0, 'no session cookie for a foreign sign-in');
  });
});
