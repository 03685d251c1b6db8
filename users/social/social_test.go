package social

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestAppleClientSecret(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	key, err := parseAppleKey(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s, err := AppleClientSecret(key, "TEAM123456", "KEYID12345", "com.example.web", now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(s, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	if h.Algorithm != "ES256" || h.KeyID != "KEYID12345" {
		t.Fatalf("header: alg %s kid %s", h.Algorithm, h.KeyID)
	}
	var c jwt.Claims
	if err := tok.Claims(&k.PublicKey, &c); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if c.Issuer != "TEAM123456" || c.Subject != "com.example.web" || len(c.Audience) != 1 || c.Audience[0] != "https://appleid.apple.com" {
		t.Fatalf("claims: %+v", c)
	}
	if !c.IssuedAt.Time().Equal(now) || !c.Expiry.Time().Equal(now.Add(5*time.Minute)) {
		t.Fatalf("times: iat %v exp %v", c.IssuedAt.Time(), c.Expiry.Time())
	}
	// Another key does not verify it.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := tok.Claims(&other.PublicKey, &c); err == nil {
		t.Fatal("verified with another key")
	}
	// Keys that are not P-256 are refused.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ = x509.MarshalPKCS8PrivateKey(p384)
	if _, err := parseAppleKey(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err == nil {
		t.Fatal("accepted a P-384 key")
	}
}

func TestValidate(t *testing.T) {
	ok := []Config{
		{ID: "github", ClientID: "a", ClientSecret: "b"},
		{ID: "acme", Issuer: "https://id.acme.test", ClientID: "a", ClientSecret: "b"},
		{ID: "work", Type: "microsoft", Tenant: "organizations", ClientID: "a", ClientSecret: "b"},
	}
	if err := Validate(ok, false); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{ID: "GitHub", ClientID: "a", ClientSecret: "b"}, "id must be"},
		{Config{ID: "providers", Issuer: "https://x.test", ClientID: "a", ClientSecret: "b"}, "id must be"},
		{Config{ID: "google", ClientSecret: "b"}, "client id"},
		{Config{ID: "google", ClientID: "a"}, "client secret"},
		{Config{ID: "acme", ClientID: "a", ClientSecret: "b"}, "issuer is required"},
		{Config{ID: "acme", Issuer: "http://id.acme.test", ClientID: "a", ClientSecret: "b"}, "https"},
		{Config{ID: "apple", ClientID: "a", TeamID: "t"}, "Apple needs"},
		{Config{ID: "apple", ClientID: "a", TeamID: "t", KeyID: "k", PrivateKey: "not pem"}, "not PEM"},
		{Config{ID: "x", Type: "facebook", ClientID: "a", ClientSecret: "b"}, "unknown type"},
	} {
		err := Validate([]Config{tc.c}, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.c, err, tc.want)
		}
	}
	if err := Validate([]Config{ok[0], ok[0]}, false); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
	}
	if err := Validate([]Config{{ID: "acme", Issuer: "http://127.0.0.1:9", ClientID: "a", ClientSecret: "b"}}, true); err != nil {
		t.Errorf("http issuer in development: %v", err)
	}
}
