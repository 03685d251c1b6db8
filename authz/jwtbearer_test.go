package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

const (
	testIdP    = "https://idp.example.com"
	testIdPKID = "idp-key-1"
)

// bearerEnv is a server with one trusted issuer over a real listener.
type bearerEnv struct {
	srv      *Server
	store    storage.Store
	url      string // issuer = base URL
	idpKey   *ecdsa.PrivateKey
	clientID string
	secret   string
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicJWKS(t testing.TB, k *ecdsa.PrivateKey, kid string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newBearerEnv starts a server trusting testIdP for subjects alice and
// agent_7 and scopes mcp and email, with a confidential jwt-bearer client.
// edit adjusts the config before New.
func newBearerEnv(t *testing.T, edit func(*Config)) *bearerEnv {
	t.Helper()
	store := storagetest.OpenSQLite(t)
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	e := &bearerEnv{store: store, url: ts.URL, idpKey: newECKey(t)}
	cfg := Config{
		Issuer: ts.URL, Secret: keysTestSecret,
		TrustedIssuers: []TrustedIssuer{{
			Issuer: testIdP, JWKS: publicJWKS(t, e.idpKey, testIdPKID),
			Subjects: []string{"alice", "agent_7"}, Scopes: []string{"mcp", "email"},
		}},
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(store, newKeys(t, store, newKeysClock(), AlgES256, AlgRS256), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(srv.Close)
	noSession := func(*http.Request) (Principal, bool) { return Principal{}, false }
	srv.Routes(mux, noSession, func(h http.Handler) http.Handler { return h })
	e.srv = srv
	e.clientID, e.secret = e.register(t, ClientMetadata{GrantTypes: []string{GrantJWTBearer}, ClientName: "bearer"})
	return e
}

func (e *bearerEnv) register(t *testing.T, m ClientMetadata) (string, string) {
	t.Helper()
	reg, err := e.srv.RegisterClient(context.Background(), m)
	if err != nil {
		t.Fatalf("RegisterClient: %v", err)
	}
	return reg.Client.GetID(), reg.Secret
}

// assertion is what an issuer signs; zero fields are left out.
type assertion struct {
	Iss      string `json:"iss,omitempty"`
	Sub      string `json:"sub,omitempty"`
	Aud      any    `json:"aud,omitempty"`
	Exp      int64  `json:"exp,omitempty"`
	Iat      int64  `json:"iat,omitempty"`
	JTI      string `json:"jti,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// validAssertion is good for e's client until edited.
func (e *bearerEnv) validAssertion() assertion {
	now := time.Now()
	return assertion{
		Iss: testIdP, Sub: "alice", Aud: e.url + TokenPath,
		Exp: now.Add(5 * time.Minute).Unix(), Iat: now.Unix(), JTI: id.Secret(),
	}
}

func signAssertion(t testing.TB, key *ecdsa.PrivateKey, kid, typ string, a assertion) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type tokenReply struct {
	status           int
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	Scope            string `json:"scope"`
	RefreshToken     string `json:"refresh_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// exchange posts a jwt-bearer request authenticated with HTTP Basic (no
// authentication when clientID is "").
func (e *bearerEnv) exchange(t testing.TB, clientID, secret, jwt string, extra url.Values) tokenReply {
	t.Helper()
	form := url.Values{"grant_type": {GrantJWTBearer}, "assertion": {jwt}}
	for k, v := range extra {
		form[k] = v
	}
	req, err := http.NewRequest(http.MethodPost, e.url+TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r tokenReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode token response (%d): %v", resp.StatusCode, err)
	}
	r.status = resp.StatusCode
	return r
}

func TestJWTBearerIssuesTokenForAssertionSubject(t *testing.T) {
	e := newBearerEnv(t, nil)
	a := e.validAssertion()
	a.Sub = "agent_7"
	r := e.exchange(t, e.clientID, e.secret, signAssertion(t, e.idpKey, testIdPKID, "JWT", a), url.Values{"scope": {"mcp"}})
	if r.status != http.StatusOK || r.AccessToken == "" {
		t.Fatalf("token request: %d %s: %s", r.status, r.Error, r.ErrorDescription)
	}
	if r.RefreshToken != "" || !strings.EqualFold(r.TokenType, "bearer") || r.Scope != "mcp" {
		t.Errorf("response: token_type %q, scope %q, refresh token %v", r.TokenType, r.Scope, r.RefreshToken != "")
	}
	if h := headerOf(t, r.AccessToken); h.Typ != AccessTokenType || h.Alg != AlgES256 {
		t.Errorf("access token header %+v, want typ %s alg ES256", h, AccessTokenType)
	}
	c, err := e.srv.VerifyAccessToken(context.Background(), r.AccessToken)
	if err != nil {
		t.Fatalf("VerifyAccessToken: %v", err)
	}
	want := e.srv.DefaultResource()
	if c.Subject != "agent_7" || c.ClientID != e.clientID || c.Scope != "mcp" || len(c.Audience) != 1 || c.Audience[0] != want || c.Issuer != e.url {
		t.Errorf("claims %+v; want sub agent_7, client %s, scope mcp, aud [%s], iss %s", c, e.clientID, want, e.url)
	}
	// The used jti is remembered against the presenting client.
	row, err := e.store.OAuthTokens().Get(context.Background(), storage.TokenKindAssertion, assertionJTISignature(testIdP, a.JTI))
	if err != nil || row.ClientID != e.clientID || row.Subject != "agent_7" || row.ExpiresAt.Unix() != a.Exp {
		t.Errorf("jti record %+v, %v", row, err)
	}
}

// An ID-JAG (enterprise-managed authorization) names the authorization
// server's issuer as aud, carries the client it was issued to, and is
// typed oauth-id-jag+jwt.
func TestJWTBearerAcceptsIDJAG(t *testing.T) {
	e := newBearerEnv(t, nil)
	a := e.validAssertion()
	a.Aud, a.ClientID = []string{e.url}, e.clientID
	jwt := signAssertion(t, e.idpKey, testIdPKID, "oauth-id-jag+jwt", a)
	r := e.exchange(t, e.clientID, e.secret, jwt, url.Values{"scope": {"mcp email"}, "resource": {e.url + "/mcp"}})
	if r.status != http.StatusOK {
		t.Fatalf("token request: %d %s: %s", r.status, r.Error, r.ErrorDescription)
	}
	c, err := e.srv.VerifyAccessToken(context.Background(), r.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Scope != "mcp email" || len(c.Audience) != 1 || c.Audience[0] != e.url+"/mcp" {
		t.Errorf("claims %+v", c)
	}
}

func TestJWTBearerRejects(t *testing.T) {
	e := newBearerEnv(t, nil)
	otherKey := newECKey(t)
	ccID, ccSecret := e.register(t, ClientMetadata{GrantTypes: []string{GrantClientCredentials}})
	narrowID, narrowSecret := e.register(t, ClientMetadata{GrantTypes: []string{GrantJWTBearer}, Scope: "email"})
	signed := func(edit func(*assertion)) string {
		a := e.validAssertion()
		if edit != nil {
			edit(&a)
		}
		return signAssertion(t, e.idpKey, testIdPKID, "JWT", a)
	}
	replayed := signed(nil)
	if r := e.exchange(t, e.clientID, e.secret, replayed, nil); r.status != http.StatusOK {
		t.Fatalf("first use: %d %s: %s", r.status, r.Error, r.ErrorDescription)
	}
	now := time.Now()

	for _, tc := range []struct {
		name             string
		clientID, secret string
		jwt              string
		extra            url.Values
		want             string
	}{
		{"untrusted issuer", "", "", signAssertion(t, otherKey, testIdPKID, "JWT", func() assertion {
			a := e.validAssertion()
			a.Iss = "https://evil.example.com"
			return a
		}()), nil, "invalid_grant"},
		{"wrong key", "", "", signAssertion(t, otherKey, testIdPKID, "JWT", e.validAssertion()), nil, "invalid_grant"},
		{"wrong key without kid", "", "", signAssertion(t, otherKey, "", "JWT", e.validAssertion()), nil, "invalid_grant"},
		{"unknown kid", "", "", signAssertion(t, e.idpKey, "idp-key-2", "JWT", e.validAssertion()), nil, "invalid_grant"},
		{"replayed jti", "", "", replayed, nil, "invalid_grant"},
		{"expired", "", "", signed(func(a *assertion) { a.Iat, a.Exp = now.Add(-10*time.Minute).Unix(), now.Add(-time.Minute).Unix() }), nil, "invalid_grant"},
		{"lifetime over an hour", "", "", signed(func(a *assertion) { a.Exp = now.Add(2 * time.Hour).Unix() }), nil, "invalid_grant"},
		{"no jti", "", "", signed(func(a *assertion) { a.JTI = "" }), nil, "invalid_grant"},
		{"no iat", "", "", signed(func(a *assertion) { a.Iat = 0 }), nil, "invalid_grant"},
		{"no exp", "", "", signed(func(a *assertion) { a.Exp = 0 }), nil, "invalid_grant"},
		{"audience is someone else", "", "", signed(func(a *assertion) { a.Aud = "https://other.example.com/token" }), nil, "invalid_grant"},
		{"sub not allowed", "", "", signed(func(a *assertion) { a.Sub = "mallory" }), nil, "invalid_grant"},
		{"issued to another client", "", "", signed(func(a *assertion) { a.ClientID = ccID }), nil, "invalid_grant"},
		{"not a JWT", "", "", "not-a-jwt", nil, "invalid_grant"},
		{"no assertion", "", "", "", nil, "invalid_request"},
		{"scope not allowed for the issuer", "", "", signed(nil), url.Values{"scope": {"openid"}}, "invalid_scope"},
		{"scope not allowed for the client", narrowID, narrowSecret, signed(nil), url.Values{"scope": {"mcp"}}, "invalid_scope"},
		{"unknown resource", "", "", signed(nil), url.Values{"resource": {"https://elsewhere.example.com/mcp"}}, "invalid_target"},
		{"client without the grant type", ccID, ccSecret, signed(nil), nil, "unauthorized_client"},
		{"wrong client secret", e.clientID, "kcs_wrong", signed(nil), nil, "invalid_client"},
		// fosite answers missing credentials as it does for every grant.
		{"no client authentication", "-", "", signed(nil), nil, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientID, secret := tc.clientID, tc.secret
			switch clientID {
			case "":
				clientID, secret = e.clientID, e.secret
			case "-":
				clientID = ""
			}
			r := e.exchange(t, clientID, secret, tc.jwt, tc.extra)
			if r.status == http.StatusOK || r.Error != tc.want {
				t.Errorf("got %d %q (%s), want %q", r.status, r.Error, r.ErrorDescription, tc.want)
			}
		})
	}
}

// Of concurrent requests with one assertion, exactly one gets a token.
func TestJWTBearerConcurrentReplay(t *testing.T) {
	e := newBearerEnv(t, nil)
	jwt := signAssertion(t, e.idpKey, testIdPKID, "JWT", e.validAssertion())
	const n = 8
	var wg sync.WaitGroup
	replies := make([]tokenReply, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = e.exchange(t, e.clientID, e.secret, jwt, nil)
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range replies {
		switch {
		case r.status == http.StatusOK:
			ok++
		case r.Error != "invalid_grant":
			t.Errorf("a replay got %d %q (%s), want invalid_grant", r.status, r.Error, r.ErrorDescription)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent uses got a token, want 1", ok, n)
	}
}

func TestJWTBearerOffWithoutTrustedIssuers(t *testing.T) {
	e := newBearerEnv(t, func(c *Config) { c.TrustedIssuers = nil })
	r := e.exchange(t, e.clientID, e.secret, signAssertion(t, e.idpKey, testIdPKID, "JWT", e.validAssertion()), nil)
	if r.status != http.StatusBadRequest || r.Error != "unsupported_grant_type" {
		t.Errorf("got %d %q, want 400 unsupported_grant_type", r.status, r.Error)
	}
}

func TestNewRefusesBadTrustedIssuers(t *testing.T) {
	key := newECKey(t)
	good := publicJWKS(t, key, "k1")
	private, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1", Algorithm: "ES256"}}})
	if err != nil {
		t.Fatal(err)
	}
	encryption, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "enc"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		issuers []TrustedIssuer
	}{
		{"no issuer", []TrustedIssuer{{JWKS: good}}},
		{"listed twice", []TrustedIssuer{{Issuer: testIdP, JWKS: good}, {Issuer: testIdP, JWKS: good}}},
		{"no jwks", []TrustedIssuer{{Issuer: testIdP}}},
		{"empty jwks", []TrustedIssuer{{Issuer: testIdP, JWKS: json.RawMessage(`{"keys":[]}`)}}},
		{"private key", []TrustedIssuer{{Issuer: testIdP, JWKS: private}}},
		{"encryption key", []TrustedIssuer{{Issuer: testIdP, JWKS: encryption}}},
		{"unknown scope", []TrustedIssuer{{Issuer: testIdP, JWKS: good, Scopes: []string{"admin"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := storagetest.OpenSQLite(t)
			srv, err := New(store, newKeys(t, store, newKeysClock(), AlgES256, AlgRS256), Config{
				Issuer: "https://auth.example.com", Secret: keysTestSecret, TrustedIssuers: tc.issuers,
			})
			if err == nil {
				srv.Close()
				t.Fatal("New accepted the config")
			}
		})
	}
}
