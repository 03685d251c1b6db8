package authz

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckClientIDURL(t *testing.T) {
	tests := []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{url: "https://app.example.com/oauth/client.json", ok: true},
		{url: "https://app.example.com/", ok: true},
		{url: "https://app.example.com:8443/client", ok: true},
		{url: "https://app.example.com/client?v=2", ok: true}, // SHOULD NOT, but allowed
		{url: "https://app.example.com/a%20b", ok: true},
		{url: "http://localhost:3000/client.json", allowHTTP: true, ok: true},

		{url: "http://app.example.com/client.json"},
		{url: "https://app.example.com"},
		{url: "https://app.example.com/client#frag"},
		{url: "https://app.example.com/client#"},
		{url: "https://user@app.example.com/client"},
		{url: "https://user:pw@app.example.com/client"},
		{url: "https://app.example.com/./client"},
		{url: "https://app.example.com/a/../client"},
		{url: "https://app.example.com/a/%2e%2e/client"},
		{url: "https://app.example.com/a/.."},
		{url: "HTTPS://app.example.com/client"},
		{url: "https://APP.example.com/client", ok: true}, // hosts keep their case: compared as strings
		{url: "https://app.example.com/a b"},
		{url: "https://app.example.com/a\\b"},
		{url: "https://app.example.com/a\tb"},
		{url: "https:///client"},
		{url: "https:app.example.com/client"},
		{url: "ftp://app.example.com/client"},
		{url: "https://app.example.com/%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := checkClientIDURL(tt.url, tt.allowHTTP)
			if (err == nil) != tt.ok {
				t.Fatalf("checkClientIDURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
			if err != nil && !errors.Is(err, errDocument) {
				t.Fatalf("error %v is not errDocument", err)
			}
		})
	}
}

func TestParseMetadataDocument(t *testing.T) {
	const id = "https://app.example.com/client.json"
	base := `"client_id":"` + id + `","client_name":"App","redirect_uris":["https://app.example.com/cb"]`
	tests := []struct {
		name       string
		body       string
		wantErr    bool
		wantMethod string
	}{
		{name: "minimal: a public client", body: `{` + base + `}`, wantMethod: AuthNone},
		{name: "explicit none", body: `{` + base + `,"token_endpoint_auth_method":"none"}`, wantMethod: AuthNone},
		{name: "private_key_jwt with inline keys", wantMethod: AuthPrivateKeyJWT,
			body: `{` + base + `,"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}`},
		{name: "unknown fields ignored", body: `{` + base + `,"software_statement":"x","logo_uri":"https://app.example.com/l.png"}`, wantMethod: AuthNone},
		{name: "client_credentials with private_key_jwt", wantMethod: AuthPrivateKeyJWT,
			body: `{` + base + `,"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example.com/jwks"}`},

		{name: "empty", body: ``, wantErr: true},
		{name: "null", body: `null`, wantErr: true},
		{name: "string", body: `"x"`, wantErr: true},
		{name: "trailing garbage", body: `{` + base + `} x`, wantErr: true},
		{name: "client_id a number", body: `{"client_id":1,"client_name":"App","redirect_uris":["https://app.example.com/cb"]}`, wantErr: true},
		{name: "client_id with trailing slash", body: `{"client_id":"` + id + `/","client_name":"App","redirect_uris":["https://app.example.com/cb"]}`, wantErr: true},
		{name: "client_id with default port", body: `{"client_id":"https://app.example.com:443/client.json","client_name":"App","redirect_uris":["https://app.example.com/cb"]}`, wantErr: true},
		{name: "client_name blank", body: `{"client_id":"` + id + `","client_name":"  ","redirect_uris":["https://app.example.com/cb"]}`, wantErr: true},
		{name: "redirect_uris empty", body: `{"client_id":"` + id + `","client_name":"App","redirect_uris":[]}`, wantErr: true},
		{name: "redirect with fragment", body: `{"client_id":"` + id + `","client_name":"App","redirect_uris":["https://app.example.com/cb#x"]}`, wantErr: true},
		{name: "redirect javascript:", body: `{"client_id":"` + id + `","client_name":"App","redirect_uris":["javascript:alert(1)"]}`, wantErr: true},
		{name: "client_secret_post", body: `{` + base + `,"token_endpoint_auth_method":"client_secret_post"}`, wantErr: true},
		{name: "client_secret_jwt", body: `{` + base + `,"token_endpoint_auth_method":"client_secret_jwt"}`, wantErr: true},
		{name: "client_secret_expires_at", body: `{` + base + `,"client_secret_expires_at":0}`, wantErr: true},
		{name: "private key in jwks", wantErr: true,
			body: `{` + base + `,"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}}`},
		{name: "public client with client_credentials", body: `{` + base + `,"grant_types":["client_credentials"]}`, wantErr: true},
		{name: "password grant", body: `{` + base + `,"grant_types":["password"]}`, wantErr: true},
		{name: "token response type", body: `{` + base + `,"response_types":["token"]}`, wantErr: true},
		{name: "unknown scope", body: `{` + base + `,"scope":"admin"}`, wantErr: true},
		{name: "wrong field type", body: `{` + base + `,"grant_types":"authorization_code"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMetadataDocument([]byte(tt.body), id, scopeNamesOf(DefaultScopes))
			if tt.wantErr {
				if !errors.Is(err, errDocument) {
					t.Fatalf("error = %v, want errDocument", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMetadataDocument: %v", err)
			}
			if m.TokenEndpointAuthMethod != tt.wantMethod {
				t.Errorf("method %q, want %q", m.TokenEndpointAuthMethod, tt.wantMethod)
			}
		})
	}
}

func scopeNamesOf(scopes []Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = s.Name
	}
	return out
}

func TestCacheTTL(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const minTTL, maxTTL = time.Minute, 24 * time.Hour
	httpDate := func(t time.Time) string { return t.Format(http.TimeFormat) }
	tests := []struct {
		name   string
		header []string // "Name: value"
		want   time.Duration
	}{
		{"nothing: the minimum", nil, minTTL},
		{"max-age", []string{"Cache-Control: max-age=600"}, 10 * time.Minute},
		{"max-age among others", []string{"Cache-Control: public, max-age=600, must-revalidate"}, 10 * time.Minute},
		{"quoted max-age", []string{`Cache-Control: max-age="600"`}, 10 * time.Minute},
		{"case-insensitive directive", []string{"Cache-Control: Max-Age=600"}, 10 * time.Minute},
		{"two header lines", []string{"Cache-Control: public", "Cache-Control: max-age=600"}, 10 * time.Minute},
		{"below the minimum", []string{"Cache-Control: max-age=0"}, minTTL},
		{"above the maximum", []string{"Cache-Control: max-age=9999999999"}, maxTTL},
		{"overflowing max-age", []string{"Cache-Control: max-age=99999999999999999999"}, minTTL},
		{"negative max-age ignored", []string{"Cache-Control: max-age=-5"}, minTTL},
		{"Age subtracted", []string{"Cache-Control: max-age=600", "Age: 300"}, 5 * time.Minute},
		{"Age beyond max-age", []string{"Cache-Control: max-age=600", "Age: 9000"}, minTTL},
		{"huge Age", []string{"Cache-Control: max-age=600", "Age: 99999999999999"}, minTTL},
		{"no-store", []string{"Cache-Control: no-store"}, 0},
		{"no-cache wins over max-age", []string{"Cache-Control: max-age=600, no-cache"}, 0},
		{"no-cache with field names", []string{`Cache-Control: no-cache="Set-Cookie"`}, 0},
		{"Expires with Date", []string{"Date: " + httpDate(now.Add(-time.Hour)), "Expires: " + httpDate(now.Add(time.Hour))}, 2 * time.Hour},
		{"Expires without Date", []string{"Expires: " + httpDate(now.Add(time.Hour))}, time.Hour},
		{"Expires in the past", []string{"Expires: " + httpDate(now.Add(-time.Hour))}, minTTL},
		{"invalid Expires means expired", []string{"Expires: 0"}, minTTL},
		{"max-age beats Expires", []string{"Cache-Control: max-age=600", "Expires: " + httpDate(now.Add(5*time.Hour))}, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, kv := range tt.header {
				k, v, _ := strings.Cut(kv, ":")
				h.Add(k, strings.TrimSpace(v))
			}
			if got := cacheTTL(h, now, minTTL, maxTTL); got != tt.want {
				t.Errorf("cacheTTL = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDocCache(t *testing.T) {
	clock := newKeysClock()
	dc := newDocCache(3, clock.Now)
	ctx := context.Background()
	var loads atomic.Int64
	loader := func(ttl time.Duration, err error) docLoader {
		return func(_ context.Context, id string) (*Client, time.Duration, error) {
			loads.Add(1)
			if err != nil {
				return nil, 0, err
			}
			return &Client{}, ttl, nil
		}
	}
	get := func(id string, load docLoader) error {
		_, err := dc.get(ctx, id, load)
		return err
	}

	t.Run("fresh entries are reused until they expire", func(t *testing.T) {
		loads.Store(0)
		_ = get("a", loader(time.Minute, nil))
		_ = get("a", loader(time.Minute, nil))
		clock.Advance(time.Minute)
		_ = get("a", loader(time.Minute, nil))
		if n := loads.Load(); n != 2 {
			t.Errorf("%d loads, want 2", n)
		}
	})
	t.Run("errors are not kept", func(t *testing.T) {
		loads.Store(0)
		boom := docErrorf("boom")
		for range 2 {
			if err := get("bad", loader(time.Minute, boom)); !errors.Is(err, boom) {
				t.Fatalf("error %v", err)
			}
		}
		if n := loads.Load(); n != 2 {
			t.Errorf("%d loads, want 2", n)
		}
	})
	t.Run("ttl 0 is not kept, and drops an older copy", func(t *testing.T) {
		loads.Store(0)
		_ = get("b", loader(time.Hour, nil))
		dc.forget("b")
		_ = get("b", loader(0, nil))
		_ = get("b", loader(0, nil))
		if n := loads.Load(); n != 3 {
			t.Errorf("%d loads, want 3", n)
		}
	})
	t.Run("bounded: the soonest to expire goes first", func(t *testing.T) {
		dc := newDocCache(3, clock.Now)
		for i, ttl := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
			if _, err := dc.get(ctx, string(rune('p'+i)), loader(ttl, nil)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := dc.get(ctx, "s", loader(time.Hour, nil)); err != nil {
			t.Fatal(err)
		}
		if dc.len() != 3 {
			t.Fatalf("%d entries, want 3", dc.len())
		}
		dc.mu.Lock()
		_, evicted := dc.entries["q"]
		dc.mu.Unlock()
		if evicted {
			t.Error("the entry expiring soonest was kept")
		}
	})
	t.Run("a waiter gives up with its context", func(t *testing.T) {
		dc := newDocCache(3, clock.Now)
		release := make(chan struct{})
		started := make(chan struct{})
		slow := func(context.Context, string) (*Client, time.Duration, error) {
			close(started)
			<-release
			return &Client{}, time.Minute, nil
		}
		go func() { _, _ = dc.get(ctx, "slow", slow) }()
		<-started
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := dc.get(cctx, "slow", loader(time.Minute, nil)); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		close(release)
	})
}

func TestTrustChanged(t *testing.T) {
	base := ClientMetadata{TokenEndpointAuthMethod: AuthPrivateKeyJWT, RedirectURIs: []string{"https://a.example/cb", "https://b.example/cb"}}
	tests := []struct {
		name string
		edit func(m *ClientMetadata)
		want bool
	}{
		{"same", func(*ClientMetadata) {}, false},
		{"renamed", func(m *ClientMetadata) { m.ClientName = "New" }, false},
		{"redirect removed", func(m *ClientMetadata) { m.RedirectURIs = m.RedirectURIs[:1] }, false},
		{"redirects reordered", func(m *ClientMetadata) { m.RedirectURIs = []string{"https://b.example/cb", "https://a.example/cb"} }, false},
		{"keys changed", func(m *ClientMetadata) { m.JWKSURI = "https://a.example/jwks2" }, false},
		{"redirect added", func(m *ClientMetadata) { m.RedirectURIs = append(m.RedirectURIs, "https://c.example/cb") }, true},
		{"redirect replaced", func(m *ClientMetadata) { m.RedirectURIs = []string{"https://c.example/cb"} }, true},
		{"now public", func(m *ClientMetadata) { m.TokenEndpointAuthMethod = AuthNone }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := base
			cur.RedirectURIs = append([]string(nil), base.RedirectURIs...)
			tt.edit(&cur)
			if got := trustChanged(base, cur); got != tt.want {
				t.Errorf("trustChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
