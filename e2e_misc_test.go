package kavach_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

func TestHealthReadyHeadersAndJSONErrors(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		c := e.client()
		c.do("GET", "/healthz", nil).must(t, 200)
		var ready map[string]string
		c.do("GET", "/readyz", nil).must(t, 200).decode(t, &ready)
		if ready["database"] != e.store.Dialect() {
			t.Fatalf("readyz %v", ready)
		}
		r := c.do("GET", "/api/auth/session", nil)
		for h, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
			"Cache-Control":           "no-store",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		c.do("GET", "/api/auth/nope", nil).mustError(t, 404, "NOT_FOUND")
		c.do("GET", "/api/auth/sign-in/email", nil).mustError(t, 405, "METHOD_NOT_ALLOWED")
		c.do("DELETE", "/api/auth/user", nil).mustError(t, 405, "METHOD_NOT_ALLOWED")
	})
}

func TestReadyzFailsWhenDatabaseIsGone(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		e.store.Close()
		e.client().do("GET", "/readyz", nil).mustError(t, 503, "NOT_READY")
		e.client().do("GET", "/healthz", nil).must(t, 200)
	})
}

func TestSessionCookieLifetimeAndSliding(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		e.client().signUp("quinn@example.com")

		// rememberMe=false: a browser-session cookie (no Expires/Max-Age).
		b := e.client()
		r := b.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "quinn@example.com", "password": goodPassword, "rememberMe": false}).must(t, 200)
		if ck := r.Header.Get("Set-Cookie"); strings.Contains(ck, "Expires=") || strings.Contains(ck, "Max-Age=") {
			t.Fatalf("browser-session cookie has a lifetime: %q", ck)
		}
		var d authData
		r.decode(t, &d)
		if got := d.Session.ExpiresAt.Sub(e.clock.Now()); got > 25*time.Hour {
			t.Fatalf("browser session lives %v on the server", got)
		}

		a := e.client()
		r = a.signIn("quinn@example.com", goodPassword).must(t, 200)
		if ck := r.Header.Get("Set-Cookie"); !strings.Contains(ck, "Max-Age=") {
			t.Fatalf("remembered cookie has no lifetime: %q", ck)
		}
		r.decode(t, &d)
		first := d.Session.ExpiresAt
		// Within a day nothing slides (and nothing is written).
		e.clock.Advance(2 * time.Hour)
		r = a.do("GET", "/api/auth/session", nil).must(t, 200)
		if r.Header.Get("Set-Cookie") != "" {
			t.Fatal("cookie re-sent before the update age")
		}
		// After a day the expiry slides and the cookie is re-sent.
		e.clock.Advance(23 * time.Hour)
		r = a.do("GET", "/api/auth/session", nil).must(t, 200)
		if r.Header.Get("Set-Cookie") == "" {
			t.Fatal("cookie not refreshed after sliding")
		}
		var s kavach.SessionData
		r.decode(t, &s)
		if !s.Session.ExpiresAt.After(first) {
			t.Fatalf("expiry did not slide: %v vs %v", s.Session.ExpiresAt, first)
		}
		// Unused for longer than the TTL: gone.
		e.clock.Advance(8 * 24 * time.Hour)
		r = a.do("GET", "/api/auth/session", nil).must(t, 200)
		if string(r.Data) != "null" {
			t.Fatalf("expired session still valid: %s", r.Raw)
		}
		if !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("dead cookie not cleared: %q", r.Header.Get("Set-Cookie"))
		}
	})
}

func TestHTTPSBaseURLUsesHostPrefixedSecureCookie(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		// The listener is plain http, but cookie attributes follow the
		// public base URL (TLS ends at a proxy in front of us).
		e := newEnv(t, open, func(c *kavach.Config) { c.BaseURL = "https://auth.example.com" })
		c := e.client()
		c.headers["Origin"] = "https://auth.example.com"
		r := c.do("POST", "/api/auth/sign-up/email", map[string]any{"email": "rita@example.com", "password": goodPassword}).must(t, 201)
		ck := r.Header.Get("Set-Cookie")
		if !strings.HasPrefix(ck, "__Host-kavach_session=") || !strings.Contains(ck, "Secure") || !strings.Contains(ck, "Path=/") || strings.Contains(ck, "Domain=") {
			t.Fatalf("cookie %q", ck)
		}
		if r.Header.Get("Strict-Transport-Security") == "" {
			t.Fatal("no HSTS on https")
		}
	})
}

func TestSessionCacheIsInvalidatedOnRevoke(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.Session.CacheTTL = time.Hour })
		a := e.client()
		d := a.signUp("sam@example.com")
		a.do("GET", "/api/auth/session", nil).must(t, 200) // now cached
		b := e.client()
		b.headers["Authorization"] = "Bearer " + d.Token
		b.do("GET", "/api/auth/user", nil).must(t, 200)
		a.do("POST", "/api/auth/sign-out", nil).must(t, 200)
		b.do("GET", "/api/auth/user", nil).mustError(t, 401, "UNAUTHENTICATED")
	})
}

// eventSink collects delivered events.
type eventSink struct {
	mu    sync.Mutex
	types []string
}

func (s *eventSink) handle(_ context.Context, e storage.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.types = append(s.types, e.Type)
	return nil
}

func (s *eventSink) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		need := map[string]int{}
		for _, w := range want {
			need[w]++
		}
		s.mu.Lock()
		for _, g := range s.types {
			need[g]--
		}
		s.mu.Unlock()
		all := true
		for _, n := range need {
			all = all && n <= 0
		}
		if all {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("events %v never all arrived; got %v", want, s.types)
}

func TestEventsAreDeliveredAndSurviveARestart(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		store := open(t)
		// The first node's receiver is down: every delivery fails.
		down := newEnv(t, func(testing.TB) storage.Store { return store }, func(c *kavach.Config) {
			c.OnEvent = func(context.Context, storage.Event) error { return errors.New("receiver down") }
		})
		down.client().signUp("uma@example.com")
		down.k.Close() // the process "dies" with the events undelivered

		sink := &eventSink{}
		up := newEnv(t, func(testing.TB) storage.Store { return store }, func(c *kavach.Config) { c.OnEvent = sink.handle })
		sink.waitFor(t, "user.created", "session.created")
		up.client().signIn("uma@example.com", goodPassword).must(t, 200)
		sink.waitFor(t, "user.created", "session.created", "session.created")
	})
}

// Bytes a database refuses must come back as a client error, never a 500.
func TestHostileTextIsAClientError(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		a := e.client()
		a.signUp("val@example.com")

		// A broken or very long User-Agent is recorded cleaned, not refused.
		for _, ua := range []string{"bad\xff", strings.Repeat("a", 511) + "é"} {
			c := e.client()
			c.headers["User-Agent"] = ua
			c.signIn("val@example.com", goodPassword).must(t, 200)
		}
		bad := []struct {
			name, method, path, body string
			status                   int
		}{
			{"NUL in image", "PATCH", "/api/auth/user", `{"image":"https://x.example/\u0000"}`, 400},
			{"NUL in name", "PATCH", "/api/auth/user", `{"name":"a\u0000b"}`, 400},
			{"NUL in sign-up image", "POST", "/api/auth/sign-up/email", `{"email":"w@example.com","password":"` + goodPassword + `","image":"https://x.example/\u0000"}`, 400},
			{"NUL in sign-up email", "POST", "/api/auth/sign-up/email", `{"email":"w\u0000@example.com","password":"` + goodPassword + `"}`, 400},
			{"NUL in session id", "POST", "/api/auth/sessions/revoke", `{"id":"ses_\u0000"}`, 404},
			{"NUL in sign-in email", "POST", "/api/auth/sign-in/email", `{"email":"val\u0000@example.com","password":"x"}`, 401},
			{"NUL in forgot email", "POST", "/api/auth/password/forgot", `{"email":"val\u0000@example.com"}`, 400},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				if r := a.do(b.method, b.path, b.body); r.Status != b.status {
					t.Fatalf("status %d, want %d: %s", r.Status, b.status, r.Raw)
				}
			})
		}
		a.do("GET", "/api/auth/email/verify?token=%00%ff", nil).mustError(t, 400, "INVALID_TOKEN")
	})
}

func TestEmptyChunkedBodyOnOptionalEndpoint(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		d := e.client().signUp("wes@example.com")
		req, _ := http.NewRequest("POST", e.url+"/api/auth/sessions/revoke-others", io.NopCloser(strings.NewReader("")))
		req.ContentLength = -1 // chunked
		req.Header.Set("Authorization", "Bearer "+d.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("empty chunked body: %d", resp.StatusCode)
		}
	})
}
