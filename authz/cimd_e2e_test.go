package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

// docHost is the client's web server: it serves metadata documents (and
// key sets) over TLS and counts the requests for each path.
type docHost struct {
	*httptest.Server
	mu    sync.Mutex
	pages map[string]docPage
	hits  map[string]*atomic.Int64
}

type docPage struct {
	status int
	header http.Header
	body   string
}

func newDocHost(t *testing.T) *docHost {
	t.Helper()
	h := &docHost{pages: map[string]docPage{}, hits: map[string]*atomic.Int64{}}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		p, ok := h.pages[r.URL.Path]
		if c := h.hits[r.URL.Path]; c != nil {
			c.Add(1)
		}
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range p.header {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(p.status)
		_, _ = w.Write([]byte(p.body))
	}))
	t.Cleanup(h.Close)
	return h
}

// serve publishes body at path (headers as "Name: value" pairs).
func (h *docHost) serve(path string, status int, body string, headers ...string) string {
	hdr := http.Header{}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ":")
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pages[path] = docPage{status: status, header: hdr, body: body}
	if h.hits[path] == nil {
		h.hits[path] = &atomic.Int64{}
	}
	return h.URL + path
}

// document publishes a metadata document at path whose client_id is its
// own URL; edit changes the fields first.
func (h *docHost) document(t *testing.T, path string, edit func(doc map[string]any), headers ...string) string {
	t.Helper()
	doc := map[string]any{
		"client_id":                  h.URL + path,
		"client_name":                "Doc Client",
		"client_uri":                 h.URL,
		"redirect_uris":              []string{cimdRedirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	if edit != nil {
		edit(doc)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return h.serve(path, http.StatusOK, string(body), headers...)
}

func (h *docHost) count(path string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.hits[path]; c != nil {
		return c.Load()
	}
	return 0
}

func (h *docHost) tlsConfig() *tls.Config {
	return h.Client().Transport.(*http.Transport).TLSClientConfig
}

const (
	cimdIssuer   = "https://auth.test"
	cimdRedirect = "http://127.0.0.1:7777/callback"
	cimdVerifier = "cimd-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
)

// cimdEnv is an authorization server with metadata documents enabled, a
// signed-in user, and a docHost for the clients' documents.
type cimdEnv struct {
	srv   *Server
	mux   *http.ServeMux
	store storage.Store
	clock *keysClock
	docs  *docHost
	user  *storage.User
}

func newCIMDEnv(t *testing.T, edit func(*CIMDConfig)) *cimdEnv {
	t.Helper()
	e := &cimdEnv{store: storagetest.OpenSQLite(t), clock: newKeysClock(), docs: newDocHost(t)}
	cc := CIMDConfig{Enabled: true, AllowInsecure: true, TLSConfig: e.docs.tlsConfig()}
	if edit != nil {
		edit(&cc)
	}
	srv, err := New(e.store, newKeys(t, e.store, e.clock), Config{
		Issuer: cimdIssuer, Secret: keysTestSecret, Now: e.clock.Now, CIMD: cc,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), // shown with -v: why a document was refused
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(srv.Close)
	e.srv = srv
	now := e.clock.Now()
	e.user = &storage.User{ID: "usr_cimd", Email: "cimd@example.com", Name: "Cim D", CreatedAt: now, UpdatedAt: now}
	if err := e.store.Users().Create(context.Background(), e.user); err != nil {
		t.Fatal(err)
	}
	e.mux = http.NewServeMux()
	sessions := func(*http.Request) (Principal, bool) {
		return Principal{UserID: e.user.ID, AuthTime: e.clock.Now()}, true
	}
	srv.Routes(e.mux, sessions, func(h http.Handler) http.Handler { return h })
	return e
}

func (e *cimdEnv) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize sends the browser to the authorize endpoint.
func (e *cimdEnv) authorize(clientID, redirect string) *httptest.ResponseRecorder {
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid mcp"}, "state": {"state-0123456789"}, "resource": {cimdIssuer + "/mcp"},
		"code_challenge": {challenge(cimdVerifier)}, "code_challenge_method": {"S256"},
	}
	return e.do(httptest.NewRequest(http.MethodGet, cimdIssuer+AuthorizePath+"?"+q.Encode(), nil))
}

// wantOwnErrorPage checks that the authorize endpoint answered on its own
// page: never a redirect to a URI nobody vouched for.
func wantOwnErrorPage(t *testing.T, w *httptest.ResponseRecorder, text string) {
	t.Helper()
	if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
		t.Fatalf("status %d, Location %q; want 400 on our own page", w.Code, w.Header().Get("Location"))
	}
	if !strings.Contains(w.Body.String(), text) {
		t.Fatalf("error page does not say %q:\n%s", text, w.Body)
	}
}

const unknownClientText = "not registered with this server"

func location(t *testing.T, w *httptest.ResponseRecorder) *url.URL {
	t.Helper()
	if w.Code != http.StatusSeeOther && w.Code != http.StatusFound {
		t.Fatalf("status %d, want a redirect; body:\n%s", w.Code, w.Body)
	}
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *cimdEnv) token(t *testing.T, form url.Values) map[string]any {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, cimdIssuer+TokenPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := e.do(r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	if w.Code != http.StatusOK {
		t.Fatalf("token: status %d: %s", w.Code, w.Body)
	}
	return out
}

// consentReturn follows an authorize answer to the consent page and
// returns its return_to.
func consentReturn(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	u := location(t, w)
	if got := u.Scheme + "://" + u.Host + u.Path; got != cimdIssuer+"/oauth/consent" {
		t.Fatalf("sent to %s, want the consent page", u)
	}
	return u.Query().Get("return_to")
}

func TestMetadataDocumentCodeFlow(t *testing.T) {
	e := newCIMDEnv(t, nil)
	ctx := context.Background()
	clientID := e.docs.document(t, "/oauth/client.json", nil, "Cache-Control: public, max-age=300")

	returnTo := consentReturn(t, e.authorize(clientID, "http://127.0.0.1:5555/callback"))

	cr, err := e.srv.DescribeConsent(ctx, returnTo)
	if err != nil {
		t.Fatalf("DescribeConsent: %v", err)
	}
	if cr.ClientID != clientID || cr.ClientName != "Doc Client" || cr.Source != storage.ClientSourceMetadataDoc ||
		cr.RedirectHost != "127.0.0.1" || !cr.LocalhostOnly || cr.ClientURI != e.docs.URL {
		t.Errorf("consent describes %+v", cr)
	}
	// The consent API the app's own page would call says the same.
	cw := e.do(httptest.NewRequest(http.MethodGet, cimdIssuer+ConsentPath+"?return_to="+url.QueryEscape(returnTo), nil))
	if cw.Code != http.StatusOK || !strings.Contains(cw.Body.String(), `"source":"metadata-document"`) {
		t.Errorf("consent API: %d %s", cw.Code, cw.Body)
	}
	next, err := e.srv.Approve(ctx, e.user.ID, cr)
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}

	back := location(t, e.do(httptest.NewRequest(http.MethodGet, next, nil)))
	if got := back.Scheme + "://" + back.Host + back.Path; got != "http://127.0.0.1:5555/callback" {
		t.Fatalf("code sent to %s", back)
	}
	q := back.Query()
	if q.Get("code") == "" || q.Get("state") != "state-0123456789" || q.Get("iss") != cimdIssuer {
		t.Fatalf("authorization response %s", back.RawQuery)
	}

	tok := e.token(t, url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "client_id": {clientID},
		"redirect_uri": {"http://127.0.0.1:5555/callback"}, "code_verifier": {cimdVerifier},
		"resource": {cimdIssuer + "/mcp"},
	})
	at, _ := tok["access_token"].(string)
	claims, err := e.srv.VerifyAccessToken(ctx, at)
	if err != nil {
		t.Fatalf("VerifyAccessToken: %v", err)
	}
	if claims.ClientID != clientID || claims.Subject != e.user.ID {
		t.Errorf("token for client %q subject %q", claims.ClientID, claims.Subject)
	}

	rec, err := e.store.OAuthClients().Get(ctx, clientID)
	if err != nil {
		t.Fatalf("the client was not stored: %v", err)
	}
	if rec.Source != storage.ClientSourceMetadataDoc || rec.SecretHash != "" {
		t.Errorf("stored as %+v", rec)
	}
	if n := e.docs.count("/oauth/client.json"); n != 1 {
		t.Errorf("document fetched %d times in one flow, want 1 (max-age=300)", n)
	}
}

func TestMetadataDocumentRefused(t *testing.T) {
	e := newCIMDEnv(t, func(c *CIMDConfig) { c.MaxBytes = 4 << 10 })
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the client_id
	}{
		{"client_id differs from the URL", func(t *testing.T) string {
			return e.docs.document(t, "/mismatch.json", func(d map[string]any) { d["client_id"] = e.docs.URL + "/other.json" })
		}},
		{"client_id differs only in case", func(t *testing.T) string {
			return e.docs.document(t, "/case.json", func(d map[string]any) { d["client_id"] = e.docs.URL + "/CASE.json" })
		}},
		{"client_id missing", func(t *testing.T) string {
			return e.docs.document(t, "/noid.json", func(d map[string]any) { delete(d, "client_id") })
		}},
		{"client_name missing", func(t *testing.T) string {
			return e.docs.document(t, "/noname.json", func(d map[string]any) { delete(d, "client_name") })
		}},
		{"redirect_uris missing", func(t *testing.T) string {
			return e.docs.document(t, "/noredirect.json", func(d map[string]any) { delete(d, "redirect_uris") })
		}},
		{"shared secret method", func(t *testing.T) string {
			return e.docs.document(t, "/secret.json", func(d map[string]any) { d["token_endpoint_auth_method"] = "client_secret_basic" })
		}},
		{"client_secret property", func(t *testing.T) string {
			return e.docs.document(t, "/secretprop.json", func(d map[string]any) { d["client_secret"] = "s3cret" })
		}},
		{"implicit grant", func(t *testing.T) string {
			return e.docs.document(t, "/implicit.json", func(d map[string]any) { d["grant_types"] = []string{"implicit"} })
		}},
		{"http redirect URI off loopback", func(t *testing.T) string {
			return e.docs.document(t, "/badredirect.json", func(d map[string]any) { d["redirect_uris"] = []string{"http://example.com/cb"} })
		}},
		{"over the size limit", func(t *testing.T) string {
			return e.docs.document(t, "/big.json", func(d map[string]any) { d["padding"] = strings.Repeat("x", 5<<10) })
		}},
		{"not JSON", func(t *testing.T) string {
			return e.docs.serve("/broken.json", http.StatusOK, `{"client_id":`)
		}},
		{"not an object", func(t *testing.T) string {
			return e.docs.serve("/array.json", http.StatusOK, `[]`)
		}},
		{"wrong content type", func(t *testing.T) string {
			return e.docs.document(t, "/html.json", nil, "Content-Type: text/html")
		}},
		{"404", func(t *testing.T) string { return e.docs.URL + "/missing.json" }},
		{"redirect", func(t *testing.T) string {
			e.docs.document(t, "/real.json", nil)
			return e.docs.serve("/moved.json", http.StatusFound, "", "Location: /real.json")
		}},
		{"no path", func(t *testing.T) string { return e.docs.URL }},
		{"dot segment", func(t *testing.T) string { return e.docs.URL + "/a/../client.json" }},
		{"fragment", func(t *testing.T) string { return e.docs.document(t, "/frag.json", nil) + "#x" }},
		{"user info", func(t *testing.T) string {
			return strings.Replace(e.docs.document(t, "/user.json", nil), "https://", "https://u:p@", 1)
		}},
		{"not canonical", func(t *testing.T) string {
			return strings.Replace(e.docs.document(t, "/canon.json", nil), "https://", "HTTPS://", 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientID := tt.setup(t)
			wantOwnErrorPage(t, e.authorize(clientID, cimdRedirect), unknownClientText)
			if _, err := e.store.OAuthClients().Get(context.Background(), clientID); err == nil {
				t.Error("a refused document was stored as a client")
			}
		})
	}
}

func TestMetadataDocumentRedirectNotInDocument(t *testing.T) {
	e := newCIMDEnv(t, nil)
	clientID := e.docs.document(t, "/client.json", nil)
	wantOwnErrorPage(t, e.authorize(clientID, "https://attacker.example/cb"), "has not registered")
}

func TestMetadataDocumentPrivateTargetRefused(t *testing.T) {
	e := newCIMDEnv(t, func(c *CIMDConfig) { c.AllowInsecure = false })
	clientID := e.docs.document(t, "/client.json", nil) // served from 127.0.0.1
	wantOwnErrorPage(t, e.authorize(clientID, cimdRedirect), unknownClientText)
	if n := e.docs.count("/client.json"); n != 0 {
		t.Errorf("the document server was reached %d times", n)
	}
	// Without the insecure option http ids are not documents at all.
	plain := "http" + strings.TrimPrefix(clientID, "https")
	wantOwnErrorPage(t, e.authorize(plain, cimdRedirect), unknownClientText)
}

func TestMetadataDocumentsDisabled(t *testing.T) {
	e := newCIMDEnv(t, nil)
	clientID := e.docs.document(t, "/client.json", nil)
	consentReturn(t, e.authorize(clientID, cimdRedirect)) // known, and stored

	off, err := New(e.store, newKeys(t, e.store, e.clock), Config{Issuer: cimdIssuer, Secret: keysTestSecret, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(off.Close)
	if off.Metadata().ClientIDMetadataDocumentSupported {
		t.Error("discovery advertises metadata documents while they are off")
	}
	if !e.srv.Metadata().ClientIDMetadataDocumentSupported {
		t.Error("discovery does not advertise metadata documents while they are on")
	}
	// The stored row alone does not vouch for the client.
	if _, err := off.Client(context.Background(), clientID); err != ErrClientNotFound {
		t.Errorf("Client with the feature off: %v, want ErrClientNotFound", err)
	}
}

func TestMetadataDocumentCaching(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		wait    time.Duration // between the two authorize requests
		refetch bool          // the second one fetches the document again
	}{
		{"within max-age", "Cache-Control: max-age=120", 119 * time.Second, false},
		{"after max-age", "Cache-Control: max-age=120", 121 * time.Second, true},
		{"Age counts against max-age", "Cache-Control: max-age=120\nAge: 100", 61 * time.Second, true},
		{"short max-age held for the minimum", "Cache-Control: max-age=5", 30 * time.Second, false},
		{"after the minimum", "Cache-Control: max-age=5", 61 * time.Second, true},
		{"long max-age capped", "Cache-Control: max-age=31536000", 25 * time.Hour, true},
		{"no-store", "Cache-Control: no-store", 0, true},
		{"no-cache", "Cache-Control: no-cache, max-age=600", 0, true},
		{"no header: the minimum", "X-None: 1", 59 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCIMDEnv(t, nil)
			clientID := e.docs.document(t, "/client.json", nil, strings.Split(tt.header, "\n")...)
			consentReturn(t, e.authorize(clientID, cimdRedirect))
			first := e.docs.count("/client.json")
			if first < 1 {
				t.Fatal("the document was not fetched")
			}
			e.clock.Advance(tt.wait)
			consentReturn(t, e.authorize(clientID, cimdRedirect))
			if got := e.docs.count("/client.json") > first; got != tt.refetch {
				t.Errorf("fetched again: %v, want %v", got, tt.refetch)
			}
		})
	}
}

func TestMetadataDocumentChanges(t *testing.T) {
	e := newCIMDEnv(t, nil)
	ctx := context.Background()
	const path = "/client.json"
	clientID := e.docs.document(t, path, nil, "Cache-Control: max-age=60")
	cr, err := e.srv.DescribeConsent(ctx, consentReturn(t, e.authorize(clientID, cimdRedirect)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Approve(ctx, e.user.ID, cr); err != nil {
		t.Fatal(err)
	}
	if w := e.authorize(clientID, cimdRedirect); !strings.HasPrefix(w.Header().Get("Location"), cimdRedirect) {
		t.Fatalf("with consent, authorize sent the browser to %q", w.Header().Get("Location"))
	}

	// A new name is taken over on the next fetch; the consent stays.
	e.docs.document(t, path, func(d map[string]any) { d["client_name"] = "Renamed" }, "Cache-Control: max-age=60")
	e.clock.Advance(61 * time.Second)
	if w := e.authorize(clientID, cimdRedirect); !strings.HasPrefix(w.Header().Get("Location"), cimdRedirect) {
		t.Fatalf("after a rename, authorize sent the browser to %q", w.Header().Get("Location"))
	}
	c, err := e.srv.Client(ctx, clientID)
	if err != nil || c.Name() != "Renamed" {
		t.Fatalf("client after rename: %v, %v", c, err)
	}
	rec, err := e.store.OAuthClients().Get(ctx, clientID)
	if err != nil || !strings.Contains(string(rec.Metadata), "Renamed") {
		t.Fatalf("stored metadata not refreshed: %v %s", err, rec.Metadata)
	}

	// A new redirect URI asks the user again.
	e.docs.document(t, path, func(d map[string]any) {
		d["redirect_uris"] = []string{cimdRedirect, "https://elsewhere.example/cb"}
	}, "Cache-Control: max-age=60")
	e.clock.Advance(61 * time.Second)
	consentReturn(t, e.authorize(clientID, cimdRedirect))
	if _, err := e.store.OAuthConsents().Get(ctx, e.user.ID, clientID, cimdIssuer+"/mcp"); err == nil {
		t.Error("the consent survived a new redirect URI")
	}

	// A document that turns invalid makes the client unknown, at once
	// after the cached copy expires.
	e.docs.document(t, path, func(d map[string]any) { d["client_id"] = "https://someone.else/doc" })
	e.clock.Advance(61 * time.Second)
	wantOwnErrorPage(t, e.authorize(clientID, cimdRedirect), unknownClientText)
}

func TestMetadataDocumentPrivateKeyJWT(t *testing.T) {
	e := newCIMDEnv(t, nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	jwksURI := e.docs.serve("/jwks.json", http.StatusOK, string(jwks), "Content-Type: application/jwk-set+json")
	clientID := e.docs.document(t, "/agent.json", func(d map[string]any) {
		d["token_endpoint_auth_method"] = "private_key_jwt"
		d["jwks_uri"] = jwksURI
		d["grant_types"] = []string{"client_credentials"}
	})

	assertion := func() string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"iss": clientID, "sub": clientID, "aud": cimdIssuer + TokenPath, "jti": rand.Text(),
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		})
		jws, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		s, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tok := e.token(t, url.Values{
		"grant_type": {"client_credentials"}, "scope": {"mcp"}, "resource": {cimdIssuer + "/mcp"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion()},
	})
	claims, err := e.srv.VerifyAccessToken(context.Background(), tok["access_token"].(string))
	if err != nil || claims.ClientID != clientID {
		t.Fatalf("token: %+v, %v", claims, err)
	}
	if n := e.docs.count("/jwks.json"); n != 1 {
		t.Errorf("jwks_uri fetched %d times, want 1", n)
	}
}

// TestMetadataDocumentConcurrentFetch: many requests for one uncached
// document share one fetch.
func TestMetadataDocumentConcurrentFetch(t *testing.T) {
	e := newCIMDEnv(t, nil)
	clientID := e.docs.document(t, "/client.json", nil, "Cache-Control: max-age=300")
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := e.srv.Client(context.Background(), clientID); err != nil {
				t.Errorf("Client: %v", err)
			}
		})
	}
	wg.Wait()
	if n := e.docs.count("/client.json"); n != 1 {
		t.Errorf("fetched %d times, want 1", n)
	}
}
