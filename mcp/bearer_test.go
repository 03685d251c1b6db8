package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	challengeMissing = `Bearer resource_metadata="` + testPRMURL + `", scope="mcp:tools profile"`
	challengeInvalid = `Bearer error="invalid_token", error_description="The access token is invalid, expired or revoked.", ` +
		`resource_metadata="` + testPRMURL + `", scope="mcp:tools profile"`
	challengeAudience = `Bearer error="invalid_token", error_description="The access token was not issued for this resource.", ` +
		`resource_metadata="` + testPRMURL + `", scope="mcp:tools profile"`
	challengeScope = `Bearer error="insufficient_scope", error_description="The access token lacks a scope this resource requires.", ` +
		`resource_metadata="` + testPRMURL + `", scope="mcp:tools profile"`
	challengeElsewhere = `Bearer error="invalid_request", error_description="Send the access token only in the Authorization header, never in the URL or a form body.", ` +
		`resource_metadata="` + testPRMURL + `"`
	challengeDuplicate = `Bearer error="invalid_request", error_description="Send exactly one Authorization header.", ` +
		`resource_metadata="` + testPRMURL + `"`
)

func newTestGuard(t testing.TB, logs *bytes.Buffer) (http.Handler, *fakeVerifier) {
	t.Helper()
	v := &fakeVerifier{
		tokens: map[string]*TokenInfo{
			"good":             tokenFor([]string{testResource}, "mcp:tools", "profile", "openid"),
			"b64+/tok.en~_-==": tokenFor([]string{testResource}, "mcp:tools", "profile"),
			"aud-upper":        tokenFor([]string{"HTTPS://Auth.Example.COM/mcp"}, "mcp:tools", "profile"),
			"aud-slash":        tokenFor([]string{"https://auth.example.com/mcp/"}, "mcp:tools", "profile"),
			"aud-port":         tokenFor([]string{"https://auth.example.com:443/mcp"}, "mcp:tools", "profile"),
			"aud-many":         tokenFor([]string{"https://api.example.com", testResource}, "mcp:tools", "profile"),
			"aud-other":        tokenFor([]string{"https://other.example.com/mcp"}, "mcp:tools", "profile"),
			"aud-origin":       tokenFor([]string{"https://auth.example.com"}, "mcp:tools", "profile"),
			"aud-prefix":       tokenFor([]string{"https://auth.example.com/mcp2"}, "mcp:tools", "profile"),
			"aud-path-case":    tokenFor([]string{"https://auth.example.com/MCP"}, "mcp:tools", "profile"),
			"aud-none":         tokenFor(nil, "mcp:tools", "profile"),
			"one-scope":        tokenFor([]string{testResource}, "mcp:tools"),
			"no-scope":         tokenFor([]string{testResource}),
			"scope-prefix":     tokenFor([]string{testResource}, "mcp:tools:read", "profile"),
		},
		errs: map[string]error{
			"expired":   fmt.Errorf("authz: token expired: %w", ErrInvalidToken),
			"revoked":   fmt.Errorf("authz: token revoked: %w", ErrInvalidToken),
			"db-down":   errors.New("storage: connection refused"),
			"nil-token": nil,
		},
	}
	cfg := testConfig(v)
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := TokenFromContext(r.Context())
		if !ok {
			http.Error(w, "no token in context", http.StatusTeapot)
			return
		}
		w.Header().Set("X-Subject", info.Subject)
		w.WriteHeader(http.StatusOK)
	})
	return RequireBearer(cfg, next), v
}

func TestRequireBearer(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		header     []string // Authorization values
		ctype      string
		body       string
		wantStatus int
		wantChall  string // "" means no WWW-Authenticate header
		wantError  string // "error" of the JSON body; "" for success
		wantVerify bool   // whether the verifier must have been asked
	}{
		{name: "valid token", header: []string{"Bearer good"}, wantStatus: 200, wantVerify: true},
		{name: "scheme is case-insensitive", header: []string{"bearer good"}, wantStatus: 200, wantVerify: true},
		{name: "upper-case scheme", header: []string{"BEARER good"}, wantStatus: 200, wantVerify: true},
		{name: "several spaces after scheme", header: []string{"Bearer   good"}, wantStatus: 200, wantVerify: true},
		{name: "all b64token characters", header: []string{"Bearer b64+/tok.en~_-=="}, wantStatus: 200, wantVerify: true},
		{name: "GET stream", method: http.MethodGet, header: []string{"Bearer good"}, wantStatus: 200, wantVerify: true},
		{name: "unrelated query is fine", target: "/mcp?x=1", header: []string{"Bearer good"}, wantStatus: 200, wantVerify: true},

		{name: "no Authorization header", wantStatus: 401, wantChall: challengeMissing, wantError: "unauthorized"},
		{name: "empty Authorization header", header: []string{""}, wantStatus: 401, wantChall: challengeMissing, wantError: "unauthorized"},
		{name: "Basic credentials", header: []string{"Basic dXNlcjpwYXNz"}, wantStatus: 401, wantChall: challengeMissing, wantError: "unauthorized"},
		{name: "DPoP scheme", header: []string{"DPoP good"}, wantStatus: 401, wantChall: challengeMissing, wantError: "unauthorized"},
		{name: "scheme glued to token", header: []string{"Bearergood"}, wantStatus: 401, wantChall: challengeMissing, wantError: "unauthorized"},

		{name: "Bearer without token", header: []string{"Bearer"}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token"},
		{name: "Bearer with blank token", header: []string{"Bearer    "}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token"},
		{name: "token with a space", header: []string{"Bearer good extra"}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token"},
		{name: "token with a quote", header: []string{`Bearer go"od`}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token"},
		{name: "token of padding only", header: []string{"Bearer =="}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token"},
		{name: "padding in the middle", header: []string{"Bearer go=od"}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token"},
		{name: "unknown token", header: []string{"Bearer nope"}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token", wantVerify: true},
		{name: "expired token", header: []string{"Bearer expired"}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token", wantVerify: true},
		{name: "revoked token", header: []string{"Bearer revoked"}, wantStatus: 401, wantChall: challengeInvalid, wantError: "invalid_token", wantVerify: true},

		{name: "audience differs in scheme and host case", header: []string{"Bearer aud-upper"}, wantStatus: 200, wantVerify: true},
		{name: "audience with trailing slash", header: []string{"Bearer aud-slash"}, wantStatus: 200, wantVerify: true},
		{name: "audience with default port", header: []string{"Bearer aud-port"}, wantStatus: 200, wantVerify: true},
		{name: "one of several audiences", header: []string{"Bearer aud-many"}, wantStatus: 200, wantVerify: true},
		{name: "audience of another server", header: []string{"Bearer aud-other"}, wantStatus: 401, wantChall: challengeAudience, wantError: "invalid_token", wantVerify: true},
		{name: "audience is our origin only", header: []string{"Bearer aud-origin"}, wantStatus: 401, wantChall: challengeAudience, wantError: "invalid_token", wantVerify: true},
		{name: "audience is a string prefix", header: []string{"Bearer aud-prefix"}, wantStatus: 401, wantChall: challengeAudience, wantError: "invalid_token", wantVerify: true},
		{name: "audience path case differs", header: []string{"Bearer aud-path-case"}, wantStatus: 401, wantChall: challengeAudience, wantError: "invalid_token", wantVerify: true},
		{name: "no audience", header: []string{"Bearer aud-none"}, wantStatus: 401, wantChall: challengeAudience, wantError: "invalid_token", wantVerify: true},

		{name: "one required scope missing", header: []string{"Bearer one-scope"}, wantStatus: 403, wantChall: challengeScope, wantError: "insufficient_scope", wantVerify: true},
		{name: "no scopes", header: []string{"Bearer no-scope"}, wantStatus: 403, wantChall: challengeScope, wantError: "insufficient_scope", wantVerify: true},
		{name: "narrower scope does not count", header: []string{"Bearer scope-prefix"}, wantStatus: 403, wantChall: challengeScope, wantError: "insufficient_scope", wantVerify: true},

		{name: "token in query", target: "/mcp?access_token=good", wantStatus: 400, wantChall: challengeElsewhere, wantError: "invalid_request"},
		{name: "token in query and header", target: "/mcp?access_token=good", header: []string{"Bearer good"}, wantStatus: 400, wantChall: challengeElsewhere, wantError: "invalid_request"},
		{name: "escaped token name in query", target: "/mcp?a=1&access%5Ftoken=good", wantStatus: 400, wantChall: challengeElsewhere, wantError: "invalid_request"},
		{name: "token in form body", ctype: "application/x-www-form-urlencoded", body: "access_token=good", wantStatus: 400, wantChall: challengeElsewhere, wantError: "invalid_request"},
		{name: "form body with charset and header token", ctype: "Application/X-WWW-Form-URLEncoded; charset=utf-8", body: "x=1", header: []string{"Bearer good"}, wantStatus: 400, wantChall: challengeElsewhere, wantError: "invalid_request"},
		{name: "two Authorization headers", header: []string{"Bearer good", "Bearer good"}, wantStatus: 400, wantChall: challengeDuplicate, wantError: "invalid_request"},

		{name: "verifier failure", header: []string{"Bearer db-down"}, wantStatus: 500, wantError: "server_error", wantVerify: true},
		{name: "verifier returns nothing", header: []string{"Bearer nil-token"}, wantStatus: 500, wantError: "server_error", wantVerify: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h, v := newTestGuard(t, &logs)
			method, target := tt.method, tt.target
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = "/mcp"
			}
			body := tt.body
			if body == "" && method == http.MethodPost {
				body = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
			}
			req := httptest.NewRequest(method, "https://auth.example.com"+target, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			for _, a := range tt.header {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := rec.Header().Values("WWW-Authenticate"); tt.wantChall == "" && len(got) != 0 {
				t.Errorf("WWW-Authenticate = %q, want none", got)
			} else if tt.wantChall != "" && (len(got) != 1 || got[0] != tt.wantChall) {
				t.Errorf("WWW-Authenticate =\n  %q\nwant\n  %q", got, tt.wantChall)
			}
			if got := v.calls.Load() > 0; got != tt.wantVerify {
				t.Errorf("verifier called = %v, want %v", got, tt.wantVerify)
			}
			if tt.wantError == "" {
				if rec.Header().Get("X-Subject") != "usr_alice" {
					t.Errorf("next did not see the token in its context")
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			var got struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if got.Error != tt.wantError || got.ErrorDescription == "" {
				t.Errorf("body = %+v, want error %q with a description", got, tt.wantError)
			}
			if strings.Contains(rec.Body.String(), "storage") {
				t.Errorf("body leaks an internal error: %s", rec.Body)
			}
			if tt.wantStatus == 500 && !strings.Contains(logs.String(), "verification failed") {
				t.Errorf("server error not logged; logs: %q", logs.String())
			}
			if tt.wantStatus != 500 && logs.Len() != 0 {
				t.Errorf("client error logged: %q", logs.String())
			}
		})
	}
}

func TestRequireBearerChallengeWithoutRequiredScopes(t *testing.T) {
	v := &fakeVerifier{tokens: map[string]*TokenInfo{"good": tokenFor([]string{"https://mcp.example.com"})}}
	cfg := ResourceConfig{
		Resource:             "https://mcp.example.com",
		AuthorizationServers: []string{"https://id.example.com/tenant"},
		Verifier:             v,
	}
	h := RequireBearer(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	tests := []struct {
		name, auth, want string
		status           int
	}{
		{"missing", "", `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`, 401},
		{"invalid", "Bearer bad", `Bearer error="invalid_token", error_description="The access token is invalid, expired or revoked.", ` +
			`resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`, 401},
		{"valid without scopes", "Bearer good", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("WWW-Authenticate") != tt.want {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"), tt.status, tt.want)
			}
		})
	}
}

// A client that hangs up while its token is being checked gets no answer,
// and its cancellation is not logged as a server failure.
func TestRequireBearerClientGone(t *testing.T) {
	var logs bytes.Buffer
	v := &fakeVerifier{errs: map[string]error{"slow": context.Canceled}}
	cfg := testConfig(v)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	h := RequireBearer(cfg, http.NotFoundHandler())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, testResource, nil)
	req.Header.Set("Authorization", "Bearer slow")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Body.Len() != 0 || logs.Len() != 0 {
		t.Errorf("wrote %q and logged %q, want neither", rec.Body, logs.String())
	}
}

func TestTokenFromContextEmpty(t *testing.T) {
	if info, ok := TokenFromContext(context.Background()); ok || info != nil {
		t.Errorf("TokenFromContext(empty) = %v, %v", info, ok)
	}
	ctx := context.WithValue(context.Background(), tokenKey{}, (*TokenInfo)(nil))
	if _, ok := TokenFromContext(ctx); ok {
		t.Error("a nil *TokenInfo must not count as a token")
	}
}

func TestRequireBearerPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("RequireBearer accepted a config without a Verifier")
		}
	}()
	cfg := testConfig(nil)
	RequireBearer(cfg, http.NotFoundHandler())
}

func TestValidate(t *testing.T) {
	ok := testConfig(&fakeVerifier{})
	tests := []struct {
		name   string
		modify func(*ResourceConfig)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*ResourceConfig) {}, ""},
		{"http resource", func(c *ResourceConfig) { c.Resource = "http://127.0.0.1:8080/mcp" }, ""},
		{"no path", func(c *ResourceConfig) { c.Resource = "https://mcp.example.com" }, ""},
		{"no required scopes", func(c *ResourceConfig) { c.RequiredScopes = nil }, ""},
		{"no supported scopes", func(c *ResourceConfig) { c.ScopesSupported = nil }, ""},
		{"empty resource", func(c *ResourceConfig) { c.Resource = "" }, "http or https"},
		{"relative resource", func(c *ResourceConfig) { c.Resource = "/mcp" }, "http or https"},
		{"ftp resource", func(c *ResourceConfig) { c.Resource = "ftp://example.com/mcp" }, "http or https"},
		{"resource with fragment", func(c *ResourceConfig) { c.Resource = "https://example.com/mcp#x" }, "fragment"},
		{"resource with empty fragment", func(c *ResourceConfig) { c.Resource = "https://example.com/mcp#" }, "fragment"},
		{"resource with query", func(c *ResourceConfig) { c.Resource = "https://example.com/mcp?a=b" }, "query"},
		{"resource with user", func(c *ResourceConfig) { c.Resource = "https://u@example.com/mcp" }, "user info"},
		{"no authorization server", func(c *ResourceConfig) { c.AuthorizationServers = nil }, "at least one issuer"},
		{"relative issuer", func(c *ResourceConfig) { c.AuthorizationServers = []string{"auth.example.com"} }, "authorization server"},
		{"issuer with query", func(c *ResourceConfig) { c.AuthorizationServers = []string{"https://a.example.com?x=1"} }, "authorization server"},
		{"scope with space", func(c *ResourceConfig) { c.ScopesSupported = []string{"a b"} }, "scope token"},
		{"required scope with quote", func(c *ResourceConfig) { c.RequiredScopes = []string{`a"b`} }, "scope token"},
		{"required scope not advertised", func(c *ResourceConfig) { c.RequiredScopes = []string{"admin"} }, "missing from ScopesSupported"},
		{"offline_access required", func(c *ResourceConfig) { c.RequiredScopes = []string{"offline_access"} }, "offline_access"},
		{"no verifier", func(c *ResourceConfig) { c.Verifier = nil }, "Verifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			cfg.AuthorizationServers = append([]string(nil), ok.AuthorizationServers...)
			tt.modify(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestQuoteParam(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"mcp:tools profile", `"mcp:tools profile"`},
		{`say "hi"`, `"say \"hi\""`},
		{`C:\path\`, `"C:\\path\\"`},
		{"tab\tkept", "\"tab\tkept\""},
		{"line\r\nbreak\x00\x7f", `"linebreak"`},
	}
	for _, tt := range tests {
		if got := quoteParam(tt.in); got != tt.want {
			t.Errorf("quoteParam(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalResource(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://auth.example.com/mcp", "https://auth.example.com/mcp", true},
		{"HTTPS://AUTH.example.com/mcp/", "https://auth.example.com/mcp", true},
		{"https://auth.example.com:443/mcp", "https://auth.example.com/mcp", true},
		{"http://auth.example.com:80/", "http://auth.example.com", true},
		{"https://auth.example.com:8443/mcp", "https://auth.example.com:8443/mcp", true},
		{"http://auth.example.com:443/mcp", "http://auth.example.com:443/mcp", true},
		{"https://[::1]:443/mcp", "https://[::1]/mcp", true},
		{"https://auth.example.com/a%2Fb", "https://auth.example.com/a%2Fb", true},
		{"https://auth.example.com/mcp?v=1", "https://auth.example.com/mcp?v=1", true},
		{"https://auth.example.com/mcp#f", "", false},
		{"/mcp", "", false},
		{"::", "", false},
	}
	for _, tt := range tests {
		got, ok := canonicalResource(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("canonicalResource(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzRequireBearer feeds arbitrary Authorization headers and query strings
// through the guard: it must never panic, never pass a request it did not
// verify, and only answer with the statuses it documents.
func FuzzRequireBearer(f *testing.F) {
	for _, s := range []string{"Bearer good", "bearer  good", "Bearer", "Basic x", "Bearer a b", "Bearer ==", "Bearer \x00", ""} {
		f.Add(s, "")
	}
	f.Add("Bearer good", "access_token=x")
	f.Add("Bearer good", "%zz&access_token")
	h, _ := newTestGuard(f, nil)
	f.Fuzz(func(t *testing.T, auth, query string) {
		req := httptest.NewRequest(http.MethodPost, testResource, nil)
		req.URL.RawQuery = query
		req.Header["Authorization"] = []string{auth}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			if rec.Header().Get("X-Subject") == "" {
				t.Fatalf("passed without a token in context: %q", auth)
			}
		case 400, 401, 403:
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%d without a challenge for %q", rec.Code, auth)
			}
		default:
			t.Fatalf("status %d for %q ?%s", rec.Code, auth, query)
		}
	})
}

func BenchmarkRequireBearer(b *testing.B) {
	h, _ := newTestGuard(b, nil)
	cases := []struct{ name, auth string }{
		{"valid", "Bearer good"},
		{"valid-canonical-audience", "Bearer aud-upper"},
		{"missing", ""},
		{"invalid", "Bearer nope"},
		{"insufficient-scope", "Bearer one-scope"},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, testResource, nil)
			req.Header.Set("Content-Type", "application/json")
			if bc.auth != "" {
				req.Header.Set("Authorization", bc.auth)
			}
			w := discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only headers, so the
// benchmark measures the guard rather than a recorder.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
