// The human side of the authorization code flow, done with fetch: sign up
// (which sets the session cookie), then walk authorize → consent → approve →
// authorize → client redirect without following redirects, the way
// oauth_e2e_test.go does in Go.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

export const baseURL = process.env.KAVACH_INTEROP_BASE_URL;
if (!baseURL) {
  throw new Error('KAVACH_INTEROP_BASE_URL is not set: run the tests with `node run.mjs`');
}

/** mcpURL is Kavach's own protected MCP endpoint, also its RFC 8707 resource. */
export const mcpURL = `${baseURL}/mcp`;

/** A loopback redirect URI: nothing listens there, we read Location instead. */
export const redirectURI = 'http://127.0.0.1:53682/callback';

/**
 * A signed-in browser: signs a new user up and keeps the session cookie.
 * @returns {Promise<Browser>}
 */
export async function signUp(name) {
  const email = `${name}-${randomUUID()}@example.com`;
  const res = await fetch(`${baseURL}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: baseURL },
    body: JSON.stringify({ email, password: 'correct horse battery staple', name }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, `sign-up: ${res.status} ${JSON.stringify(body)}`);
  const cookie = res.headers.getSetCookie()
    .map((c) => c.split(';')[0])
    .find((c) => /^(__Host-)?kavach_session=/.test(c));
  assert.ok(cookie, `sign-up set no session cookie: ${res.headers.getSetCookie()}`);
  const userID = body.data?.user?.id;
  assert.ok(userID, `sign-up answered no user id: ${JSON.stringify(body)}`);
  return new Browser(cookie, userID, email);
}

export class Browser {
  constructor(cookie, userID, email) {
    this.cookie = cookie;
    this.userID = userID;
    this.email = email;
  }

  async #get(url) {
    const res = await fetch(url, { headers: { Cookie: this.cookie }, redirect: 'manual' });
    await res.body?.cancel();
    return res;
  }

  /**
   * authorize follows an authorization URL as a signed-in browser that
   * approves whatever consent is asked, and returns the URL Kavach finally
   * sends the browser to (the client's redirect URI with code or error).
   * @param {URL|string} authorizationURL
   * @returns {Promise<URL>}
   */
  async authorize(authorizationURL) {
    let url = new URL(authorizationURL);
    const clientRedirect = new URL(url.searchParams.get('redirect_uri') ?? redirectURI);
    for (let step = 0; step < 5; step++) {
      const res = await this.#get(url);
      assert.ok([302, 303].includes(res.status), `GET ${url}: status ${res.status}, want a redirect`);
      const next = new URL(res.headers.get('location'), url);
      if (next.origin === clientRedirect.origin && next.pathname === clientRedirect.pathname) {
        return next;
      }
      assert.equal(next.pathname, '/oauth/consent', `authorize sent the browser to ${next}`);
      const page = await this.#get(next);
      assert.equal(page.status, 200, `consent page ${next}: ${page.status}`);
      url = await this.#approve(next.searchParams.get('return_to'));
    }
    throw new Error('authorize: no redirect to the client after 5 steps');
  }

  async #approve(returnTo) {
    const res = await fetch(`${baseURL}/api/auth/oauth2/consent`, {
      method: 'POST',
      headers: {
        Cookie: this.cookie,
        Origin: baseURL,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ return_to: returnTo, decision: 'approve' }),
      redirect: 'manual',
    });
    const text = await res.text();
    assert.equal(res.status, 303, `consent approve: ${res.status} ${text}`);
    return new URL(res.headers.get('location'), baseURL);
  }
}

/** postForm sends a raw form POST (for checks the libraries do not expose). */
export async function postForm(path, params, headers = {}) {
  const res = await fetch(`${baseURL}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json', ...headers },
    body: new URLSearchParams(params),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}
