package kavach_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

// Social sign-in end to end: a browser (cookie jar, real redirects) goes
// from Kavach to a fake provider on loopback and back, on both databases.

func socialEnv(t *testing.T, open func(t testing.TB) storage.Store, f *fakeProvider, mutate func(*kavach.Config)) *env {
	t.Helper()
	return newEnv(t, open, func(c *kavach.Config) {
		c.TrustedOrigins = []string{"http://app.example.com"}
		c.SignIn.Providers = []kavach.SocialProvider{
			{ID: "acme", Name: "Acme ID", Issuer: f.url(), ClientID: f.clientID, ClientSecret: f.clientSecret},
			{ID: "github", ClientID: f.clientID, ClientSecret: f.clientSecret, AuthURL: f.url() + "/authorize",
				TokenURL: f.url() + "/token", UserInfoURL: f.url() + "/user", EmailsURL: f.url() + "/user/emails"},
			{ID: "discord", ClientID: f.clientID, ClientSecret: f.clientSecret, AuthURL: f.url() + "/authorize",
				TokenURL: f.url() + "/token", UserInfoURL: f.url() + "/users/@me"},
		}
		if mutate != nil {
			mutate(c)
		}
	})
}

// social runs a whole sign-in at provider and returns where the browser
// lands.
func (c *client) social(t *testing.T, f *fakeProvider, provider, query string) *url.URL {
	t.Helper()
	return landing(t, c.socialFlow(t, f, "/api/auth/oauth/"+provider+"?"+query))
}

type sessionJSON struct {
	User    kavach.User     `json:"user"`
	Session *kavach.Session `json:"session"`
}

// me is the client's session, or nil.
func (c *client) me(t *testing.T) *sessionJSON {
	t.Helper()
	r := c.do("GET", "/api/auth/session", nil).must(t, 200)
	if string(r.Data) == "null" {
		return nil
	}
	var s sessionJSON
	r.decode(t, &s)
	return &s
}

func (c *client) mustHaveSession(t *testing.T) sessionJSON {
	t.Helper()
	s := c.me(t)
	if s == nil || s.Session == nil {
		t.Fatal("not signed in")
	}
	return *s
}

type accountJSON struct {
	ID        string   `json:"id"`
	Provider  string   `json:"provider"`
	AccountID string   `json:"accountId"`
	Scopes    []string `json:"scopes"`
}

func (c *client) accounts(t *testing.T) []accountJSON {
	t.Helper()
	var out []accountJSON
	c.do("GET", "/api/auth/accounts", nil).must(t, 200).decode(t, &out)
	return out
}

func providersOf(list []accountJSON) string {
	var p []string
	for _, a := range list {
		p = append(p, a.Provider)
	}
	slices.Sort(p) // accounts made at the same instant come in any order
	return strings.Join(p, ",")
}

func mustLand(t *testing.T, got *url.URL, want string) {
	t.Helper()
	if got.String() != want {
		t.Fatalf("landed on %s, want %s", got, want)
	}
}

func (e *env) events(t *testing.T, typ string) []map[string]any {
	t.Helper()
	evs, err := e.store.Events().Pending(t.Context(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range evs {
		if ev.Type != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Payload, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (e *env) verifyEmail(t *testing.T, email string) {
	t.Helper()
	u, err := e.store.Users().GetByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	u.EmailVerified = true
	if err := e.store.Users().Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

func TestSocialSignInNewAndReturningUser(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)

		var providers []map[string]string
		e.client().do("GET", "/api/auth/oauth/providers", nil).must(t, 200).decode(t, &providers)
		if len(providers) != 3 || providers[0]["id"] != "acme" || providers[0]["name"] != "Acme ID" || providers[1]["name"] != "GitHub" {
			t.Fatalf("providers: %v", providers)
		}

		// A new user: created with the provider's verified address and
		// name, signed in, sent to newUserCallbackURL.
		f.as("sub-1", "Ada@Example.com", true)
		c := e.client()
		to := c.social(t, f, "acme", "callbackURL=/home&newUserCallbackURL=/welcome&errorCallbackURL=/oops")
		mustLand(t, to, e.url+"/welcome")
		me := c.mustHaveSession(t)
		if me.User.Email != "ada@example.com" || !me.User.EmailVerified || me.User.Name != "Name of sub-1" {
			t.Fatalf("new user: %+v", me.User)
		}
		if got := providersOf(c.accounts(t)); got != "acme" {
			t.Fatalf("accounts: %s", got)
		}
		acc := c.accounts(t)[0]
		if acc.AccountID != "sub-1" || strings.Join(acc.Scopes, " ") != "openid email profile" {
			t.Fatalf("account: %+v", acc)
		}

		// Returning: the same provider account signs the same user in, to
		// callbackURL; absolute URLs on trusted origins are fine.
		c2 := e.client()
		to = c2.social(t, f, "acme", "callbackURL="+url.QueryEscape("http://app.example.com/home")+"&newUserCallbackURL=/welcome")
		mustLand(t, to, "http://app.example.com/home")
		if again := c2.mustHaveSession(t); again.User.ID != me.User.ID {
			t.Fatalf("returning user got user %s, want %s", again.User.ID, me.User.ID)
		}

		// The outbox and audit name the method.
		var social int
		for _, ev := range e.events(t, "session.created") {
			if ev["method"] == "oauth:acme" && ev["provider"] == "acme" {
				social++
			}
		}
		if social != 2 {
			t.Fatalf("session.created with method oauth:acme: %d", social)
		}
		if n := len(e.events(t, "account.linked")); n != 1 {
			t.Fatalf("account.linked events: %d", n)
		}
		audit, _, err := e.store.Audit().Query(t.Context(), storage.AuditFilter{Event: "account.linked", PrincipalID: me.User.ID})
		if err != nil {
			t.Fatal(err)
		}
		var linked int
		for _, a := range audit {
			if a.Event == "account.linked" && a.PrincipalID == me.User.ID {
				linked++
			}
		}
		if linked != 1 {
			t.Fatalf("account.linked audit records: %d", linked)
		}

		// Provider tokens are sealed at rest, and open to the user's tokens.
		row, err := e.store.Accounts().GetByProvider(t.Context(), "acme", "sub-1")
		if err != nil {
			t.Fatal(err)
		}
		toks, err := e.k.Users.SocialTokens(t.Context(), me.User.ID, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(toks.AccessToken, "at-sub-1-") || toks.RefreshToken != "rt-sub-1" || toks.IDToken == "" {
			t.Fatalf("opened tokens: access %q refresh %q", toks.AccessToken, toks.RefreshToken)
		}
		for _, v := range []*string{row.AccessToken, row.RefreshToken, row.IDToken} {
			if v == nil || strings.Contains(*v, "at-sub-1") || strings.Contains(*v, "rt-sub-1") || strings.Contains(*v, toks.IDToken[:20]) {
				t.Fatalf("a token is stored in plaintext or missing: %v", v)
			}
		}
		if row.Email != "ada@example.com" || row.AccessTokenExpiresAt == nil {
			t.Fatalf("account row: email %q expiry %v", row.Email, row.AccessTokenExpiresAt)
		}

		// Start refuses untrusted redirect targets and unknown providers.
		e.client().do("GET", "/api/auth/oauth/acme?callbackURL="+url.QueryEscape("https://evil.example/x"), nil).mustError(t, 400, "UNTRUSTED_REDIRECT")
		e.client().do("GET", "/api/auth/oauth/acme?errorCallbackURL="+url.QueryEscape("//evil.example"), nil).mustError(t, 400, "UNTRUSTED_REDIRECT")
		e.client().do("GET", "/api/auth/oauth/acme?newUserCallbackURL="+url.QueryEscape("javascript:alert(1)"), nil).mustError(t, 400, "UNTRUSTED_REDIRECT")
		e.client().do("GET", "/api/auth/oauth/nope", nil).mustError(t, 404, "PROVIDER_NOT_FOUND")

		// The provider's error goes to errorCallbackURL.
		f.set(func(f *fakeProvider) { f.denyNext = true })
		d := e.client()
		to = d.social(t, f, "acme", "callbackURL=/home&errorCallbackURL=/oops")
		mustLand(t, to, e.url+"/oops?error=access_denied")
		if d.me(t) != nil {
			t.Fatal("signed in after the provider refused")
		}
		// Without any callback URL the answer is JSON.
		f.set(func(f *fakeProvider) { f.denyNext = true })
		mustFailWith(t, e.client().socialFlow(t, f, "/api/auth/oauth/acme"), 400, "OAUTH_PROVIDER_ERROR")
	})
}

func TestSocialAutomaticLinking(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)

		// Both sides verified: the provider account joins the existing user.
		owner := e.client()
		ada := owner.signUp("ada@example.com")
		e.verifyEmail(t, "ada@example.com")
		f.as("sub-ada", "ada@example.com", true)
		c := e.client()
		mustLand(t, c.social(t, f, "acme", "callbackURL=/home&newUserCallbackURL=/welcome"), e.url+"/home")
		if me := c.mustHaveSession(t); me.User.ID != ada.User.ID {
			t.Fatalf("linked to %s, want %s", me.User.ID, ada.User.ID)
		}
		if got := providersOf(c.accounts(t)); got != "acme,credential" {
			t.Fatalf("accounts: %s", got)
		}

		// The provider does not vouch for the address: refused.
		e.client().signUp("bob@example.com")
		e.verifyEmail(t, "bob@example.com")
		f.as("sub-bob", "bob@example.com", false)
		c = e.client()
		mustLand(t, c.social(t, f, "acme", "callbackURL=/home&errorCallbackURL=/oops"), e.url+"/oops?error=ACCOUNT_NOT_LINKED")
		if c.me(t) != nil {
			t.Fatal("signed in to an account the provider did not verify")
		}

		// Kavach never verified the local address: refused as well (whoever
		// signed up with it may not own it).
		e.client().signUp("cy@example.com")
		f.as("sub-cy", "cy@example.com", true)
		c = e.client()
		mustLand(t, c.social(t, f, "acme", "callbackURL=/home&errorCallbackURL=/oops"), e.url+"/oops?error=ACCOUNT_NOT_LINKED")
		if c.me(t) != nil {
			t.Fatal("signed in to an unverified local account")
		}
		for _, sub := range []string{"sub-bob", "sub-cy"} {
			if _, err := e.store.Accounts().GetByProvider(t.Context(), "acme", sub); err == nil {
				t.Fatalf("account %s was linked", sub)
			}
		}
		// Only the error callback: JSON without one.
		f.as("sub-cy", "cy@example.com", true)
		mustFailWith(t, e.client().socialFlow(t, f, "/api/auth/oauth/acme"), 409, "ACCOUNT_NOT_LINKED")
	})
}

func TestSocialExplicitLinkAndUnlink(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)

		// cy's address is not verified, so only an explicit link joins
		// the provider account to her.
		cy := e.client()
		me := cy.signUp("cy@example.com")
		f.as("sub-cy", "cy-at-work@example.org", false)
		var link struct {
			URL string `json:"url"`
		}
		cy.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "acme", "callbackURL": "/settings"}).must(t, 200).decode(t, &link)
		if !strings.HasPrefix(link.URL, f.url()+"/authorize?") {
			t.Fatalf("link url %s", link.URL)
		}
		mustLand(t, landing(t, cy.socialFlow(t, f, link.URL)), e.url+"/settings")
		if got := providersOf(cy.accounts(t)); got != "acme,credential" {
			t.Fatalf("accounts after link: %s", got)
		}
		// Now the provider signs her in.
		c := e.client()
		mustLand(t, c.social(t, f, "acme", "callbackURL=/home"), e.url+"/home")
		if got := c.mustHaveSession(t); got.User.ID != me.User.ID {
			t.Fatalf("signed in as %s, want %s", got.User.ID, me.User.ID)
		}
		if ev := e.events(t, "account.linked"); len(ev) != 1 || ev[0]["linkedBy"] != "explicit" || ev[0]["userId"] != me.User.ID {
			t.Fatalf("account.linked: %v", ev)
		}

		// Someone else cannot link cy's provider account.
		dan := e.client()
		dan.signUp("dan@example.com")
		dan.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "acme", "callbackURL": "/settings", "errorCallbackURL": "/settings/error"}).must(t, 200).decode(t, &link)
		mustLand(t, landing(t, dan.socialFlow(t, f, link.URL)), e.url+"/settings/error?error=ACCOUNT_ALREADY_LINKED")
		if got := providersOf(dan.accounts(t)); got != "credential" {
			t.Fatalf("dan's accounts: %s", got)
		}
		// Linking needs a session and a trusted callback.
		e.client().do("POST", "/api/auth/oauth/link", map[string]any{"provider": "acme"}).mustError(t, 401, "UNAUTHENTICATED")
		dan.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "acme", "callbackURL": "https://evil.example/"}).mustError(t, 400, "UNTRUSTED_REDIRECT")
		dan.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "nope"}).mustError(t, 404, "PROVIDER_NOT_FOUND")

		// cy keeps her password: unlinking the provider is fine.
		cy.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "acme"}).must(t, 200)
		cy.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "acme"}).mustError(t, 404, "ACCOUNT_NOT_FOUND")
		cy.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "credential"}).mustError(t, 400, "INVALID_REQUEST")
		if ev := e.events(t, "account.unlinked"); len(ev) != 1 || ev[0]["provider"] != "acme" {
			t.Fatalf("account.unlinked: %v", ev)
		}
		// The unlinked provider account is a stranger now: it signs up anew.
		c = e.client()
		mustLand(t, c.social(t, f, "acme", "callbackURL=/home&newUserCallbackURL=/welcome"), e.url+"/welcome")

		// A user who has only a social account cannot remove it...
		f.as("sub-eve", "eve@example.com", true)
		eve := e.client()
		eve.social(t, f, "acme", "callbackURL=/home")
		eve.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "acme"}).mustError(t, 409, "LAST_ACCOUNT")
		// ...until she links another.
		f.as("4242", "eve@example.com", true)
		eve.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "github", "callbackURL": "/settings"}).must(t, 200).decode(t, &link)
		mustLand(t, landing(t, eve.socialFlow(t, f, link.URL)), e.url+"/settings")
		if got := providersOf(eve.accounts(t)); got != "acme,github" {
			t.Fatalf("eve's accounts: %s", got)
		}
		eve.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "acme", "accountId": "sub-eve"}).must(t, 200)
		eve.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "github"}).mustError(t, 409, "LAST_ACCOUNT")
		if got := providersOf(eve.accounts(t)); got != "github" {
			t.Fatalf("eve's accounts: %s", got)
		}
	})
}

func TestSocialStateAndNonce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)
		f.as("sub-1", "ada@example.com", true)

		// callbackOf runs a flow up to the provider's redirect back, and
		// returns the callback URL without following it.
		callbackOf := func(c *client, provider string) string {
			t.Helper()
			r, err := c.http.Get(e.url + "/api/auth/oauth/" + provider + "?callbackURL=/home&errorCallbackURL=/oops")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			r, err = c.http.Get(r.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusFound {
				t.Fatalf("provider answered %d", r.StatusCode)
			}
			return r.Header.Get("Location")
		}
		get := func(c *client, u string) *http.Response {
			t.Helper()
			r, err := c.http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			return r
		}

		// Login CSRF: a callback URL delivered to another browser (no
		// state cookie) is refused, and signs nobody in.
		a := e.client()
		cb := callbackOf(a, "acme")
		victim := e.client()
		victim.do("GET", strings.TrimPrefix(cb, e.url), nil).mustError(t, 400, "INVALID_STATE")
		if victim.me(t) != nil {
			t.Fatal("the victim was signed in")
		}
		// A browser whose cookie holds another state is refused too.
		other := e.client()
		callbackOf(other, "acme")
		other.do("GET", strings.TrimPrefix(cb, e.url), nil).mustError(t, 400, "INVALID_STATE")
		if other.me(t) != nil {
			t.Fatal("signed in with another browser's state")
		}

		// The browser that started it finishes it, once.
		c := e.client()
		cb = callbackOf(c, "acme")
		mustLand(t, landing(t, get(c, cb)), e.url+"/home")
		c.mustHaveSession(t)
		// Replayed with the cookie put back: the state is spent.
		replay := e.client()
		u, _ := url.Parse(cb)
		base, _ := url.Parse(e.url)
		replay.http.Jar.SetCookies(base, []*http.Cookie{{Name: "kavach_oauth_state", Value: u.Query().Get("state"), Path: "/"}})
		replay.do("GET", strings.TrimPrefix(cb, e.url), nil).mustError(t, 400, "INVALID_STATE")
		// An unknown state with a matching cookie.
		replay.http.Jar.SetCookies(base, []*http.Cookie{{Name: "kavach_oauth_state", Value: "made-up-state", Path: "/"}})
		replay.do("GET", "/api/auth/oauth/acme/callback?state=made-up-state&code=x", nil).mustError(t, 400, "INVALID_STATE")
		if replay.me(t) != nil {
			t.Fatal("signed in by a replay")
		}
		// A state started for one provider does not finish another.
		s := e.client()
		cb = callbackOf(s, "acme")
		mustLand(t, landing(t, get(s, strings.Replace(cb, "/oauth/acme/", "/oauth/github/", 1))), e.url+"/oops?error=INVALID_STATE")
		// An expired state.
		x := e.client()
		cb = callbackOf(x, "acme")
		e.clock.Advance(11 * time.Minute)
		x.do("GET", strings.TrimPrefix(cb, e.url), nil).mustError(t, 400, "INVALID_STATE")

		// A code injected into another flow (stolen from flow A, replayed
		// with the attacker's own state B) fails: Kavach redeems it with B's
		// PKCE verifier, which the provider refuses.
		inj := e.client()
		cbA, _ := url.Parse(callbackOf(inj, "acme"))
		cbB, _ := url.Parse(callbackOf(inj, "acme"))
		q := cbB.Query()
		q.Set("code", cbA.Query().Get("code"))
		cbB.RawQuery = q.Encode()
		mustLand(t, landing(t, get(inj, cbB.String())), e.url+"/oops?error=PROVIDER_ERROR")
		if inj.me(t) != nil {
			t.Fatal("signed in with an injected code")
		}

		// An ID token with another nonce (a token from another sign-in)
		// is refused.
		f.set(func(f *fakeProvider) { f.wrongNonce = true })
		n := e.client()
		mustLand(t, n.social(t, f, "acme", "callbackURL=/home&errorCallbackURL=/oops"), e.url+"/oops?error=INVALID_ID_TOKEN")
		if n.me(t) != nil {
			t.Fatal("signed in with a token of another nonce")
		}
		f.set(func(f *fakeProvider) { f.wrongNonce = false })
		mustLand(t, n.social(t, f, "acme", "callbackURL=/home"), e.url+"/home")
	})
}

func TestSocialGitHubAndDiscord(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)

		// GitHub: the verified primary address from /user/emails.
		f.as("1001", "gh@example.com", true)
		c := e.client()
		mustLand(t, c.social(t, f, "github", "callbackURL=/home&newUserCallbackURL=/welcome"), e.url+"/welcome")
		me := c.mustHaveSession(t)
		if me.User.Email != "gh@example.com" || !me.User.EmailVerified || me.User.Image == nil || *me.User.Image != "https://avatars.example.com/1001" {
			t.Fatalf("github user: %+v", me.User)
		}
		if a := c.accounts(t); len(a) != 1 || a[0].Provider != "github" || a[0].AccountID != "1001" {
			t.Fatalf("github accounts: %+v", a)
		}
		// An unverified primary address: GitHub offers a verified other one.
		f.as("1002", "gh2@example.com", false)
		c = e.client()
		c.social(t, f, "github", "callbackURL=/home")
		if got := c.mustHaveSession(t).User; got.Email != "other-1002@example.net" || !got.EmailVerified {
			t.Fatalf("github fallback address: %+v", got)
		}

		// Discord: the verified flag decides.
		f.as("d-1", "dc@example.com", false)
		c = e.client()
		mustLand(t, c.social(t, f, "discord", "callbackURL=/home&newUserCallbackURL=/welcome"), e.url+"/welcome")
		if got := c.mustHaveSession(t).User; got.Email != "dc@example.com" || got.EmailVerified {
			t.Fatalf("discord user: %+v", got)
		}

		// A user imported from Clerk, whose GitHub account is stored under
		// Clerk's provider name, signs in with GitHub on day one.
		imported := e.client().signUp("clerk@example.com")
		if err := e.store.Accounts().Create(t.Context(), &storage.Account{
			ID: "acc_clerk", UserID: imported.User.ID, ProviderID: "oauth_github", ProviderAccountID: "2002",
		}); err != nil {
			t.Fatal(err)
		}
		f.as("2002", "changed@example.com", true)
		c = e.client()
		mustLand(t, c.social(t, f, "github", "callbackURL=/home&newUserCallbackURL=/welcome"), e.url+"/home")
		if got := c.mustHaveSession(t).User; got.ID != imported.User.ID {
			t.Fatalf("imported user: got %s, want %s", got.ID, imported.User.ID)
		}
		if a := c.accounts(t); providersOf(a) != "credential,github" {
			t.Fatalf("imported accounts: %+v", a)
		}
		c.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "github"}).must(t, 200)
	})
}

func TestSocialCannotSkipTwoFactorOrLockout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, func(c *kavach.Config) { c.Limits.LockoutThreshold = 3 })

		owner := e.client()
		ada := owner.signUp("ada@example.com")
		e.verifyEmail(t, "ada@example.com")
		en := owner.enableTwoFactor(goodPassword)
		f.as("sub-ada", "ada@example.com", true)

		c := e.client()
		to := c.social(t, f, "acme", "callbackURL=/home")
		want := e.url + "/two-factor?callbackURL=" + url.QueryEscape(e.url+"/home")
		mustLand(t, to, want)
		if c.me(t) != nil {
			t.Fatal("signed in before the second factor")
		}
		var done authData
		c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret)}).must(t, 200).decode(t, &done)
		if done.Session == nil || done.User.ID != ada.User.ID {
			t.Fatalf("after the second factor: %+v", done)
		}
		c.mustHaveSession(t)
		var second int
		for _, ev := range e.events(t, "session.created") {
			if ev["method"] == "oauth:acme" && ev["secondFactor"] == "totp" {
				second++
			}
		}
		if second != 1 {
			t.Fatalf("sessions with method oauth:acme after totp: %d", second)
		}

		// A locked account is refused by social sign-in too.
		for range 3 {
			e.client().signIn("ada@example.com", "wrong-password-1").mustError(t, 401, "INVALID_CREDENTIALS")
		}
		l := e.client()
		mustLand(t, l.social(t, f, "acme", "callbackURL=/home&errorCallbackURL=/oops"), e.url+"/oops?error=TOO_MANY_ATTEMPTS")
		if l.me(t) != nil {
			t.Fatal("a locked account signed in")
		}
	})
}

func TestSocialAppleAndMicrosoft(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		applePEM, applePub := appleKeyPEM(t)
		f.set(func(f *fakeProvider) { f.appleKey, f.appleTeam = applePub, "TEAM123456" })
		ms := newFakeProvider(t)
		ms.set(func(m *fakeProvider) { m.issuerTemplate, m.tenant = m.url()+"/{tenantid}/v2.0", "tid-1" })
		e := socialEnv(t, open, f, func(c *kavach.Config) {
			c.SignIn.Providers = append(c.SignIn.Providers,
				kavach.SocialProvider{ID: "apple", Issuer: f.url(), ClientID: f.clientID, TeamID: "TEAM123456", KeyID: "KEY1", PrivateKey: applePEM},
				kavach.SocialProvider{ID: "microsoft", Issuer: ms.url(), ClientID: ms.clientID, ClientSecret: ms.clientSecret})
		})

		// Apple posts the answer from its own origin (response_mode=
		// form_post). The POST passes the origin check and is sent on to
		// the GET callback, where the browser's Lax state cookie counts.
		appleFlow := func(c *client, starter *client) *http.Response {
			t.Helper()
			r, err := starter.http.Get(e.url + "/api/auth/oauth/apple?callbackURL=/home&newUserCallbackURL=/welcome&errorCallbackURL=/oops")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			r, err = starter.http.Get(r.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			var post struct {
				Action string     `json:"action"`
				Fields url.Values `json:"fields"`
			}
			if err := json.NewDecoder(r.Body).Decode(&post); err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if post.Action != e.url+"/api/auth/oauth/apple/callback" {
				t.Fatalf("redirect_uri %s", post.Action)
			}
			post.Fields.Set("user", `{"name":{"firstName":"Ann","lastName":"Apple"},"email":"spoofed@example.com"}`)
			req, _ := http.NewRequest("POST", post.Action, strings.NewReader(post.Fields.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", f.url())
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			r, err = c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), e.url+"/api/auth/oauth/apple/callback?") {
				t.Fatalf("form_post answer %d %s", r.StatusCode, r.Header.Get("Location"))
			}
			r, err = c.http.Get(r.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			return r
		}
		f.as("apple-sub-1", "ann@privaterelay.appleid.com", true)
		a := e.client()
		mustLand(t, landing(t, appleFlow(a, a)), e.url+"/welcome")
		if got := a.mustHaveSession(t).User; got.Name != "Ann Apple" || got.Email != "ann@privaterelay.appleid.com" || !got.EmailVerified {
			t.Fatalf("apple user: %+v", got)
		}
		// Posted to another browser (no state cookie): refused.
		victim := e.client()
		// (Without the cookie the state is not looked up, so the answer
		// is JSON rather than a redirect to the flow's error page.)
		if r := appleFlow(victim, e.client()); r.StatusCode != 400 {
			t.Fatalf("form post to another browser: %d", r.StatusCode)
		}
		if victim.me(t) != nil {
			t.Fatal("signed in by a form post to another browser")
		}
		// Only form_post providers take a POST callback, and other POSTs
		// still meet the origin check.
		req, _ := http.NewRequest("POST", e.url+"/api/auth/oauth/acme/callback", strings.NewReader("state=x&code=y"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", f.url())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST callback of a GET provider: %d", resp.StatusCode)
		}
		e.client().do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "apple"}).mustError(t, 401, "UNAUTHENTICATED")

		// Microsoft: the issuer is the tenant's, from the token's tid;
		// the address counts as verified only with xms_edov.
		ms.as("ms-1", "mo@contoso.example", false)
		m := e.client()
		mustLand(t, m.social(t, ms, "microsoft", "callbackURL=/home"), e.url+"/home")
		if got := m.mustHaveSession(t).User; got.Email != "mo@contoso.example" || got.EmailVerified {
			t.Fatalf("microsoft user: %+v", got)
		}
		ms.set(func(m *fakeProvider) { m.badIssuer = true })
		m2 := e.client()
		mustLand(t, m2.social(t, ms, "microsoft", "callbackURL=/home&errorCallbackURL=/oops"), e.url+"/oops?error=INVALID_ID_TOKEN")
		if m2.me(t) != nil {
			t.Fatal("signed in with a token of another tenant's issuer")
		}
	})
}

// With verified addresses required, an account the provider did not
// verify is refused, and nothing of it is kept.
func TestSocialRequireVerifiedEmail(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, func(c *kavach.Config) { c.Email.RequireVerification = true })
		f.as("d-9", "unverified@example.com", false)
		c := e.client()
		mustLand(t, c.social(t, f, "discord", "callbackURL=/home&errorCallbackURL=/oops"), e.url+"/oops?error=EMAIL_NOT_VERIFIED")
		if c.me(t) != nil {
			t.Fatal("signed in with an unverified address")
		}
		if _, err := e.store.Users().GetByEmail(t.Context(), "unverified@example.com"); err == nil {
			t.Fatal("the refused sign-in left a user behind")
		}
		f.as("d-10", "verified@example.com", true)
		mustLand(t, c.social(t, f, "discord", "callbackURL=/home"), e.url+"/home")
		c.mustHaveSession(t)
	})
}

// Found in review (the test fails if it comes back): an unverified account created through a provider that does not
// vouch for the address (account pre-hijacking) must not keep its provider
// link once the address owner proves the address with a magic link.
func TestMagicLinkEndsSquattersSocialAccount(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)
		// The squatter's provider account claims ada's address, unverified.
		f.as("sub-squatter", "ada@example.com", false)
		squatter := e.client()
		mustLand(t, squatter.social(t, f, "acme", "callbackURL=/home&newUserCallbackURL=/welcome"), e.url+"/welcome")

		// Ada proves the address with a magic link: the account is hers now.
		e.client().do("POST", "/api/auth/magic-link/send", map[string]any{"email": "ada@example.com", "callbackURL": "/dashboard"}).must(t, 200)
		link := e.waitMail("ada@example.com", "Your sign-in link")
		ada := e.client()
		ada.do("GET", e.relative(link), nil).must(t, 302)
		ada.mustBeSignedIn("ada@example.com")
		squatter.mustBeSignedOut()

		// The squatter signs in again with the provider account.
		f.as("sub-squatter", "ada@example.com", false)
		again := e.client()
		again.social(t, f, "acme", "callbackURL=/home&errorCallbackURL=/oops")
		if me := again.me(t); me != nil && me.User.Email == "ada@example.com" {
			t.Fatalf("the squatter's provider account still signs in to ada's verified account (user %s)", me.User.ID)
		}
	})
}

// Found in review (the test fails if it comes back): unlink refuses to remove the last way to sign in, counting a
// passkey as one; deleting that passkey afterwards must be refused too,
// or the account is left with no password, no provider and no passkey.
func TestLastPasskeyCannotBeDeleted(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)
		f.as("sub-eve", "eve@example.com", true)
		eve := e.client()
		eve.social(t, f, "acme", "callbackURL=/home")
		p := eve.registerPasskey(e.newDevice(), "phone")
		eve.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "acme"}).must(t, 200)
		eve.do("DELETE", "/api/auth/passkey/credentials/"+p.ID, nil).mustError(t, 409, "LAST_ACCOUNT")
		if l := eve.passkeys(); len(l) != 1 {
			t.Fatalf("the last passkey was deleted: accounts %v, passkeys %v", eve.accounts(t), l)
		}
	})
}

// Found in review (the test fails if it comes back): a passkey marked as cloned is refused for good, so it is no way
// in; unlink must not count it as the remaining sign-in method.
func TestUnlinkIgnoresClonedPasskey(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)
		f.as("sub-eve", "eve@example.com", true)
		eve := e.client()
		eve.social(t, f, "acme", "callbackURL=/home")
		d := e.newDevice()
		eve.registerPasskey(d, "phone")
		d.cred.Counter = 10
		e.client().passkeySignIn(e.client().assertion(d, "")).must(t, 200)
		d.cred.Counter = 10 // a copy of the key: marked and refused from now on
		e.client().passkeySignIn(e.client().assertion(d, "")).mustError(t, 403, "PASSKEY_CLONED")
		if l := eve.passkeys(); len(l) != 1 || !l[0].CloneWarning {
			t.Fatalf("not marked: %+v", l)
		}
		// The cloned passkey is no way in: the provider account is the last.
		eve.do("POST", "/api/auth/oauth/unlink", map[string]any{"provider": "acme"}).mustError(t, 409, "LAST_ACCOUNT")
	})
}

// Found in review (the test fails if it comes back): automatic linking to a user with two-factor authentication is
// committed although the second factor was never given: whoever holds a
// provider account with the same (provider-verified) address gets a
// permanent link by only reaching the second-factor page.
func TestAutoLinkWaitsForSecondFactor(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)
		owner := e.client()
		owner.signUp("ada@example.com")
		e.verifyEmail(t, "ada@example.com")
		owner.enableTwoFactor(goodPassword)

		f.as("sub-other", "ada@example.com", true)
		c := e.client()
		mustLand(t, c.social(t, f, "acme", "callbackURL=/home"), e.url+"/two-factor?callbackURL="+url.QueryEscape(e.url+"/home"))
		// The second factor is never given.
		if _, err := e.store.Accounts().GetByProvider(t.Context(), "acme", "sub-other"); err == nil {
			t.Fatalf("the provider account was linked to ada before any second factor: accounts %v", owner.accounts(t))
		}
	})
}

// Found in review (the test fails if it comes back): a link flow finishes without the signed-in session that started
// it. Started, then abandoned and signed out of (a shared computer), it
// can still be finished within ten minutes by whoever uses the browser
// next with their own provider account, which then signs in to the
// first user's account.
func TestLinkNeedsTheSameSignIn(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)
		cy := e.client()
		me := cy.signUp("cy@example.com")
		var link struct {
			URL string `json:"url"`
		}
		cy.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "acme", "callbackURL": "/settings"}).must(t, 200).decode(t, &link)
		cy.do("POST", "/api/auth/sign-out", nil).must(t, 200)
		cy.mustBeSignedOut()

		// The next person at the browser goes on with the provider page.
		f.as("sub-stranger", "stranger@example.org", true)
		cy.socialFlow(t, f, link.URL)
		if a, err := e.store.Accounts().GetByProvider(t.Context(), "acme", "sub-stranger"); err == nil && a.UserID == me.User.ID {
			s := e.client()
			s.social(t, f, "acme", "callbackURL=/home")
			t.Fatalf("a link started before sign-out was finished with another provider account; it now signs in as %s", s.mustHaveSession(t).User.Email)
		}
	})
}
