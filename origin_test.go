package kavach

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

func TestOrigin(t *testing.T) {
	cases := map[string]string{
		"https://Auth.Example.com":          "https://auth.example.com",
		"https://auth.example.com:443/path": "https://auth.example.com",
		"http://localhost:80":               "http://localhost",
		"http://localhost:8080":             "http://localhost:8080",
		"https://[::1]:8443":                "https://[::1]:8443",
		"ftp://example.com":                 "",
		"/relative":                         "",
		"null":                              "",
		"https:evil.example":                "",
	}
	for in, want := range cases {
		if got := origin(in); got != want {
			t.Errorf("origin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOriginGuard(t *testing.T) {
	g := newOriginGuard("https://auth.example.com:443", []string{"https://app.example.com"}, false)
	dev := newOriginGuard("http://localhost:8080", nil, true)
	cases := []struct {
		name    string
		g       originGuard
		method  string
		headers map[string]string
		want    bool
	}{
		{"GET always passes", g, "GET", map[string]string{"Origin": "https://evil.example"}, true},
		{"base with default port matches browser origin", g, "POST", map[string]string{"Origin": "https://auth.example.com"}, true},
		{"extra trusted origin", g, "POST", map[string]string{"Origin": "https://APP.example.com"}, true},
		{"other origin", g, "POST", map[string]string{"Origin": "https://evil.example"}, false},
		{"sibling subdomain", g, "POST", map[string]string{"Origin": "https://x.auth.example.com"}, false},
		{"scheme downgrade", g, "POST", map[string]string{"Origin": "http://auth.example.com"}, false},
		{"null origin", g, "POST", map[string]string{"Origin": "null"}, false},
		{"referer on trusted origin", g, "PATCH", map[string]string{"Referer": "https://auth.example.com/settings"}, true},
		{"referer elsewhere", g, "PATCH", map[string]string{"Referer": "https://evil.example/"}, false},
		{"cross-site fetch metadata", g, "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"no browser headers", g, "POST", nil, true},
		{"bearer without cookie", g, "POST", map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer x"}, true},
		{"bearer with cookie is still checked", g, "POST", map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer x", "Cookie": "a=b"}, false},
		{"dev loopback alias", dev, "POST", map[string]string{"Origin": "http://127.0.0.1:8080"}, true},
		{"dev other port", dev, "POST", map[string]string{"Origin": "http://127.0.0.1:9999"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest(c.method, "http://x/", nil)
			for k, v := range c.headers {
				r.Header.Set(k, v)
			}
			if got := c.g.allowed(r); got != c.want {
				t.Fatalf("allowed = %v, want %v", got, c.want)
			}
		})
	}
	for raw, want := range map[string]bool{
		"": true, "/next": true, "//evil.example": false, "/\\evil.example": false,
		"https://app.example.com/x": true, "https://user@app.example.com/": false,
		"javascript:alert(1)": false, "https://evil.example/": false,
	} {
		if got := g.trustedRedirect(raw); got != want {
			t.Errorf("trustedRedirect(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestErrorResponse(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{&httpx.DecodeError{Status: 413, Code: "PAYLOAD_TOO_LARGE", Message: "m"}, 413, "PAYLOAD_TOO_LARGE"},
		{&users.PasswordPolicyError{Reason: "too_short", Message: "m"}, 400, "PASSWORD_TOO_SHORT"},
		{&users.PasswordPolicyError{Reason: "common", Message: "m"}, 400, "PASSWORD_TOO_COMMON"},
		{&users.PasswordPolicyError{Reason: "similar_to_email", Message: "m"}, 400, "PASSWORD_TOO_SIMILAR"},
		{&users.PasswordPolicyError{Reason: "too_long", Message: "m"}, 400, "PASSWORD_TOO_LONG"},
		{&users.InputError{Field: "email", Message: "bad"}, 400, "INVALID_REQUEST"},
		{fmt.Errorf("create user: %w", storage.ErrInvalidValue), 400, "INVALID_REQUEST"},
		{users.ErrInvalidCredentials, 401, "INVALID_CREDENTIALS"},
		{users.ErrUnauthenticated, 401, "UNAUTHENTICATED"},
		{users.ErrUserExists, 409, "USER_ALREADY_EXISTS"},
		{&users.LockedError{}, 429, "TOO_MANY_ATTEMPTS"},
		{users.ErrInvalidToken, 400, "INVALID_TOKEN"},
		{users.ErrSessionNotFound, 404, "SESSION_NOT_FOUND"},
		{users.ErrUserNotFound, 404, "USER_NOT_FOUND"},
		{users.ErrEmailNotVerified, 403, "EMAIL_NOT_VERIFIED"},
		{fmt.Errorf("x: %w", users.ErrHasherBusy), 503, "SERVICE_BUSY"},
		{errors.New("disk on fire"), 500, "INTERNAL_ERROR"},
	}
	for _, c := range cases {
		status, code, msg := errorResponse(c.err)
		if status != c.status || code != c.code || msg == "" {
			t.Errorf("errorResponse(%v) = %d %s %q, want %d %s", c.err, status, code, msg, c.status, c.code)
		}
		if c.status == 500 && msg != "Something went wrong on our side." {
			t.Errorf("500 leaks details: %q", msg)
		}
	}
}

// FuzzTrustedRedirect checks the redirect rule's promise: whatever passes
// leads to a trusted origin once made absolute, as a browser would resolve
// it against the base URL.
func FuzzTrustedRedirect(f *testing.F) {
	for _, s := range []string{"/next", "//evil.example", "/\\evil.example", "https://app.example.com/x",
		"https://evil.example", "/%2f%2fevil.example", "/\t/evil.example", "https://app.example.com@evil.example/"} {
		f.Add(s)
	}
	g := newOriginGuard("https://auth.example.com", []string{"https://app.example.com"}, false)
	base, _ := url.Parse("https://auth.example.com/api/auth/email/verify")
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == "" || !g.trustedRedirect(raw) {
			return
		}
		ref, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("trusted %q that does not parse: %v", raw, err)
		}
		dest := base.ResolveReference(ref)
		if o := origin(dest.String()); !g.trusted[o] {
			t.Fatalf("trusted %q resolves to %q (origin %q)", raw, dest, o)
		}
	})
}
