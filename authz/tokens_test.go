package authz

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage/storagetest"
)

func newTestTokens(t testing.TB) (*tokenStrategy, *keysClock) {
	clock := newKeysClock()
	keys := newKeys(t, storagetest.OpenSQLite(t), clock, AlgES256)
	return &tokenStrategy{keys: keys, issuer: "https://auth.example.com", alg: AlgES256, ttl: time.Hour, now: clock.Now}, clock
}

func TestAccessTokenParse(t *testing.T) {
	ts, clock := newTestTokens(t)
	valid := AccessClaims{Issuer: ts.issuer, Subject: "usr_1", Audience: Audience{"https://auth.example.com/mcp"}, ClientID: "cli_1",
		Scope: "mcp", JTI: "j", IssuedAt: clock.Now().Unix(), ExpiresAt: clock.Now().Add(time.Hour).Unix()}
	sign := func(typ string, c AccessClaims) string {
		tok, err := ts.keys.Sign(AlgES256, typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(AccessTokenType, valid)
	if c, err := ts.parse(good); err != nil || c.Subject != "usr_1" || c.Audience[0] != "https://auth.example.com/mcp" {
		t.Fatalf("valid token: %+v %v", c, err)
	}
	wrongIss := valid
	wrongIss.Issuer = "https://evil.example"
	expired := valid
	expired.ExpiresAt = clock.Now().Add(-time.Second).Unix()
	parts := strings.Split(good, ".")
	cases := map[string]string{
		"id token typed JWT": sign("JWT", valid),
		"wrong issuer":       sign(AccessTokenType, wrongIss),
		"expired":            sign(AccessTokenType, expired),
		"tampered payload":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2],
		"no signature":       parts[0] + "." + parts[1] + ".",
		"alg none":           base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".",
		"garbage":            "not.a.token",
		"oversized":          strings.Repeat("a", 9000),
		"two parts":          parts[0] + "." + parts[1],
		"empty":              "",
	}
	for name, tok := range cases {
		if _, err := ts.parse(tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzAccessTokenParse: parsing never panics, and whatever it accepts was
// signed by us for our issuer and has not expired.
func FuzzAccessTokenParse(f *testing.F) {
	ts, clock := newTestTokens(f)
	tok, _ := ts.keys.Sign(AlgES256, AccessTokenType, AccessClaims{Issuer: ts.issuer, Subject: "s", ExpiresAt: clock.Now().Add(time.Hour).Unix()})
	f.Add(tok)
	f.Add("a.b.c")
	f.Add(strings.Replace(tok, ".", "..", 1))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ts.parse(token)
		if err != nil {
			return
		}
		if c.Issuer != ts.issuer || !clock.Now().Before(time.Unix(c.ExpiresAt, 0)) {
			t.Fatalf("accepted %+v", c)
		}
	})
}
