// Passkeys in a real browser: Debian's chromium with a virtual WebAuthn
// authenticator (Chrome DevTools Protocol), driven by playwright-core. The
// page runs the very code docs/sign-in-methods.md shows: it registers a
// passkey with navigator.credentials.create on the options Kavach gives,
// signs out, and signs in again with navigator.credentials.get, once
// naming the address and once without (a discoverable credential). The
// page is on http://localhost:PORT, a loopback alias of the base URL that
// development mode accepts as a passkey origin (RP ID "localhost").

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { baseURL } from './browser.mjs';

const CHROMIUM = process.env.KAVACH_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const STEP_TIMEOUT = 10_000;
const site = baseURL.replace('127.0.0.1', 'localhost');

let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
});

test('a passkey registered in the browser signs in with and without the address', { timeout: 60_000 }, async (t) => {
  const context = await browser.newContext();
  t.after(() => context.close());
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  // A blank page of the site, answered by Playwright (Kavach's own
  // answers carry a CSP that forbids scripts their fetches): the
  // ceremonies and the API calls run in the site's origin.
  await page.route(`${site}/passkey-test`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>Passkeys</title>' }));
  await page.goto(`${site}/passkey-test`);

  const email = `passkey-${randomUUID()}@example.com`;
  const result = await page.evaluate(async (email) => {
    const post = async (path, body) => {
      const res = await fetch(path, {
        method: 'POST', credentials: 'include',
        headers: { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const out = {};
    out.signUp = await post('/api/auth/sign-up/email', { email, password: 'correct horse battery staple', name: 'Passkey Person' });

    const opts = (await post('/api/auth/passkey/register/options')).body.data;
    const cred = await navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(opts.publicKey),
    });
    out.register = await post('/api/auth/passkey/register/verify', { response: cred.toJSON(), name: 'Chromium' });
    out.signOut = await post('/api/auth/sign-out');
    out.afterSignOut = await (await fetch('/api/auth/session', { credentials: 'include' })).json();

    // With the address: the options list the passkey.
    let req = (await post('/api/auth/passkey/authenticate/options', { email })).body.data;
    out.allowCount = req.publicKey.allowCredentials?.length ?? 0;
    let assertion = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(req.publicKey),
    });
    out.withEmail = await post('/api/auth/passkey/authenticate/verify', { response: assertion.toJSON() });
    // The same response again: the ceremony is used up.
    out.replay = await post('/api/auth/passkey/authenticate/verify', { response: assertion.toJSON() });
    await post('/api/auth/sign-out');

    // Without it: the browser offers the discoverable credential.
    req = (await post('/api/auth/passkey/authenticate/options')).body.data;
    assertion = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(req.publicKey),
    });
    out.discoverable = await post('/api/auth/passkey/authenticate/verify', { response: assertion.toJSON() });
    out.session = await (await fetch('/api/auth/session', { credentials: 'include' })).json();
    out.list = (await (await fetch('/api/auth/passkey/credentials', { credentials: 'include' })).json()).data;
    return out;
  }, email);

  assert.equal(result.signUp.status, 201, JSON.stringify(result.signUp.body));
  assert.equal(result.register.status, 201, `register: ${JSON.stringify(result.register.body)}`);
  assert.equal(result.afterSignOut.data, null);
  assert.equal(result.allowCount, 1);
  assert.equal(result.withEmail.status, 200, `sign-in with email: ${JSON.stringify(result.withEmail.body)}`);
  assert.ok(result.withEmail.body.data.session, 'no session after the passkey with an address');
  assert.equal(result.replay.status, 400);
  assert.equal(result.replay.body.error.code, 'CHALLENGE_EXPIRED');
  assert.equal(result.discoverable.status, 200, `username-less sign-in: ${JSON.stringify(result.discoverable.body)}`);
  assert.equal(result.session.data.user.email, email);
  assert.equal(result.list.length, 1);
  assert.equal(result.list[0].name, 'Chromium');

  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.ok(credentials[0].isResidentCredential, 'the passkey is not discoverable');
  assert.ok(credentials[0].signCount >= 2, `sign count ${credentials[0].signCount}`);
});
