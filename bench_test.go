package kavach_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

// benchInstance builds an instance with one signed-up user and returns it
// with that user's bearer token.
func benchInstance(b *testing.B, open func(testing.TB) storage.Store, mutate func(*kavach.Config)) (*kavach.Kavach, string) {
	b.Helper()
	cfg := kavach.Config{
		BaseURL: "http://localhost:8080", Secret: testSecret, Logger: discardLogger(),
		Password: kavach.PasswordConfig{Iterations: 1000},
		Limits:   kavach.LimitsConfig{PerIP: 1 << 30, PerAccount: 1 << 30},
		Email:    kavach.EmailConfig{DevDir: b.TempDir()},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	k, err := kavach.NewWithStore(cfg, open(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/auth/sign-up/email", strings.NewReader(`{"email":"bench@example.com","password":"`+goodPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	k.Handler().ServeHTTP(rec, req)
	if rec.Code != 201 {
		b.Fatalf("sign-up: %d %s", rec.Code, rec.Body)
	}
	var tok string
	for _, c := range rec.Result().Cookies() {
		if c.Name == kavach.CookieName {
			tok = c.Value
		}
	}
	return k, tok
}

func benchGetSession(b *testing.B, cacheTTL int) {
	for _, d := range storagetest.Drivers(b) {
		b.Run(d.Name, func(b *testing.B) {
			k, tok := benchInstance(b, d.Open, func(c *kavach.Config) {
				if cacheTTL < 0 {
					c.Session.CacheTTL = -1
				}
			})
			req, _ := http.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if r := k.Auth.GetSession(ctx, req); r.Data == nil {
					b.Fatal("no session")
				}
			}
		})
	}
}

// BenchmarkGetSessionCached is the hot path: a valid session already in
// this node's cache costs no query.
func BenchmarkGetSessionCached(b *testing.B) { benchGetSession(b, 0) }

// BenchmarkGetSessionUncached is the same lookup with the cache off: two
// indexed reads (session by token hash, then its user).
func BenchmarkGetSessionUncached(b *testing.B) { benchGetSession(b, -1) }

// BenchmarkSignInHandler measures POST /api/auth/sign-in/email end to end
// in process, at the production hashing cost (600,000 PBKDF2 iterations)
// and at a low cost that shows the handler's own overhead.
func BenchmarkSignInHandler(b *testing.B) {
	for _, iters := range []int{600_000, 1000} {
		for _, d := range storagetest.Drivers(b) {
			b.Run(d.Name+"/iterations="+strconv.Itoa(iters), func(b *testing.B) {
				k, _ := benchInstance(b, d.Open, func(c *kavach.Config) { c.Password.Iterations = iters })
				h := k.Handler()
				body := `{"email":"bench@example.com","password":"` + goodPassword + `"}`
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("POST", "/api/auth/sign-in/email", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("sign-in: %d %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
