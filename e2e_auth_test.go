package kavach_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestSignUpSignInSessionSignOut(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		c := e.client()
		d := c.signUp("Alice@Example.com")
		if d.User.Email != "alice@example.com" || d.Session == nil || d.Token == "" {
			t.Fatalf("sign-up answer %+v", d)
		}
		// The cookie from sign-up is a session.
		var s kavach.SessionData
		c.do("GET", "/api/auth/session", nil).must(t, 200).decode(t, &s)
		if s.User.ID != d.User.ID || s.Session.ID != d.Session.ID {
			t.Fatalf("session %+v", s)
		}
		// A fresh client signs in with the normalized address.
		c2 := e.client()
		r := c2.signIn("  ALICE@example.com ", goodPassword).must(t, 200)
		if ck := r.Header.Get("Set-Cookie"); !strings.Contains(ck, kavach.CookieName+"=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") {
			t.Fatalf("cookie %q", ck)
		}
		c2.do("POST", "/api/auth/sign-out", nil).must(t, 200)
		if r := c2.do("GET", "/api/auth/session", nil).must(t, 200); string(r.Data) != "null" {
			t.Fatalf("session after sign-out: %s", r.Raw)
		}
		// The first client's session is unaffected.
		c.do("GET", "/api/auth/user", nil).must(t, 200)
	})
}

func TestSignUpRejects(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		c := e.client()
		c.signUp("bob@example.com")
		cases := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"duplicate", map[string]any{"email": "BOB@example.com", "password": goodPassword}, 409, "USER_ALREADY_EXISTS"},
			{"short password", map[string]any{"email": "c@example.com", "password": "short"}, 400, "PASSWORD_TOO_SHORT"},
			{"common password", map[string]any{"email": "c@example.com", "password": "password123"}, 400, "PASSWORD_TOO_COMMON"},
			{"similar to email", map[string]any{"email": "charlotte@example.com", "password": "charlotte1999"}, 400, "PASSWORD_TOO_SIMILAR"},
			{"bad email", map[string]any{"email": "not-an-email", "password": goodPassword}, 400, "INVALID_REQUEST"},
			{"unknown field", `{"email":"c@example.com","password":"` + goodPassword + `","admin":true}`, 400, "INVALID_REQUEST"},
			{"wrong type", `{"email":"c@example.com","password":12345678}`, 400, "INVALID_REQUEST"},
			{"malformed", `{"email":`, 400, "INVALID_REQUEST"},
			{"empty", ``, 400, "INVALID_REQUEST"},
			{"oversized", `{"email":"c@example.com","name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "PAYLOAD_TOO_LARGE"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.do("POST", "/api/auth/sign-up/email", tc.body).mustError(t, tc.status, tc.code)
				if tc.name == "unknown field" && !strings.Contains(r.Error.Message, `"admin"`) {
					t.Fatalf("message does not name the field: %q", r.Error.Message)
				}
				if tc.name == "wrong type" && !strings.Contains(r.Error.Message, "password") {
					t.Fatalf("message does not name the field: %q", r.Error.Message)
				}
			})
		}
		// Wrong content type.
		req, _ := http.NewRequest("POST", e.url+"/api/auth/sign-up/email", strings.NewReader("email=a"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 415 {
			t.Fatalf("form body: status %d", resp.StatusCode)
		}
	})
}

func TestSignInFailuresLookAlike(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		e.client().signUp("carol@example.com")
		c := e.client()
		wrong := c.signIn("carol@example.com", "not-the-password-1").mustError(t, 401, "INVALID_CREDENTIALS")
		unknown := c.signIn("nobody@example.com", "not-the-password-1").mustError(t, 401, "INVALID_CREDENTIALS")
		malformed := c.signIn("nobody", "not-the-password-1").mustError(t, 401, "INVALID_CREDENTIALS")
		if string(wrong.Raw) != string(unknown.Raw) || string(wrong.Raw) != string(malformed.Raw) {
			t.Fatalf("answers differ:\n%s\n%s\n%s", wrong.Raw, unknown.Raw, malformed.Raw)
		}
		if len(wrong.Header.Values("Set-Cookie")) != 0 {
			t.Fatal("failed sign-in set a cookie")
		}
	})
}

func TestBearerTokenAndLibraryAPI(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		d := e.client().signUp("dave@example.com")
		api := e.client()
		api.headers["Authorization"] = "Bearer " + d.Token
		var u kavach.User
		api.do("GET", "/api/auth/user", nil).must(t, 200).decode(t, &u)
		if u.Email != "dave@example.com" {
			t.Fatalf("user %+v", u)
		}
		// Library use: Auth.GetSession on a plain request. It never slides
		// the expiry, since it cannot re-send the cookie.
		e.clock.Advance(25 * time.Hour)
		req := httptest_request(t, "Bearer "+d.Token)
		res := e.k.Auth.GetSession(context.Background(), req)
		if !res.Success || res.Data == nil || res.Data.User.ID != d.User.ID {
			t.Fatalf("GetSession %+v", res)
		}
		if !res.Data.Session.ExpiresAt.Equal(d.Session.ExpiresAt) {
			t.Fatalf("library lookup slid the expiry: %v → %v", d.Session.ExpiresAt, res.Data.Session.ExpiresAt)
		}
		none := e.k.Auth.GetUser(context.Background(), httptest_request(t, ""))
		if !none.Success || none.Data != nil || none.Error != nil {
			t.Fatalf("GetUser without session %+v", none)
		}
		bad := e.k.Auth.GetSession(context.Background(), httptest_request(t, "Bearer nope"))
		if !bad.Success || bad.Data != nil {
			t.Fatalf("GetSession with bad token %+v", bad)
		}
		// A bearer request needs no Origin, even from a hostile one.
		api.headers["Origin"] = "https://evil.example"
		api.do("POST", "/api/auth/sessions/revoke-others", nil).must(t, 200)
	})
}

func httptest_request(t *testing.T, auth string) *http.Request {
	r, err := http.NewRequest("GET", "http://example.invalid/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func TestSessionsListRevokeAndOthers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		a := e.client()
		a.signUp("erin@example.com")
		b, c := e.client(), e.client()
		b.signIn("erin@example.com", goodPassword).must(t, 200)
		c.signIn("erin@example.com", goodPassword).must(t, 200)
		var list []kavach.Session
		a.do("GET", "/api/auth/sessions", nil).must(t, 200).decode(t, &list)
		if len(list) != 3 {
			t.Fatalf("sessions %d", len(list))
		}
		var current, other string
		for _, s := range list {
			if s.Current {
				current = s.ID
			} else {
				other = s.ID
			}
		}
		if current == "" || other == "" {
			t.Fatalf("no current flag: %+v", list)
		}
		a.do("POST", "/api/auth/sessions/revoke", map[string]string{"id": other}).must(t, 200)
		a.do("POST", "/api/auth/sessions/revoke", map[string]string{"id": other}).mustError(t, 404, "SESSION_NOT_FOUND")
		a.do("POST", "/api/auth/sessions/revoke", map[string]string{}).mustError(t, 400, "INVALID_REQUEST")
		// Another user cannot revoke this user's session.
		mallory := e.client()
		mallory.signUp("mallory@example.com")
		mallory.do("POST", "/api/auth/sessions/revoke", map[string]string{"id": current}).mustError(t, 404, "SESSION_NOT_FOUND")
		a.do("GET", "/api/auth/user", nil).must(t, 200)

		var n map[string]int
		a.do("POST", "/api/auth/sessions/revoke-others", nil).must(t, 200).decode(t, &n)
		if n["revoked"] != 1 {
			t.Fatalf("revoke-others %v", n)
		}
		for _, x := range []*client{b, c} {
			x.do("GET", "/api/auth/user", nil).mustError(t, 401, "UNAUTHENTICATED")
		}
		a.do("GET", "/api/auth/user", nil).must(t, 200)
		e.client().do("GET", "/api/auth/sessions", nil).mustError(t, 401, "UNAUTHENTICATED")
	})
}

func TestPasswordChange(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		a := e.client()
		a.signUp("frank@example.com")
		b := e.client()
		b.signIn("frank@example.com", goodPassword).must(t, 200)
		const next = "quiet-meadow-lantern-77"
		a.do("POST", "/api/auth/password/change", map[string]any{"currentPassword": "wrong-password-0", "newPassword": next}).
			mustError(t, 400, "INVALID_REQUEST")
		a.do("POST", "/api/auth/password/change", map[string]any{"currentPassword": goodPassword, "newPassword": "123"}).
			mustError(t, 400, "PASSWORD_TOO_SHORT")
		a.do("POST", "/api/auth/password/change", map[string]any{"currentPassword": goodPassword, "newPassword": next, "revokeOtherSessions": true}).
			must(t, 200)
		b.do("GET", "/api/auth/user", nil).mustError(t, 401, "UNAUTHENTICATED")
		a.do("GET", "/api/auth/user", nil).must(t, 200)
		e.client().signIn("frank@example.com", goodPassword).mustError(t, 401, "INVALID_CREDENTIALS")
		e.client().signIn("frank@example.com", next).must(t, 200)
	})
}

func TestPasswordForgotAndReset(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		a := e.client()
		a.signUp("grace@example.com")
		anon := e.client()
		known := anon.do("POST", "/api/auth/password/forgot", map[string]string{"email": "grace@example.com"}).must(t, 200)
		unknown := anon.do("POST", "/api/auth/password/forgot", map[string]string{"email": "nobody@example.com"}).must(t, 200)
		if string(known.Raw) != string(unknown.Raw) {
			t.Fatalf("forgot answers differ: %s vs %s", known.Raw, unknown.Raw)
		}
		link := e.waitMail("grace@example.com", "Reset your password")
		if !strings.HasPrefix(link, e.url+"/reset-password?token=") {
			t.Fatalf("reset link %s", link)
		}
		tok := tokenOf(t, link)
		const next = "silver-orchard-compass-9"
		// A weak password is refused without spending the token.
		anon.do("POST", "/api/auth/password/reset", map[string]string{"token": tok, "newPassword": "password"}).mustError(t, 400, "PASSWORD_TOO_COMMON")
		anon.do("POST", "/api/auth/password/reset", map[string]string{"token": tok, "newPassword": next}).must(t, 200)
		// Single use.
		anon.do("POST", "/api/auth/password/reset", map[string]string{"token": tok, "newPassword": next + "x"}).mustError(t, 400, "INVALID_TOKEN")
		anon.do("POST", "/api/auth/password/reset", map[string]string{"token": "made-up", "newPassword": next}).mustError(t, 400, "INVALID_TOKEN")
		// Reset ends every session.
		a.do("GET", "/api/auth/user", nil).mustError(t, 401, "UNAUTHENTICATED")
		e.client().signIn("grace@example.com", goodPassword).mustError(t, 401, "INVALID_CREDENTIALS")
		e.client().signIn("grace@example.com", next).must(t, 200)

		// Expired token.
		anon.do("POST", "/api/auth/password/forgot", map[string]string{"email": "grace@example.com"}).must(t, 200)
		tok2 := tokenOf(t, e.waitMail("grace@example.com", "Reset your password"))
		e.clock.Advance(61 * time.Minute)
		anon.do("POST", "/api/auth/password/reset", map[string]string{"token": tok2, "newPassword": "another-fine-passphrase"}).mustError(t, 400, "INVALID_TOKEN")

		// redirectTo must be trusted.
		anon.do("POST", "/api/auth/password/forgot", map[string]string{"email": "grace@example.com", "redirectTo": "https://evil.example/steal"}).
			mustError(t, 400, "UNTRUSTED_REDIRECT")
		anon.do("POST", "/api/auth/password/forgot", map[string]string{"email": "grace@example.com", "redirectTo": "/account/reset"}).must(t, 200)
		if link := e.waitMail("grace@example.com", "Reset your password"); !strings.HasPrefix(link, e.url+"/account/reset?token=") {
			t.Fatalf("redirected reset link %s", link)
		}
	})
}

func TestEmailVerification(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		a := e.client()
		a.signUp("heidi@example.com")
		// Sign-up sends a link on its own.
		link := e.waitMail("heidi@example.com", "Verify your email")
		// Asking again replaces it: the first link dies.
		a.do("POST", "/api/auth/email/send-verification", nil).must(t, 200)
		link2 := e.waitMail("heidi@example.com", "Verify your email")
		path := strings.TrimPrefix(link, e.url)
		a.do("GET", path, nil).mustError(t, 400, "INVALID_TOKEN")
		var out struct {
			Verified bool        `json:"verified"`
			User     kavach.User `json:"user"`
		}
		a.do("GET", strings.TrimPrefix(link2, e.url), nil).must(t, 200).decode(t, &out)
		if !out.Verified || !out.User.EmailVerified {
			t.Fatalf("verify answer %+v", out)
		}
		var u kavach.User
		a.do("GET", "/api/auth/user", nil).must(t, 200).decode(t, &u)
		if !u.EmailVerified {
			t.Fatal("user not verified after verify (stale cache?)")
		}
		a.do("GET", strings.TrimPrefix(link2, e.url), nil).mustError(t, 400, "INVALID_TOKEN")
		// Unknown and verified addresses get the same answer.
		r1 := e.client().do("POST", "/api/auth/email/send-verification", map[string]string{"email": "heidi@example.com"}).must(t, 200)
		r2 := e.client().do("POST", "/api/auth/email/send-verification", map[string]string{"email": "nobody@example.com"}).must(t, 200)
		if string(r1.Raw) != string(r2.Raw) {
			t.Fatal("send-verification answers differ")
		}
		// A callbackURL redirects, with the error on failure.
		b := e.client()
		b.signUp("ivan@example.com")
		l := e.waitMail("ivan@example.com", "Verify your email")
		_ = l
		b.do("POST", "/api/auth/email/send-verification", map[string]string{"callbackURL": "/welcome"}).must(t, 200)
		l = e.waitMail("ivan@example.com", "Verify your email")
		r := b.do("GET", strings.TrimPrefix(l, e.url), nil).must(t, 303)
		if loc := r.Header.Get("Location"); loc != e.url+"/welcome" {
			t.Fatalf("redirect to %q", loc)
		}
		r = b.do("GET", strings.TrimPrefix(l, e.url), nil).must(t, 303)
		if loc := r.Header.Get("Location"); loc != e.url+"/welcome?error=INVALID_TOKEN" {
			t.Fatalf("redirect to %q", loc)
		}
		b.do("GET", "/api/auth/email/verify?token=x&callbackURL=https://evil.example/", nil).mustError(t, 400, "UNTRUSTED_REDIRECT")
	})
}

func TestUserProfile(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		a := e.client()
		a.signUp("judy@example.com")
		var u kavach.User
		a.do("PATCH", "/api/auth/user", map[string]any{"name": "Judy J", "image": "https://img.example/j.png"}).must(t, 200).decode(t, &u)
		if u.Name != "Judy J" || u.Image == nil || *u.Image != "https://img.example/j.png" {
			t.Fatalf("updated %+v", u)
		}
		a.do("GET", "/api/auth/user", nil).must(t, 200).decode(t, &u)
		if u.Name != "Judy J" {
			t.Fatalf("GET after PATCH served stale user %+v", u)
		}
		a.do("PATCH", "/api/auth/user", map[string]any{"email": "x@example.com"}).mustError(t, 400, "INVALID_REQUEST")
		a.do("PATCH", "/api/auth/user", map[string]any{"image": "javascript:alert(1)"}).mustError(t, 400, "INVALID_REQUEST")
		a.do("PATCH", "/api/auth/user", map[string]any{"name": strings.Repeat("n", 201)}).mustError(t, 400, "INVALID_REQUEST")
		e.client().do("PATCH", "/api/auth/user", map[string]any{"name": "x"}).mustError(t, 401, "UNAUTHENTICATED")
	})
}

func TestOriginCheck(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.TrustedOrigins = []string{"https://app.example.com"} })
		a := e.client()
		a.signUp("kim@example.com")
		cases := []struct {
			name    string
			headers map[string]string
			want    int
		}{
			{"hostile origin", map[string]string{"Origin": "https://evil.example"}, 403},
			{"null origin", map[string]string{"Origin": "null"}, 403},
			{"hostile referer", map[string]string{"Referer": "https://evil.example/page"}, 403},
			{"cross-site fetch without origin", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"own origin", map[string]string{"Origin": e.url}, 200},
			{"trusted app origin", map[string]string{"Origin": "https://app.example.com"}, 200},
			{"non-browser client", map[string]string{}, 200},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a.headers = tc.headers
				r := a.do("PATCH", "/api/auth/user", map[string]any{"name": "K"})
				if r.Status != tc.want {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.want, r.Raw)
				}
				if tc.want == 403 && r.Error.Code != "INVALID_ORIGIN" {
					t.Fatalf("code %s", r.Error.Code)
				}
			})
		}
		// Login CSRF: a hostile page cannot sign a browser in either.
		x := e.client()
		x.headers = map[string]string{"Origin": "https://evil.example"}
		x.signIn("kim@example.com", goodPassword).mustError(t, 403, "INVALID_ORIGIN")
	})
}

func TestRateLimitPerIPAndAccount(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.Limits.PerIP = 3; c.Limits.PerAccount = 2 })
		c := e.client()
		for i := range 3 {
			r := c.do("POST", "/api/auth/password/forgot", map[string]string{"email": "user" + string(rune('a'+i)) + "@example.com"})
			r.must(t, 200)
		}
		r := c.do("POST", "/api/auth/password/forgot", map[string]string{"email": "userz@example.com"}).mustError(t, 429, "RATE_LIMITED")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		// Other endpoints have their own budget; per-account limits apply
		// whatever the IP.
		c.signIn("lee@example.com", "whatever-password-1").mustError(t, 401, "INVALID_CREDENTIALS")
		c.signIn("lee@example.com", "whatever-password-1").mustError(t, 401, "INVALID_CREDENTIALS")
		c.signIn("lee@example.com", "whatever-password-1").mustError(t, 429, "RATE_LIMITED")
		// The window passes.
		e.clock.Advance(61 * time.Second)
		c.signIn("lee@example.com", "whatever-password-1").mustError(t, 401, "INVALID_CREDENTIALS")
	})
}

func TestTrustedProxyClientIP(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.Limits.PerIP = 1; c.TrustedProxies = []string{"127.0.0.1"} })
		// Behind a trusted proxy, each forwarded client has its own budget.
		for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
			c := e.client()
			c.headers["X-Forwarded-For"] = ip
			c.do("POST", "/api/auth/password/forgot", map[string]string{"email": "m@example.com"}).must(t, 200)
		}
		c := e.client()
		c.headers["X-Forwarded-For"] = "203.0.113.1"
		c.do("POST", "/api/auth/password/forgot", map[string]string{"email": "m@example.com"}).mustError(t, 429, "RATE_LIMITED")
	})
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		// Without trusting the proxy, a spoofed header buys nothing.
		e := newEnv(t, open, func(c *kavach.Config) { c.Limits.PerIP = 1 })
		c := e.client()
		c.headers["X-Forwarded-For"] = "203.0.113.1"
		c.do("POST", "/api/auth/password/forgot", map[string]string{"email": "m@example.com"}).must(t, 200)
		c.headers["X-Forwarded-For"] = "203.0.113.2"
		c.do("POST", "/api/auth/password/forgot", map[string]string{"email": "m@example.com"}).mustError(t, 429, "RATE_LIMITED")
	})
}

func TestLockout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.Limits.LockoutThreshold = 3 })
		e.client().signUp("nina@example.com")
		c := e.client()
		for range 3 {
			c.signIn("nina@example.com", "wrong-password-xx").mustError(t, 401, "INVALID_CREDENTIALS")
		}
		// Locked: even the right password is refused, with a Retry-After.
		r := c.signIn("nina@example.com", goodPassword).mustError(t, 429, "TOO_MANY_ATTEMPTS")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After on lockout")
		}
		// An unknown address locks the same way, so locking reveals nothing.
		for range 3 {
			c.signIn("ghost@example.com", "wrong-password-xx").mustError(t, 401, "INVALID_CREDENTIALS")
		}
		u := c.signIn("ghost@example.com", "wrong-password-xx").mustError(t, 429, "TOO_MANY_ATTEMPTS")
		if u.Error.Message != r.Error.Message {
			t.Fatal("lockout messages differ between known and unknown accounts")
		}
		e.clock.Advance(16 * time.Minute)
		c.signIn("nina@example.com", goodPassword).must(t, 200)
		// Success cleared the counter: two more failures do not lock.
		for range 2 {
			c.signIn("nina@example.com", "wrong-password-xx").mustError(t, 401, "INVALID_CREDENTIALS")
		}
		c.signIn("nina@example.com", goodPassword).must(t, 200)
		// A password reset lifts a lock.
		for range 3 {
			c.signIn("nina@example.com", "wrong-password-xx").mustError(t, 401, "INVALID_CREDENTIALS")
		}
		c.signIn("nina@example.com", goodPassword).mustError(t, 429, "TOO_MANY_ATTEMPTS")
		c.do("POST", "/api/auth/password/forgot", map[string]string{"email": "nina@example.com"}).must(t, 200)
		tok := tokenOf(t, e.waitMail("nina@example.com", "Reset your password"))
		c.do("POST", "/api/auth/password/reset", map[string]string{"token": tok, "newPassword": "brand-new-passphrase-8"}).must(t, 200)
		c.signIn("nina@example.com", "brand-new-passphrase-8").must(t, 200)
	})
}

// Parallel guesses must not get past the lockout: every attempt is counted
// before its password is checked, so at most threshold attempts are ever
// checked and the right password among later ones is refused.
func TestLockoutHoldsUnderParallelGuesses(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		const threshold = 5
		e := newEnv(t, open, func(c *kavach.Config) { c.Limits.LockoutThreshold = threshold })
		e.client().signUp("oscar@example.com")
		const guesses = 30
		statuses := make(chan int, guesses+1)
		var wg sync.WaitGroup
		for i := range guesses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- e.client().signIn("oscar@example.com", fmt.Sprintf("wrong-guess-%02d", i)).Status
			}()
		}
		wg.Wait()
		close(statuses)
		counts := map[int]int{}
		for s := range statuses {
			counts[s]++
		}
		if counts[401] != threshold || counts[429] != guesses-threshold {
			t.Fatalf("answers %v: want %d×401 and %d×429", counts, threshold, guesses-threshold)
		}
		// The right password is refused while locked.
		e.client().signIn("oscar@example.com", goodPassword).mustError(t, 429, "TOO_MANY_ATTEMPTS")
	})
}

func TestLegacyBcryptSignInRehashes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		ctx := context.Background()
		const pw = "imported-from-clerk-1"
		for i, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			hash := prefix + string(h[4:])
			email := "legacy" + string(rune('0'+i)) + "@example.com"
			uid := insertUserWithHash(t, e.store, email, hash)
			e.client().signIn(email, "wrong-password-zz").mustError(t, 401, "INVALID_CREDENTIALS")
			e.client().signIn(email, pw).must(t, 200)
			acct, err := e.store.Accounts().GetCredential(ctx, uid)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(*acct.Password, "$2") || !strings.HasPrefix(*acct.Password, "pbkdf2_sha256$1000$") {
				t.Fatalf("%s: stored hash not upgraded: %s", prefix, *acct.Password)
			}
			e.client().signIn(email, pw).must(t, 200)
		}
	})
}

func TestVerifyLegacyHashHook(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		calls := 0
		e := newEnv(t, open, func(c *kavach.Config) {
			c.VerifyLegacyHash = func(_ context.Context, stored, password string) (bool, error) {
				calls++
				return stored == "legacy:"+password, nil
			}
		})
		uid := insertUserWithHash(t, e.store, "olga@example.com", "legacy:old-system-pass")
		e.client().signIn("olga@example.com", "old-system-pass").must(t, 200)
		acct, _ := e.store.Accounts().GetCredential(context.Background(), uid)
		if !strings.HasPrefix(*acct.Password, "pbkdf2_sha256$") {
			t.Fatalf("not rehashed: %s", *acct.Password)
		}
		e.client().signIn("olga@example.com", "old-system-pass").must(t, 200)
		if calls != 1 {
			t.Fatalf("hook called %d times, want 1 (second sign-in uses the new hash)", calls)
		}
	})
}

func TestWeakerPBKDF2IsUpgraded(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.Password.Iterations = 500 })
		e.client().signUp("pat@example.com")
		// A second node on the same store, with stronger parameters.
		e2 := newEnv(t, func(testing.TB) storage.Store { return e.store }, func(c *kavach.Config) { c.Password.Iterations = 2000 })
		e2.client().signIn("pat@example.com", goodPassword).must(t, 200)
		u, _ := e2.store.Users().GetByEmail(context.Background(), "pat@example.com")
		acct, _ := e2.store.Accounts().GetCredential(context.Background(), u.ID)
		if !strings.HasPrefix(*acct.Password, "pbkdf2_sha256$2000$") {
			t.Fatalf("not upgraded: %s", *acct.Password)
		}
	})
}

func insertUserWithHash(t *testing.T, store storage.Store, email, hash string) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	uid := "user_" + strings.NewReplacer("@", "_", ".", "_").Replace(email)
	u := &storage.User{ID: uid, Email: email, Name: "Legacy", CreatedAt: now, UpdatedAt: now}
	if err := store.Users().Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	a := &storage.Account{ID: "acc_" + uid, UserID: uid, ProviderID: storage.ProviderCredential, ProviderAccountID: uid, Password: &hash, CreatedAt: now, UpdatedAt: now}
	if err := store.Accounts().Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	return uid
}
