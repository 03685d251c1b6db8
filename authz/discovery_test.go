package authz

import (
	"slices"
	"testing"
)

// RFC 8414 §3.1: for an issuer with a path, the metadata lives at
// /.well-known/oauth-authorization-server + path (path insertion).
func TestMetadataPaths(t *testing.T) {
	cases := map[string][]string{
		"https://auth.example.com": {"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
		"https://example.com/auth": {"/.well-known/oauth-authorization-server/auth", "/.well-known/openid-configuration/auth",
			"/auth/.well-known/openid-configuration"},
		"https://example.com/tenant/a/": {"/.well-known/oauth-authorization-server/tenant/a", "/.well-known/openid-configuration/tenant/a",
			"/tenant/a/.well-known/openid-configuration"},
	}
	for issuer, want := range cases {
		s := &Server{cfg: Config{Issuer: issuer}}
		if got := s.MetadataPaths(); !slices.Equal(got, want) {
			t.Errorf("MetadataPaths(%s) = %v, want %v", issuer, got, want)
		}
	}
}
