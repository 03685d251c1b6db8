package authz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/kavachos/kavach/internal/seal"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

const keysTestSecret = "keys-test-secret-0123456789abcdef-0123456789"

var allKeyAlgs = []string{AlgEdDSA, AlgES256, AlgRS256}

// keysClock is a settable clock for key lifetimes.
type keysClock struct {
	mu sync.Mutex
	t  time.Time
}

func newKeysClock() *keysClock {
	return &keysClock{t: time.Now().UTC().Truncate(time.Millisecond)}
}

func (c *keysClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *keysClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKeys(t testing.TB, store storage.Store, clock *keysClock, algs ...string) *KeyManager {
	t.Helper()
	if len(algs) == 0 {
		algs = allKeyAlgs
	}
	m, err := NewKeyManager(context.Background(), store, keysTestSecret, algs, clock.Now)
	if err != nil {
		t.Fatalf("NewKeyManager: %v", err)
	}
	return m
}

func storedKeys(t testing.TB, store storage.Store) []storage.SigningKey {
	t.Helper()
	// The zero time lists every key, expired or not.
	keys, err := store.SigningKeys().List(context.Background(), time.Time{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return keys
}

// signingKIDs maps algorithm to the kid that signs, as Sign reports it.
func signingKIDs(t testing.TB, m *KeyManager) map[string]string {
	t.Helper()
	out := map[string]string{}
	for alg, k := range m.keys().signing {
		out[alg] = k.kid
	}
	return out
}

type jwsHeader struct {
	Alg string `json:"alg"`
	KID string `json:"kid"`
	Typ string `json:"typ"`
}

func headerOf(t testing.TB, token string) jwsHeader {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatalf("header of %q: %v", token, err)
	}
	var h jwsHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("header of %q: %v", token, err)
	}
	return h
}

func mustSign(t testing.TB, m *KeyManager, alg string, claims any) string {
	t.Helper()
	token, err := m.Sign(alg, "at+jwt", claims)
	if err != nil {
		t.Fatalf("Sign(%s): %v", alg, err)
	}
	return token
}

func jwksKIDs(t testing.TB, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS %s: %v", jwks, err)
	}
	var kids []string
	for _, k := range set.Keys {
		kid, _ := k["kid"].(string)
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	return kids
}

func TestKeyManagerGeneratesOnceAndReloads(t *testing.T) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			store, clock := d.Open(t), newKeysClock()
			first := newKeys(t, store, clock)
			kids := signingKIDs(t, first)
			if len(kids) != len(allKeyAlgs) {
				t.Fatalf("signing keys %v, want one per algorithm in %v", kids, allKeyAlgs)
			}
			if n := len(storedKeys(t, store)); n != len(allKeyAlgs) {
				t.Fatalf("%d stored keys, want %d", n, len(allKeyAlgs))
			}

			// Another node, or a restart: the same keys, nothing generated.
			second := newKeys(t, store, clock)
			if got := signingKIDs(t, second); !mapsEqual(got, kids) {
				t.Errorf("second manager signs with %v, want %v", got, kids)
			}
			if n := len(storedKeys(t, store)); n != len(allKeyAlgs) {
				t.Errorf("%d stored keys after a second start, want %d", n, len(allKeyAlgs))
			}
			if !bytes.Equal(first.JWKS(), second.JWKS()) {
				t.Errorf("JWKS differ:\n%s\n%s", first.JWKS(), second.JWKS())
			}
			// Each verifies what the other signed.
			for _, alg := range allKeyAlgs {
				if _, _, err := second.Verify(mustSign(t, first, alg, map[string]any{"sub": "u"}), []string{alg}); err != nil {
					t.Errorf("%s: second manager does not verify the first's token: %v", alg, err)
				}
			}

			// Adding an algorithm later generates only that one.
			edOnly := newKeys(t, d.Open(t), clock, AlgEdDSA)
			if got := signingKIDs(t, edOnly); len(got) != 1 || got[AlgEdDSA] == "" {
				t.Errorf("EdDSA-only manager signs with %v", got)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestKeyManagerSealsPrivateKeys(t *testing.T) {
	store := storagetest.OpenSQLite(t)
	m := newKeys(t, store, newKeysClock())
	rows := storedKeys(t, store)
	for _, row := range rows {
		k := m.keys().byKID[row.KID]
		if k == nil {
			t.Fatalf("stored key %s not loaded", row.KID)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.private)
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string][]byte{"PKCS#8": der}
		switch p := k.private.(type) {
		case ed25519.PrivateKey:
			secrets["seed"] = p.Seed()
		case *ecdsa.PrivateKey:
			d, _ := p.Bytes()
			secrets["D"] = d
		case *rsa.PrivateKey:
			secrets["D"] = p.D.Bytes()
			secrets["P"] = p.Primes[0].Bytes()
			secrets["Q"] = p.Primes[1].Bytes()
		}
		for name, secret := range secrets {
			if bytes.Contains(row.Sealed, secret) {
				t.Errorf("%s %s: sealed column contains the private key's %s", row.Algorithm, row.KID, name)
			}
		}
		// The kid is the additional data: a sealed key moved to another
		// row does not open.
		sealer, _ := seal.New(keysTestSecret, sealPurposeSigningKeys)
		if _, err := sealer.Open(row.Sealed, []byte(row.KID)); err != nil {
			t.Errorf("%s: does not open with its kid: %v", row.KID, err)
		}
		if _, err := sealer.Open(row.Sealed, []byte(row.KID+"x")); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("%s: opens with another kid: %v", row.KID, err)
		}
	}
}

func TestKeyManagerRefusesWrongSecret(t *testing.T) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			store, clock := d.Open(t), newKeysClock()
			newKeys(t, store, clock)
			before := storedKeys(t, store)

			m, err := NewKeyManager(context.Background(), store, keysTestSecret+"-other", allKeyAlgs, clock.Now)
			if err == nil || m != nil {
				t.Fatalf("NewKeyManager with another secret = %v, %v; want an error", m, err)
			}
			if !errors.Is(err, seal.ErrOpen) || !strings.Contains(err.Error(), "KAVACH_SECRET") {
				t.Errorf("error %q should wrap seal.ErrOpen and name KAVACH_SECRET", err)
			}
			if strings.Contains(err.Error(), keysTestSecret) {
				t.Errorf("error %q quotes the secret", err)
			}
			// It must not paper over the failure with fresh keys.
			if after := storedKeys(t, store); len(after) != len(before) {
				t.Errorf("%d stored keys after a failed start, want %d", len(after), len(before))
			}
		})
	}
}

func TestNewKeyManagerRefusesBadConfig(t *testing.T) {
	store := storagetest.OpenSQLite(t)
	for _, tc := range []struct {
		name   string
		secret string
		algs   []string
	}{
		{"no algorithms", keysTestSecret, nil},
		{"none", keysTestSecret, []string{"none"}},
		{"HS256", keysTestSecret, []string{"HS256"}},
		{"lower case", keysTestSecret, []string{"es256"}},
		{"duplicate", keysTestSecret, []string{AlgEdDSA, AlgEdDSA}},
		{"empty secret", "", []string{AlgEdDSA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := NewKeyManager(context.Background(), store, tc.secret, tc.algs, nil); err == nil {
				t.Fatalf("NewKeyManager = %v, want an error", m)
			}
		})
	}
	if n := len(storedKeys(t, store)); n != 0 {
		t.Errorf("%d keys stored by refused configurations", n)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	m := newKeys(t, storagetest.OpenSQLite(t), newKeysClock())
	kids := signingKIDs(t, m)
	claims := map[string]any{"sub": "user_1", "aud": "https://mcp.example.com", "exp": 2000000000}
	want, _ := json.Marshal(claims)
	for _, alg := range allKeyAlgs {
		for _, typ := range []string{"at+jwt", "JWT", ""} {
			t.Run(alg+"/"+typ, func(t *testing.T) {
				token, err := m.Sign(alg, typ, claims)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if h := headerOf(t, token); h != (jwsHeader{Alg: alg, KID: kids[alg], Typ: typ}) {
					t.Errorf("header %+v, want alg %s kid %s typ %q", h, alg, kids[alg], typ)
				}
				payload, gotTyp, err := m.Verify(token, []string{alg})
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !bytes.Equal(payload, want) || gotTyp != typ {
					t.Errorf("Verify = %s, %q; want %s, %q", payload, gotTyp, want, typ)
				}
				// Every algorithm the caller allows, not only the first.
				if _, _, err := m.Verify(token, allKeyAlgs); err != nil {
					t.Errorf("Verify with all algorithms allowed: %v", err)
				}
			})
		}
	}
}

func TestSignRefuses(t *testing.T) {
	m := newKeys(t, storagetest.OpenSQLite(t), newKeysClock(), AlgEdDSA)
	for _, tc := range []struct {
		name   string
		alg    string
		claims any
		want   error
	}{
		{"algorithm without a key", AlgRS256, map[string]any{}, ErrNoSigningKey},
		{"unknown algorithm", "HS256", map[string]any{}, ErrNoSigningKey},
		{"claims not an object", AlgEdDSA, []string{"a"}, nil},
		{"claims a string", AlgEdDSA, "x", nil},
		{"claims unencodable", AlgEdDSA, map[string]any{"f": func() {}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token, err := m.Sign(tc.alg, "JWT", tc.claims)
			if err == nil {
				t.Fatalf("Sign = %q, want an error", token)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Sign error %v, want %v", err, tc.want)
			}
		})
	}
}

// forge returns header.payload.signature with the given raw parts.
func forge(header, payload string, sign func(input []byte) []byte) string {
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// retyped returns token with its header's typ replaced and its signature
// kept.
func retyped(t testing.TB, token, typ string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	h["typ"] = typ
	raw, _ = json.Marshal(h)
	return base64.RawURLEncoding.EncodeToString(raw) + "." + parts[1] + "." + parts[2]
}

func hs256(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		mac := hmac.New(sha256.New, secret)
		mac.Write(input)
		return mac.Sum(nil)
	}
}

// signWithForeignKey signs with a key of our own making, under kid.
func signWithForeignKey(t testing.TB, alg jose.SignatureAlgorithm, key any, kid, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestVerifyRejects(t *testing.T) {
	clock := newKeysClock()
	m := newKeys(t, storagetest.OpenSQLite(t), clock)
	other := newKeys(t, storagetest.OpenSQLite(t), clock) // same secret, another store
	kids := signingKIDs(t, m)
	payload := `{"sub":"user_1","scope":"read"}`
	good := map[string]string{}
	for _, alg := range allKeyAlgs {
		good[alg] = mustSign(t, m, alg, json.RawMessage(payload))
	}
	parts := func(token string) []string { return strings.Split(token, ".") }
	edPub := m.keys().byKID[kids[AlgEdDSA]].public.(ed25519.PublicKey)
	rsaPub := m.keys().byKID[kids[AlgRS256]].public
	rsaDER, _ := x509.MarshalPKIXPublicKey(rsaPub)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	foreignEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, foreignEd, _ := ed25519.GenerateKey(rand.Reader)
	hdr := func(alg, kid string) string { return `{"alg":"` + alg + `","kid":"` + kid + `","typ":"at+jwt"}` }
	everything := []string{AlgEdDSA, AlgES256, AlgRS256, "HS256", "none"}

	for _, tc := range []struct {
		name    string
		token   string
		allowed []string
		want    string // in the error message
	}{
		{"empty", "", allKeyAlgs, "malformed"},
		{"one part", "abc", allKeyAlgs, "malformed"},
		{"two parts", parts(good[AlgEdDSA])[0] + "." + parts(good[AlgEdDSA])[1], allKeyAlgs, "malformed"},
		{"four parts", good[AlgEdDSA] + ".x", allKeyAlgs, "malformed"},
		{"bad base64", "!!!." + parts(good[AlgEdDSA])[1] + "." + parts(good[AlgEdDSA])[2], allKeyAlgs, "malformed"},
		{"header not JSON", forge("nope", payload, nil), allKeyAlgs, "malformed"},
		{"JSON serialization", `{"payload":"e30","protected":"` + parts(good[AlgEdDSA])[0] + `","signature":"` + parts(good[AlgEdDSA])[2] + `"}`, allKeyAlgs, "malformed"},
		{"too long", good[AlgEdDSA][:20] + strings.Repeat("A", maxJWSSize), allKeyAlgs, "too long"},
		{"no allowed algorithms", good[AlgEdDSA], nil, "algorithm not allowed"},
		{"algorithm not allowed", good[AlgEdDSA], []string{AlgES256, AlgRS256}, "algorithm not allowed"},
		{"RS256 not allowed for access tokens", good[AlgRS256], []string{AlgEdDSA, AlgES256}, "algorithm not allowed"},
		{"tampered payload", parts(good[AlgES256])[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","scope":"read"}`)) + "." + parts(good[AlgES256])[2], allKeyAlgs, "bad signature"},
		{"tampered header typ", retyped(t, good[AlgEdDSA], "JWT"), allKeyAlgs, "bad signature"},
		{"signature of another token", parts(good[AlgRS256])[0] + "." + parts(good[AlgRS256])[1] + "." + parts(mustSign(t, m, AlgRS256, map[string]any{"sub": "x"}))[2], allKeyAlgs, "bad signature"},
		{"empty signature", parts(good[AlgEdDSA])[0] + "." + parts(good[AlgEdDSA])[1] + ".", allKeyAlgs, "bad signature"},
		{"unknown kid", mustSign(t, other, AlgEdDSA, json.RawMessage(payload)), allKeyAlgs, "unknown or expired key"},
		{"no kid", forge(`{"alg":"EdDSA"}`, payload, func(in []byte) []byte { return ed25519.Sign(foreignEd, in) }), allKeyAlgs, "unknown or expired key"},
		{"foreign key under our kid", signWithForeignKey(t, jose.EdDSA, foreignEd, kids[AlgEdDSA], payload), allKeyAlgs, "bad signature"},
		{"ES256 header on the EdDSA key", signWithForeignKey(t, jose.ES256, foreignEC, kids[AlgEdDSA], payload), allKeyAlgs, "not the key's"},
		{"ES256 header on the RS256 key", signWithForeignKey(t, jose.ES256, foreignEC, kids[AlgRS256], payload), allKeyAlgs, "not the key's"},
		{"none", forge(hdr("none", kids[AlgEdDSA]), payload, nil), everything, "algorithm not allowed"},
		{"None", forge(hdr("None", kids[AlgEdDSA]), payload, nil), append(everything, "None"), "algorithm not allowed"},
		{"HS256 with the Ed25519 public key", forge(hdr("HS256", kids[AlgEdDSA]), payload, hs256(edPub)), everything, "algorithm not allowed"},
		{"HS256 with the RSA public key DER", forge(hdr("HS256", kids[AlgRS256]), payload, hs256(rsaDER)), everything, "algorithm not allowed"},
		{"HS256 with the RSA public key PEM", forge(hdr("HS256", kids[AlgRS256]), payload, hs256(rsaPEM)), everything, "algorithm not allowed"},
		{"HS256 with the JWKS", forge(hdr("HS256", kids[AlgES256]), payload, hs256(m.JWKS())), everything, "algorithm not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, typ, err := m.Verify(tc.token, tc.allowed)
			if !errors.Is(err, ErrInvalidJWS) {
				t.Fatalf("Verify = %s, %q, %v; want ErrInvalidJWS", got, typ, err)
			}
			if got != nil || typ != "" {
				t.Errorf("Verify returned %s, %q with an error", got, typ)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestJWKSIsPublicOnly(t *testing.T) {
	clock := newKeysClock()
	m := newKeys(t, storagetest.OpenSQLite(t), clock)
	if err := m.Rotate(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatalf("JWKS %s: %v", m.JWKS(), err)
	}
	if len(set.Keys) != 2*len(allKeyAlgs) {
		t.Fatalf("JWKS has %d keys, want %d", len(set.Keys), 2*len(allKeyAlgs))
	}
	wantKty := map[string]string{AlgEdDSA: "OKP", AlgES256: "EC", AlgRS256: "RSA"}
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWK %v has private member %q", k["kid"], private)
			}
		}
		alg, _ := k["alg"].(string)
		if k["use"] != "sig" || k["kid"] == "" || wantKty[alg] == "" || k["kty"] != wantKty[alg] {
			t.Errorf("JWK %v: want kid, use sig, and kty matching alg", k)
		}
		// Each parses as a public key a relying party can verify with.
		raw, _ := json.Marshal(k)
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil || !jwk.IsPublic() || !jwk.Valid() {
			t.Errorf("JWK %s does not parse as a valid public key: %v", raw, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	m := newKeys(f, storagetest.OpenSQLite(f), newKeysClock())
	payloads := map[string]bool{}
	for _, alg := range allKeyAlgs {
		claims := map[string]any{"sub": "u_" + alg}
		token := mustSign(f, m, alg, claims)
		p, _ := json.Marshal(claims)
		payloads[string(p)] = true
		f.Add(token)
		parts := strings.Split(token, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".e30." + parts[2])
	}
	f.Add("")
	f.Add("..")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Add(forge(`{"alg":"none","kid":"x"}`, `{}`, nil))
	f.Fuzz(func(t *testing.T, token string) {
		payload, _, err := m.Verify(token, allKeyAlgs)
		if err != nil {
			if !errors.Is(err, ErrInvalidJWS) {
				t.Fatalf("Verify error %v does not wrap ErrInvalidJWS", err)
			}
			return
		}
		// Encodings may be malleable (ECDSA signatures, base64 padding
		// bits), but no payload we did not sign may verify.
		if !payloads[string(payload)] {
			t.Fatalf("Verify accepted a payload we never signed: %q", payload)
		}
	})
}

var benchClaims = map[string]any{
	"iss": "https://auth.example.com", "sub": "user_2b7x9", "aud": "https://mcp.example.com/mcp",
	"client_id": "agent_k2", "scope": "mcp:tools read", "jti": "3q2-7wEAAAA", "iat": 1764200000, "exp": 1764203600,
}

func BenchmarkSign(b *testing.B) {
	m := newKeys(b, storagetest.OpenSQLite(b), newKeysClock())
	for _, alg := range allKeyAlgs {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Sign(alg, "at+jwt", benchClaims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	m := newKeys(b, storagetest.OpenSQLite(b), newKeysClock())
	for _, alg := range allKeyAlgs {
		token := mustSign(b, m, alg, benchClaims)
		allowed := []string{alg}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := m.Verify(token, allowed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
