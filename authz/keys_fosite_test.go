package authz

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/kavachos/kavach/storage/storagetest"
)

func idClaims(sub string, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "iss": "https://auth.example.com", "aud": []string{"client_1"}, "iat": time.Now().Unix() - 5, "exp": exp.Unix()}
}

func TestIDTokenSignerRoundTrip(t *testing.T) {
	ctx := context.Background()
	m := newKeys(t, storagetest.OpenSQLite(t), newKeysClock())
	kids := signingKIDs(t, m)
	for _, tc := range []struct{ alg, want string }{
		{"", AlgRS256}, // the default
		{AlgES256, AlgES256},
		{AlgEdDSA, AlgEdDSA}, // fosite's parser needs the key wrapped for this one
	} {
		t.Run(tc.want, func(t *testing.T) {
			s := &IDTokenSigner{Keys: m, Alg: tc.alg}
			headers := jwt.NewHeaders()
			headers.Add("typ", "JWT")
			token, sig, err := s.Generate(ctx, idClaims("user_1", time.Now().Add(time.Hour)), headers)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if h := headerOf(t, token); h != (jwsHeader{Alg: tc.want, KID: kids[tc.want], Typ: "JWT"}) {
				t.Errorf("header %+v, want alg %s kid %s typ JWT", h, tc.want, kids[tc.want])
			}
			if got, _ := s.GetSignature(ctx, token); sig == "" || got != sig || !strings.HasSuffix(token, "."+sig) {
				t.Errorf("signature %q, GetSignature %q, token %q", sig, got, token)
			}
			decoded, err := s.Decode(ctx, token)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !decoded.Valid() || decoded.Claims["sub"] != "user_1" || decoded.Header["kid"] != kids[tc.want] || string(decoded.Method) != tc.want {
				t.Errorf("Decode = valid %v, claims %v, header %v, method %s", decoded.Valid(), decoded.Claims, decoded.Header, decoded.Method)
			}
			if got, err := s.Validate(ctx, token); err != nil || got != sig {
				t.Errorf("Validate = %q, %v; want %q", got, err, sig)
			}
			// What a relying party does: verify against the JWKS algorithm.
			if _, typ, err := m.Verify(token, []string{tc.want}); err != nil || typ != "JWT" {
				t.Errorf("Verify = %q, %v", typ, err)
			}
		})
	}
}

func TestIDTokenSignerDecodeExpired(t *testing.T) {
	ctx := context.Background()
	s := &IDTokenSigner{Keys: newKeys(t, storagetest.OpenSQLite(t), newKeysClock(), AlgRS256)}
	token, _, err := s.Generate(ctx, idClaims("user_1", time.Now().Add(-time.Minute)), jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}
	// fosite accepts an expired id_token_hint: it needs the expiry bit and
	// the claims.
	decoded, err := s.Decode(ctx, token)
	var ve *jwt.ValidationError
	if !errors.As(err, &ve) || !ve.Has(jwt.ValidationErrorExpired) {
		t.Fatalf("Decode of an expired token: %v, want a ValidationError with the expired bit", err)
	}
	if decoded == nil || decoded.Claims["sub"] != "user_1" {
		t.Errorf("Decode of an expired token returned %+v, want its claims", decoded)
	}
	if _, err := s.Validate(ctx, token); err == nil {
		t.Error("Validate accepted an expired token")
	}
}

func TestIDTokenSignerDecodeRejects(t *testing.T) {
	ctx := context.Background()
	clock := newKeysClock()
	m := newKeys(t, storagetest.OpenSQLite(t), clock)
	s := &IDTokenSigner{Keys: m}
	good, _, err := s.Generate(ctx, idClaims("user_1", time.Now().Add(time.Hour)), jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	other := &IDTokenSigner{Keys: newKeys(t, storagetest.OpenSQLite(t), clock, AlgRS256)}
	foreign, _, err := other.Generate(ctx, idClaims("user_1", time.Now().Add(time.Hour)), jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}
	accessToken := mustSign(t, m, AlgES256, map[string]any{"sub": "user_1", "exp": time.Now().Add(time.Hour).Unix()})

	for _, tc := range []struct {
		name  string
		token string
		bit   uint32
	}{
		{"malformed", "not-a-token", jwt.ValidationErrorMalformed},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2], jwt.ValidationErrorSignatureInvalid},
		{"another server's key", foreign, jwt.ValidationErrorSignatureInvalid},
		{"an access token (typ at+jwt)", accessToken, jwt.ValidationErrorMalformed},
		{"typ changed", retyped(t, good, "at+jwt"), jwt.ValidationErrorSignatureInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decoded, err := s.Decode(ctx, tc.token)
			var ve *jwt.ValidationError
			if !errors.As(err, &ve) || !ve.Has(tc.bit) || ve.Has(jwt.ValidationErrorExpired) {
				t.Fatalf("Decode error %v, want a ValidationError with bit %d only", err, tc.bit)
			}
			if decoded == nil || decoded.Valid() {
				t.Errorf("Decode returned %+v with an error; want an empty, invalid token", decoded)
			}
			if sig, err := s.Validate(ctx, tc.token); err == nil {
				t.Errorf("Validate = %q, want an error", sig)
			}
		})
	}
}

func TestIDTokenSignerGenerateRefuses(t *testing.T) {
	ctx := context.Background()
	m := newKeys(t, storagetest.OpenSQLite(t), newKeysClock(), AlgES256)
	claims := idClaims("user_1", time.Now().Add(time.Hour))
	header := func(k string, v any) jwt.Mapper { h := jwt.NewHeaders(); h.Add(k, v); return h }
	for _, tc := range []struct {
		name   string
		signer *IDTokenSigner
		claims jwt.MapClaims
		header jwt.Mapper
	}{
		{"nil claims", &IDTokenSigner{Keys: m, Alg: AlgES256}, nil, jwt.NewHeaders()},
		{"nil header", &IDTokenSigner{Keys: m, Alg: AlgES256}, claims, nil},
		{"a kid of the caller's", &IDTokenSigner{Keys: m, Alg: AlgES256}, claims, header("kid", "mine")},
		{"another typ", &IDTokenSigner{Keys: m, Alg: AlgES256}, claims, header("typ", "at+jwt")},
		{"an unknown member", &IDTokenSigner{Keys: m, Alg: AlgES256}, claims, header("x5u", "https://evil.example")},
		{"an algorithm without a key", &IDTokenSigner{Keys: m}, claims, jwt.NewHeaders()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if token, _, err := tc.signer.Generate(ctx, tc.claims, tc.header); err == nil {
				t.Errorf("Generate = %q, want an error", token)
			}
		})
	}
}

// TestIDTokenSignerInFosite drives fosite's own ID token strategy, which
// signs through Generate and reads id_token_hint through Decode.
func TestIDTokenSignerInFosite(t *testing.T) {
	ctx := context.Background()
	s := &IDTokenSigner{Keys: newKeys(t, storagetest.OpenSQLite(t), newKeysClock(), AlgRS256, AlgES256)}
	strategy := openid.DefaultStrategy{Signer: s, Config: &fosite.Config{IDTokenIssuer: "https://auth.example.com", MinParameterEntropy: fosite.MinParameterEntropy}}
	request := func(sub string, form url.Values) fosite.Requester {
		sess := openid.NewDefaultSession()
		sess.Claims.Subject = sub
		sess.Claims.AuthTime = time.Now().Add(-time.Minute).UTC()
		req := fosite.NewAccessRequest(sess)
		req.Client = &fosite.DefaultClient{ID: "client_1"}
		req.Form = form
		return req
	}

	idToken, err := strategy.GenerateIDToken(ctx, time.Hour, request("user_1", url.Values{"nonce": {"n-0S6_WzA2Mj"}}))
	if err != nil {
		t.Fatalf("GenerateIDToken: %v", err)
	}
	decoded, err := s.Decode(ctx, idToken)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if decoded.Claims["sub"] != "user_1" || decoded.Claims["nonce"] != "n-0S6_WzA2Mj" || decoded.Claims["iss"] != "https://auth.example.com" || decoded.Header["alg"] != AlgRS256 {
		t.Errorf("id token claims %v, header %v", decoded.Claims, decoded.Header)
	}

	hint := func(token string) url.Values { return url.Values{"id_token_hint": {token}} }
	if _, err := strategy.GenerateIDToken(ctx, time.Hour, request("user_1", hint(idToken))); err != nil {
		t.Errorf("id_token_hint of the same subject refused: %v", err)
	}
	expired, _, err := s.Generate(ctx, idClaims("user_1", time.Now().Add(-time.Hour)), jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strategy.GenerateIDToken(ctx, time.Hour, request("user_1", hint(expired))); err != nil {
		t.Errorf("expired id_token_hint refused (OpenID Connect allows it): %v", err)
	}
	if _, err := strategy.GenerateIDToken(ctx, time.Hour, request("user_2", hint(idToken))); err == nil {
		t.Error("id_token_hint of another subject accepted")
	}
	accessToken := mustSign(t, s.Keys, AlgES256, map[string]any{"sub": "user_1"})
	if _, err := strategy.GenerateIDToken(ctx, time.Hour, request("user_1", hint(accessToken))); err == nil {
		t.Error("an access token accepted as id_token_hint")
	}
}

func BenchmarkIDTokenGenerate(b *testing.B) {
	s := &IDTokenSigner{Keys: newKeys(b, storagetest.OpenSQLite(b), newKeysClock(), AlgRS256)}
	claims, headers := idClaims("user_1", time.Now().Add(time.Hour)), jwt.NewHeaders()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Generate(context.Background(), claims, headers); err != nil {
			b.Fatal(err)
		}
	}
}
