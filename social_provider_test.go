package kavach_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fakeProvider is an OAuth 2.0 / OpenID Connect provider on loopback:
// discovery, an authorize endpoint that redirects back with a code (or,
// in form_post mode, answers the fields a browser would post), a token
// endpoint that checks the client secret, the redirect URI and the PKCE
// verifier, JWKS, userinfo, and GitHub- and Discord-style user APIs.
type fakeProvider struct {
	t   *testing.T
	srv *httptest.Server
	key *ecdsa.PrivateKey

	clientID, clientSecret string
	// appleKey, when set, is the public key the client secret (a JWT)
	// must be signed with, as at Apple.
	appleKey  *ecdsa.PublicKey
	appleTeam string
	// issuerTemplate replaces the discovery issuer (Microsoft's
	// "{tenantid}" form); tokens then carry iss with the tenant filled in.
	issuerTemplate string
	tenant         string

	mu       sync.Mutex
	next     fakeIdentity
	codes    map[string]fakeGrant
	issued   []string // access tokens issued
	denyNext bool     // answer the next authorize with error=access_denied
	// wrongNonce makes ID tokens carry another nonce than requested.
	wrongNonce bool
	// badIssuer makes ID tokens carry another issuer (Microsoft test).
	badIssuer bool
}

type fakeIdentity struct {
	Sub, Email, Name string
	Verified         bool
}

type fakeGrant struct {
	challenge, nonce, redirectURI string
	who                           fakeIdentity
}

func newFakeProvider(t *testing.T) *fakeProvider {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProvider{t: t, key: key, clientID: "kavach-client", clientSecret: "fake-client-secret-123", codes: map[string]fakeGrant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /jwks", f.jwks)
	mux.HandleFunc("GET /userinfo", f.userinfo)
	mux.HandleFunc("GET /user", f.githubUser)
	mux.HandleFunc("GET /user/emails", f.githubEmails)
	mux.HandleFunc("GET /users/@me", f.discordUser)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProvider) url() string { return f.srv.URL }

// as sets who signs in at the provider next.
func (f *fakeProvider) as(sub, email string, verified bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = fakeIdentity{Sub: sub, Email: email, Name: "Name of " + sub, Verified: verified}
}

func (f *fakeProvider) set(fn func(f *fakeProvider)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeProvider) issuer() string {
	if f.issuerTemplate != "" {
		return f.srv.URL + "/" + f.tenant + "/v2.0"
	}
	return f.srv.URL
}

func (f *fakeProvider) discovery(w http.ResponseWriter, r *http.Request) {
	iss := f.srv.URL
	if f.issuerTemplate != "" {
		iss = f.issuerTemplate
	}
	writeJSON(w, 200, map[string]any{
		"issuer": iss, "authorization_endpoint": f.srv.URL + "/authorize", "token_endpoint": f.srv.URL + "/token",
		"jwks_uri": f.srv.URL + "/jwks", "userinfo_endpoint": f.srv.URL + "/userinfo",
		"id_token_signing_alg_values_supported": []string{"ES256"}, "response_types_supported": []string{"code"},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != f.clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	deny := f.denyNext
	f.denyNext = false
	code := strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(len(f.codes))
	f.codes[code] = fakeGrant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri"), who: f.next}
	f.mu.Unlock()
	back := url.Values{"state": {q.Get("state")}}
	if deny {
		back.Set("error", "access_denied")
	} else {
		back.Set("code", code)
	}
	if q.Get("response_mode") == "form_post" {
		// A browser would post these fields to redirect_uri; the test
		// posts them.
		writeJSON(w, 200, map[string]any{"action": q.Get("redirect_uri"), "fields": back})
		return
	}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
}

func (f *fakeProvider) checkClient(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != f.clientID {
		return false
	}
	if f.appleKey != nil {
		tok, err := jwt.ParseSigned(secret, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			return false
		}
		var c jwt.Claims
		if err := tok.Claims(f.appleKey, &c); err != nil {
			return false
		}
		return c.Issuer == f.appleTeam && c.Subject == f.clientID && c.Audience.Contains("https://appleid.apple.com") &&
			c.ValidateWithLeeway(jwt.Expected{Time: time.Now()}, time.Minute) == nil
	}
	return subtle.ConstantTimeCompare([]byte(secret), []byte(f.clientSecret)) == 1
}

func (f *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	if !f.checkClient(r) {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	f.mu.Lock()
	g, ok := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	wrongNonce, badIssuer := f.wrongNonce, f.badIssuer
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != g.redirectURI ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
		return
	}
	access := "at-" + g.who.Sub + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	f.mu.Lock()
	f.issued = append(f.issued, access)
	f.mu.Unlock()
	out := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600,
		"refresh_token": "rt-" + g.who.Sub, "scope": "openid email profile"}
	if g.nonce != "" {
		nonce := g.nonce
		if wrongNonce {
			nonce = "another-nonce"
		}
		iss := f.issuer()
		if badIssuer {
			iss = f.srv.URL + "/another-tenant/v2.0"
		}
		claims := map[string]any{
			"iss": iss, "sub": g.who.Sub, "aud": f.clientID, "exp": time.Now().Add(time.Hour).Unix(),
			"iat": time.Now().Unix(), "nonce": nonce, "name": g.who.Name,
		}
		if g.who.Email != "" {
			claims["email"] = g.who.Email
			claims["email_verified"] = g.who.Verified
		}
		if f.tenant != "" {
			claims["tid"] = f.tenant
			claims["xms_edov"] = g.who.Verified
		}
		out["id_token"] = f.sign(claims)
	}
	writeJSON(w, 200, out)
}

func (f *fakeProvider) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.key, KeyID: "k1"}}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fakeProvider) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
}

// bearer finds who an access token was issued for.
func (f *fakeProvider) bearer(r *http.Request) (fakeIdentity, bool) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.issued {
		if a == tok {
			sub := strings.TrimPrefix(a, "at-")
			sub = sub[:strings.LastIndex(sub, "-")]
			who := f.next
			who.Sub = sub
			return who, true
		}
	}
	return fakeIdentity{}, false
}

func (f *fakeProvider) userinfo(w http.ResponseWriter, r *http.Request) {
	who, ok := f.bearer(r)
	if !ok {
		w.WriteHeader(401)
		return
	}
	writeJSON(w, 200, map[string]any{"sub": who.Sub, "email": who.Email, "email_verified": who.Verified})
}

func (f *fakeProvider) githubUser(w http.ResponseWriter, r *http.Request) {
	who, ok := f.bearer(r)
	if !ok {
		w.WriteHeader(401)
		return
	}
	n, _ := strconv.Atoi(who.Sub)
	writeJSON(w, 200, map[string]any{"id": n, "login": "login" + who.Sub, "name": who.Name, "avatar_url": "https://avatars.example.com/" + who.Sub})
}

func (f *fakeProvider) githubEmails(w http.ResponseWriter, r *http.Request) {
	who, ok := f.bearer(r)
	if !ok {
		w.WriteHeader(401)
		return
	}
	writeJSON(w, 200, []map[string]any{
		{"email": "other-" + who.Sub + "@example.net", "primary": false, "verified": true},
		{"email": who.Email, "primary": true, "verified": who.Verified},
	})
}

func (f *fakeProvider) discordUser(w http.ResponseWriter, r *http.Request) {
	who, ok := f.bearer(r)
	if !ok {
		w.WriteHeader(401)
		return
	}
	writeJSON(w, 200, map[string]any{"id": who.Sub, "username": "user" + who.Sub, "global_name": who.Name,
		"avatar": "abc", "email": who.Email, "verified": who.Verified})
}

// appleKeyPEM makes a team key as Apple issues it (PKCS #8 PEM).
func appleKeyPEM(t *testing.T) (string, *ecdsa.PublicKey) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), &k.PublicKey
}

// socialFlow drives a browser through Kavach → provider → Kavach: it
// follows redirects while they go to the Kavach API or to the provider,
// and returns the last response (whose Location is where the browser
// lands).
func (c *client) socialFlow(t *testing.T, f *fakeProvider, start string) *http.Response {
	t.Helper()
	target := start
	if strings.HasPrefix(target, "/") {
		target = c.e.url + target
	}
	for range 10 {
		resp, err := c.http.Get(target)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		// Kept for the caller of the last answer (an error in JSON).
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther || loc == "" {
			return resp
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(next.String(), c.e.url+"/api/auth/") && !strings.HasPrefix(next.String(), f.url()+"/") {
			return resp
		}
		target = next.String()
	}
	t.Fatal("too many redirects")
	return nil
}

// landing is where a flow's last redirect points.
func landing(t *testing.T, resp *http.Response) *url.URL {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("flow ended with status %d, not a redirect", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// mustFailWith checks that a flow ended in a JSON error with this status
// and code.
func mustFailWith(t *testing.T, r *http.Response, status int, code string) {
	t.Helper()
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != status || json.Unmarshal(b, &env) != nil || env.Error.Code != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.StatusCode, b)
	}
}
