package authz

import (
	"net/url"
	"testing"
)

func TestCheckRegisteredRedirect(t *testing.T) {
	cases := map[string]bool{
		"https://app.example.com/cb":       true,
		"https://app.example.com/cb?x=1":   true,
		"http://127.0.0.1:8085/callback":   true,
		"http://[::1]/cb":                  true,
		"http://localhost:3000/oauth":      true,
		"http://app.example.com/cb":        false,
		"https://app.example.com/cb#frag":  false,
		"https://app.example.com/cb#":      false,
		"https://user:pw@app.example.com/": false,
		"javascript:alert(1)":              false,
		"/relative":                        false,
		"":                                 false,
		"https://app.example.com/\tcb":     false,
		"com.example.app:/oauth2redirect":  false,
		"http://127.0.0.1.evil.example/cb": false,
		"http://localhost.evil.example/cb": false,
	}
	for raw, ok := range cases {
		if got := checkRegisteredRedirect(raw) == nil; got != ok {
			t.Errorf("checkRegisteredRedirect(%q) ok=%v, want %v", raw, got, ok)
		}
	}
}

func TestMatchRedirect(t *testing.T) {
	reg := []string{"https://app.example.com/cb", "http://127.0.0.1/callback", "http://localhost:8085/oauth/callback"}
	cases := []struct {
		name, raw, want string
	}{
		{"exact https", "https://app.example.com/cb", reg[0]},
		{"https other path", "https://app.example.com/cb2", ""},
		{"https other port", "https://app.example.com:8443/cb", ""},
		{"https trailing slash", "https://app.example.com/cb/", ""},
		{"https case of path", "https://app.example.com/CB", ""},
		{"https added query", "https://app.example.com/cb?a=1", ""},
		{"fragment", "https://app.example.com/cb#x", ""},
		{"loopback any port", "http://127.0.0.1:54321/callback", reg[1]},
		{"loopback other path", "http://127.0.0.1:54321/other", ""},
		{"localhost any port", "http://localhost:9999/oauth/callback", reg[2]},
		{"localhost vs 127.0.0.1 differ", "http://127.0.0.1:8085/oauth/callback", ""},
		{"https on loopback is not http", "https://127.0.0.1:54321/callback", ""},
		{"evil host", "https://evil.example/cb", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := matchRedirect(c.raw, reg); got != c.want {
				t.Fatalf("matchRedirect(%q) = %q, want %q", c.raw, got, c.want)
			}
		})
	}
}

// FuzzMatchRedirect: whatever matches has the registered URI's scheme and
// host, and no fragment — so a redirect can never leave the client.
func FuzzMatchRedirect(f *testing.F) {
	for _, s := range []string{"https://app.example.com/cb", "http://127.0.0.1:1/callback", "http://localhost:2/x",
		"https://app.example.com/cb#x", "https://app.example.com@evil/cb", "http://127.0.0.1:80/callback/../x"} {
		f.Add(s)
	}
	reg := []string{"https://app.example.com/cb", "http://127.0.0.1/callback", "http://localhost:8085/x"}
	f.Fuzz(func(t *testing.T, raw string) {
		m := matchRedirect(raw, reg)
		if m == "" {
			return
		}
		got, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("matched unparsable %q", raw)
		}
		want, _ := url.Parse(m)
		if got.Scheme != want.Scheme || !equalFoldHost(got.Hostname(), want.Hostname()) || got.Fragment != "" || got.User != nil {
			t.Fatalf("%q matched %q", raw, m)
		}
	})
}

func equalFoldHost(a, b string) bool {
	return len(a) == len(b) && (a == b || url.PathEscape(a) == url.PathEscape(b) || lower(a) == lower(b))
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
