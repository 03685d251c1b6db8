package kavach_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage/storagetest"
)

// FuzzEndpoints sends arbitrary bodies to every endpoint that takes one,
// signed in and not: whatever a client sends, the answer is never a 5xx
// and always the JSON envelope. `go test` runs the seeds; `go test
// -fuzz=FuzzEndpoints` explores further.
func FuzzEndpoints(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `1e309`, `{"email":null}`, `{"email":["a"]}`,
		`{"email":"a@example.com","password":"` + goodPassword + `"}`,
		`{"email":"a@example.com","password":"` + strings.Repeat("p", 2000) + `"}`,
		`{"email":"\u0000@example.com","password":"x"}`, `{"name":"\ud800"}`, `{"image":"http://\u0000"}`,
		`{"id":"ses_aaaaaaaaaaaaaaaaaaaaaaaaaa"}`, `{"token":"` + strings.Repeat("t", 300) + `","newPassword":"x"}`,
		`{"currentPassword":1,"newPassword":true}`, `{"rememberMe":"yes"}`, `{"a":{"b":{"c":[[[[[[]]]]]]}}}`,
		`{"email":"a@example.com"}{"email":"b@example.com"}`, "\xff\xfe", `{"redirectTo":"//evil"}`,
	} {
		f.Add(seed)
	}
	k, err := kavach.NewWithStore(kavach.Config{
		BaseURL: "http://localhost:8080", Secret: testSecret, Logger: discardLogger(),
		Password: kavach.PasswordConfig{Iterations: 1000},
		Limits:   kavach.LimitsConfig{PerIP: 1 << 30, PerAccount: 1 << 30, LockoutThreshold: 1 << 30},
		Email:    kavach.EmailConfig{DevDir: f.TempDir()},
	}, storagetest.OpenSQLite(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { k.Close() })
	h := k.Handler()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/auth/sign-up/email", strings.NewReader(`{"email":"fuzz@example.com","password":"`+goodPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != 201 {
		f.Fatalf("sign-up: %d", rec.Code)
	}
	var token string
	for _, c := range rec.Result().Cookies() {
		token = c.Value
	}
	endpoints := []struct{ method, path string }{
		{"POST", "/api/auth/sign-up/email"}, {"POST", "/api/auth/sign-in/email"},
		{"POST", "/api/auth/sessions/revoke"}, {"POST", "/api/auth/sessions/revoke-others"},
		{"POST", "/api/auth/password/change"}, {"POST", "/api/auth/password/forgot"},
		{"POST", "/api/auth/password/reset"}, {"POST", "/api/auth/email/send-verification"},
		{"PATCH", "/api/auth/user"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, ep := range endpoints {
			for _, signedIn := range []bool{false, true} {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if signedIn {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				h.ServeHTTP(rec, req)
				if rec.Code >= 500 {
					t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, rec.Code, rec.Body)
				}
				if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
					t.Fatalf("%s %s with %q: not JSON: %q", ep.method, ep.path, body, rec.Body)
				}
			}
		}
	})
}
