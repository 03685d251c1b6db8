package kavach_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Negative tests of the OAuth 2.1 authorization server and the protected
// /mcp endpoint: each request a client or an attacker can get wrong, and
// the answer the standards ask for (the list in the MCP/OAuth standards
// note, "Negative tests to write ourselves").

const negRedirect = "http://127.0.0.1:53682/callback"

// oauthFixture is one server with the clients the negative tests use and a
// signed-in browser that has already approved pub.
type oauthFixture struct {
	e        *env
	resource string
	browser  *client
	pub      registration // public: authorization_code + refresh_token, redirect negRedirect
	other    registration // public, same redirect, never approved
	service  registration // confidential, client_credentials, client_secret_basic
	post     registration // confidential, client_credentials, client_secret_post
	webApp   registration // confidential, authorization_code only
}

// registration is the RFC 7591 answer fields the tests read.
type registration struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
}

func newOAuthFixture(t *testing.T, open func(testing.TB) storage.Store) *oauthFixture {
	t.Helper()
	e := newEnv(t, open, nil)
	f := &oauthFixture{e: e, resource: e.url + "/mcp", browser: e.client()}
	f.browser.signUp("nora@example.com")
	public := map[string]any{
		"client_name": "Negative test app", "redirect_uris": []string{negRedirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
	}
	f.pub = e.register(t, public)
	f.other = e.register(t, public)
	// Machine clients are pre-registered: open registration refuses them.
	f.service = e.preregister(t, authz.ClientMetadata{ClientName: "Service", GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: "client_secret_basic"})
	f.post = e.preregister(t, authz.ClientMetadata{ClientName: "Service (post)", GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: "client_secret_post"})
	f.webApp = e.register(t, map[string]any{"client_name": "Web app", "redirect_uris": []string{"https://app.example.com/cb"}, "token_endpoint_auth_method": "client_secret_basic"})
	// One approved flow: later requests of pub go straight back to it.
	f.code(t, f.config(f.pub, negRedirect), oauth2.GenerateVerifier())
	return f
}

// config is an x/oauth2 client for c asking for mcp and offline_access.
func (f *oauthFixture) config(c registration, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirect, Scopes: []string{"mcp", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: f.e.url + authz.AuthorizePath, TokenURL: f.e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams},
	}
}

// authURL is a valid authorization request of cfg (S256 PKCE, our
// resource, state), then changed by mutate.
func (f *oauthFixture) authURL(cfg *oauth2.Config, state, verifier string, mutate func(url.Values)) string {
	raw := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", f.resource))
	if mutate == nil {
		return raw
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	mutate(q)
	u.RawQuery = q.Encode()
	return u.String()
}

// code runs a valid authorization request as the signed-in browser and
// returns the code.
func (f *oauthFixture) code(t *testing.T, cfg *oauth2.Config, verifier string) string {
	t.Helper()
	state := oauth2.GenerateVerifier()
	p := callbackParams(t, f.browser.authorize(t, f.authURL(cfg, state, verifier, nil)), cfg.RedirectURL)
	if p.Get("code") == "" || p.Get("state") != state || p.Get("iss") != f.e.url {
		t.Fatalf("authorization response %v: want code, state %q and iss %q", p, state, f.e.url)
	}
	return p.Get("code")
}

// tokens runs the code flow with x/oauth2 and returns its tokens.
func (f *oauthFixture) tokens(t *testing.T, cfg *oauth2.Config) *oauth2.Token {
	t.Helper()
	v := oauth2.GenerateVerifier()
	code := f.code(t, cfg, v)
	tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(v), oauth2.SetAuthURLParam("resource", f.resource))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// codeForm is a valid token request for a code of pub.
func (f *oauthFixture) codeForm(code, verifier string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {negRedirect}, "client_id": {f.pub.ClientID}, "resource": {f.resource},
	}
}

// serviceToken is a client_credentials token of the service client.
func (f *oauthFixture) serviceToken(t *testing.T, scopes ...string) string {
	t.Helper()
	cc := clientcredentials.Config{
		ClientID: f.service.ClientID, ClientSecret: f.service.ClientSecret, TokenURL: f.e.url + authz.TokenPath,
		Scopes: scopes, EndpointParams: url.Values{"resource": {f.resource}}, AuthStyle: oauth2.AuthStyleInHeader,
	}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	return tok.AccessToken
}

// active asks introspection, as the service client, whether token is active.
func (f *oauthFixture) active(t *testing.T, token string) bool {
	t.Helper()
	a := f.e.postForm(t, authz.IntrospectPath, url.Values{"token": {token}}, f.service.ClientID, f.service.ClientSecret)
	if a.Status != http.StatusOK {
		t.Fatalf("introspect: %s", a)
	}
	active, _ := a.Body["active"].(bool)
	return active
}

// oauthAnswer is a raw HTTP answer; Body is set when it is JSON.
type oauthAnswer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (a oauthAnswer) errorCode() string { s, _ := a.Body["error"].(string); return s }
func (a oauthAnswer) String() string    { return fmt.Sprintf("%d %s", a.Status, a.Raw) }

// send does req without following redirects.
func send(t *testing.T, req *http.Request) oauthAnswer {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := oauthAnswer{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", req.Method, req.URL, raw, err)
		}
	}
	return a
}

// postForm posts a form; user and pass, when user is set, go in HTTP Basic
// (form-encoded first, RFC 6749 §2.3.1).
func (e *env) postForm(t *testing.T, path string, form url.Values, user, pass string) oauthAnswer {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return send(t, req)
}

// sendJSON sends a JSON body (none when body is "") with an optional
// bearer token; path may be absolute.
func (e *env) sendJSON(t *testing.T, method, path, bearer, body string) oauthAnswer {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = e.url + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return send(t, req)
}

// preregister registers a client as the CLI or admin API would.
func (e *env) preregister(t *testing.T, m authz.ClientMetadata) registration {
	t.Helper()
	reg := e.registerClient(t, m)
	return registration{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, ClientName: m.ClientName}
}

func (e *env) register(t *testing.T, metadata map[string]any) registration {
	t.Helper()
	b, _ := json.Marshal(metadata)
	a := e.sendJSON(t, "POST", authz.RegisterPath, "", string(b))
	if a.Status != http.StatusCreated {
		t.Fatalf("register %s: %s", b, a)
	}
	var r registration
	if err := json.Unmarshal(a.Raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

const mcpInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"negative-test","version":"1"}}}`

// callMCP sends POST initialize, or a bare GET, to /mcp?rawQuery with the
// given Authorization header. A GET with a good token would open an SSE
// stream, so GET is only for requests the resource server must refuse.
func (e *env) callMCP(t *testing.T, method, rawQuery, authorization string) oauthAnswer {
	t.Helper()
	u := e.url + "/mcp"
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(mcpInitialize)
	}
	req, _ := http.NewRequest(method, u, body)
	if method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return send(t, req)
}

// authorizeOutcome is the authorize endpoint's final answer to a browser,
// after consent when it asked for one.
type authorizeOutcome struct {
	Status   int
	Location *url.URL // nil without a Location header
	Header   http.Header
	Body     string
}

func (c *client) authorize(t *testing.T, authURL string) authorizeOutcome {
	t.Helper()
	req, _ := http.NewRequest("GET", authURL, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", authURL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	o := authorizeOutcome{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if resp.Header.Get("Location") != "" {
		o.Location, _ = resp.Location()
	}
	if o.Location != nil && o.Location.Path == "/oauth/consent" {
		o.Location = c.authorizeAsBrowser(t, authURL)
		o.Status = http.StatusSeeOther
	}
	return o
}

// callbackParams returns the authorization response parameters of a
// redirect back to redirect: the query, or the fragment when code or error
// went there. RFC 9207's iss must be among them.
func callbackParams(t *testing.T, o authorizeOutcome, redirect string) url.Values {
	t.Helper()
	if (o.Status != http.StatusFound && o.Status != http.StatusSeeOther) || o.Location == nil {
		t.Fatalf("want a redirect to %s, got %d, Location %v: %.300s", redirect, o.Status, o.Location, o.Body)
	}
	want, _ := url.Parse(redirect)
	if o.Location.Scheme != want.Scheme || o.Location.Host != want.Host || o.Location.Path != want.Path {
		t.Fatalf("redirected to %s, want %s", o.Location, redirect)
	}
	q := o.Location.Query()
	if q.Has("code") || q.Has("error") {
		return q
	}
	frag, _ := url.ParseQuery(o.Location.Fragment)
	return frag
}

// oneOf reports whether got is one of the "|"-separated codes in want.
func oneOf(got, want string) bool { return slices.Contains(strings.Split(want, "|"), got) }

func TestOAuthNegativeAuthorize(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		f := newOAuthFixture(t, open)
		const otherPort = "http://127.0.0.1:9999/callback"
		set := func(kv ...string) func(url.Values) {
			return func(q url.Values) {
				for i := 0; i < len(kv); i += 2 {
					q.Set(kv[i], kv[i+1])
				}
			}
		}
		noPKCE := func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }
		cases := []struct {
			name      string
			client    *registration // default pub
			anonymous bool          // a browser without a session
			mutate    func(q url.Values)
			page      bool   // answered on our own page: 400, no Location
			redirect  string // where the answer goes (default negRedirect)
			wantErr   string // "|"-separated acceptable codes; "" = a code
		}{
			{name: "valid request (control)"},
			{name: "state with reserved characters round-trips", mutate: set("state", "a b&c=d/é?#")},
			{name: "PKCE missing", mutate: noPKCE, wantErr: "invalid_request"},
			// RFC 6749 §4.1.1: the request is validated before the user
			// is authenticated; a browser must not be sent through
			// sign-in for a request that can only fail.
			{name: "PKCE missing is refused before sign-in", anonymous: true, mutate: noPKCE, wantErr: "invalid_request"},
			{name: "PKCE plain", mutate: func(q url.Values) {
				q.Set("code_challenge_method", "plain")
				q.Set("code_challenge", oauth2.GenerateVerifier())
			}, wantErr: "invalid_request"},
			{name: "PKCE method missing (means plain)", mutate: func(q url.Values) { q.Del("code_challenge_method") }, wantErr: "invalid_request"},
			{name: "PKCE method unknown", mutate: set("code_challenge_method", "S512"), wantErr: "invalid_request"},
			{name: "response_type token", mutate: set("response_type", "token"), wantErr: "unsupported_response_type"},
			{name: "response_type id_token token", mutate: set("response_type", "id_token token", "nonce", "n-0S6_WzA2Mj"), wantErr: "unsupported_response_type"},
			{name: "response_type code token", mutate: set("response_type", "code token", "nonce", "n-0S6_WzA2Mj"), wantErr: "unsupported_response_type"},
			// Only the query response mode is supported; whatever the
			// client asks, iss must sit next to the error.
			{name: "response_mode fragment", mutate: set("response_mode", "fragment"), wantErr: "invalid_request|unsupported_response_mode"},
			{name: "response_mode form_post", mutate: set("response_mode", "form_post"), wantErr: "invalid_request|unsupported_response_mode"},
			{name: "unknown client_id", mutate: set("client_id", "cli_doesnotexist"), page: true},
			{name: "client_id missing", mutate: func(q url.Values) { q.Del("client_id") }, page: true},
			{name: "redirect_uri not registered", mutate: set("redirect_uri", "https://evil.example/callback"), page: true},
			{name: "redirect_uri on another path", mutate: set("redirect_uri", "http://127.0.0.1:53682/other"), page: true},
			{name: "redirect_uri with a fragment", mutate: set("redirect_uri", negRedirect+"#frag"), page: true},
			{name: "redirect_uri with another scheme", mutate: set("redirect_uri", "https://127.0.0.1:53682/callback"), page: true},
			{name: "redirect_uri unknown and PKCE missing", mutate: func(q url.Values) { noPKCE(q); q.Set("redirect_uri", "https://evil.example/cb") }, page: true},
			{name: "loopback redirect on another port", mutate: set("redirect_uri", otherPort), redirect: otherPort},
			{name: "unknown resource", mutate: set("resource", "https://other.example/mcp"), wantErr: "invalid_target"},
			{name: "resource with a fragment", mutate: set("resource", f.resource+"#x"), wantErr: "invalid_target"},
			{name: "one unknown resource among known ones", mutate: func(q url.Values) { q.Add("resource", "https://other.example/mcp") }, wantErr: "invalid_target"},
			{name: "unknown scope", mutate: set("scope", "mcp admin"), wantErr: "invalid_scope"},
			{name: "prompt=none without a session", anonymous: true, mutate: set("prompt", "none"), wantErr: "login_required"},
			{name: "prompt=none without consent", client: &f.other, mutate: set("prompt", "none"), wantErr: "consent_required"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := f.pub
				if tc.client != nil {
					c = *tc.client
				}
				redirect := tc.redirect
				if redirect == "" {
					redirect = negRedirect
				}
				authURL := f.authURL(f.config(c, negRedirect), oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), tc.mutate)
				sent, _ := url.Parse(authURL)
				browser := f.browser
				if tc.anonymous {
					browser = f.e.client()
				}
				o := browser.authorize(t, authURL)
				if tc.page {
					if o.Status != http.StatusBadRequest || o.Header.Get("Location") != "" || !strings.HasPrefix(o.Header.Get("Content-Type"), "text/html") {
						t.Fatalf("want our own 400 page without Location, got %d, Location %q, %s", o.Status, o.Header.Get("Location"), o.Header.Get("Content-Type"))
					}
					return
				}
				p := callbackParams(t, o, redirect)
				if p.Get("iss") != f.e.url {
					t.Errorf("iss = %q, want %q (RFC 9207) in %v", p.Get("iss"), f.e.url, o.Location)
				}
				if p.Get("state") != sent.Query().Get("state") {
					t.Errorf("state = %q, want %q", p.Get("state"), sent.Query().Get("state"))
				}
				if tc.wantErr == "" {
					if p.Get("code") == "" || p.Has("error") {
						t.Fatalf("want a code, got %v", o.Location)
					}
					return
				}
				if !oneOf(p.Get("error"), tc.wantErr) || p.Has("code") {
					t.Fatalf("error = %q, want %s and no code: %v", p.Get("error"), tc.wantErr, o.Location)
				}
			})
		}
	})
}

func TestOAuthNegativeToken(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		f := newOAuthFixture(t, open)
		ctx := context.Background()
		pubCfg := f.config(f.pub, negRedirect)
		newCode := func(t *testing.T) (code, verifier string) {
			verifier = oauth2.GenerateVerifier()
			return f.code(t, pubCfg, verifier), verifier
		}

		t.Run("code replay revokes the tokens it produced", func(t *testing.T) {
			code, verifier := newCode(t)
			tok, err := pubCfg.Exchange(ctx, code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", f.resource))
			if err != nil || tok.RefreshToken == "" {
				t.Fatalf("first exchange: %v (refresh token %q)", err, tok.RefreshToken)
			}
			if !f.active(t, tok.AccessToken) {
				t.Fatal("access token inactive right after the exchange")
			}
			if a := f.e.callMCP(t, "POST", "", "Bearer "+tok.AccessToken); a.Status != http.StatusOK {
				t.Fatalf("/mcp with the fresh token: %s", a)
			}
			a := f.e.postForm(t, authz.TokenPath, f.codeForm(code, verifier), "", "")
			if a.Status != http.StatusBadRequest || a.errorCode() != "invalid_grant" || !strings.Contains(a.Header.Get("Cache-Control"), "no-store") {
				t.Fatalf("replay: %s (Cache-Control %q), want 400 invalid_grant, no-store", a, a.Header.Get("Cache-Control"))
			}
			if f.active(t, tok.AccessToken) {
				t.Error("access token still active after the code was replayed")
			}
			if f.active(t, tok.RefreshToken) {
				t.Error("refresh token still active after the code was replayed")
			}
			if a := f.e.callMCP(t, "GET", "", "Bearer "+tok.AccessToken); a.Status != http.StatusUnauthorized {
				t.Errorf("/mcp with the revoked token: %s, want 401", a)
			}
			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {f.pub.ClientID}}
			if a := f.e.postForm(t, authz.TokenPath, refresh, "", ""); a.errorCode() != "invalid_grant" {
				t.Errorf("refresh with the revoked refresh token: %s, want invalid_grant", a)
			}
		})

		t.Run("refresh token reuse revokes the whole grant", func(t *testing.T) {
			tok1 := f.tokens(t, pubCfg)
			stale := &oauth2.Token{RefreshToken: tok1.RefreshToken, Expiry: time.Now().Add(-time.Hour)}
			tok2, err := pubCfg.TokenSource(ctx, stale).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.RefreshToken == "" || tok2.RefreshToken == tok1.RefreshToken || tok2.AccessToken == tok1.AccessToken {
				t.Fatalf("refresh did not rotate: %q → %q", tok1.RefreshToken, tok2.RefreshToken)
			}
			if !f.active(t, tok2.AccessToken) {
				t.Fatal("new access token inactive right after the refresh")
			}
			reuse := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok1.RefreshToken}, "client_id": {f.pub.ClientID}}
			if a := f.e.postForm(t, authz.TokenPath, reuse, "", ""); a.Status != http.StatusBadRequest || a.errorCode() != "invalid_grant" {
				t.Fatalf("old refresh token after rotation: %s, want 400 invalid_grant", a)
			}
			next := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok2.RefreshToken}, "client_id": {f.pub.ClientID}}
			if a := f.e.postForm(t, authz.TokenPath, next, "", ""); a.errorCode() != "invalid_grant" {
				t.Errorf("new refresh token after reuse: %s, want invalid_grant (the family is revoked)", a)
			}
			for name, tok := range map[string]string{"first access token": tok1.AccessToken, "new access token": tok2.AccessToken, "new refresh token": tok2.RefreshToken} {
				if f.active(t, tok) {
					t.Errorf("%s still active after refresh token reuse", name)
				}
			}
			if a := f.e.callMCP(t, "GET", "", "Bearer "+tok2.AccessToken); a.Status != http.StatusUnauthorized {
				t.Errorf("/mcp with the new access token after reuse: %s, want 401", a)
			}
		})

		// request builds the token request of a case; user and pass go in
		// HTTP Basic when user is set.
		type request func(t *testing.T) (form url.Values, user, pass string)
		form := func(kv ...string) request {
			return func(*testing.T) (url.Values, string, string) {
				v := url.Values{}
				for i := 0; i < len(kv); i += 2 {
					v.Add(kv[i], kv[i+1])
				}
				return v, "", ""
			}
		}
		withCode := func(change func(v url.Values)) request {
			return func(t *testing.T) (url.Values, string, string) {
				code, verifier := newCode(t)
				v := f.codeForm(code, verifier)
				change(v)
				return v, "", ""
			}
		}
		cc := func(c registration, secret string, basic bool, extra ...string) request {
			return func(*testing.T) (url.Values, string, string) {
				v := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp"}, "resource": {f.resource}}
				for i := 0; i < len(extra); i += 2 {
					v.Set(extra[i], extra[i+1])
				}
				if basic {
					return v, c.ClientID, secret
				}
				v.Set("client_id", c.ClientID)
				if secret != "" {
					v.Set("client_secret", secret)
				}
				return v, "", ""
			}
		}
		cases := []struct {
			name    string
			request request
			status  int    // 0: any 4xx
			wantErr string // "|"-separated acceptable codes; "" = success
		}{
			{"authorization_code (control)", withCode(func(url.Values) {}), 200, ""},
			{"client_credentials (control)", cc(f.service, f.service.ClientSecret, true), 200, ""},
			{"grant_type password", form("grant_type", "password", "username", "nora@example.com", "password", goodPassword, "client_id", f.pub.ClientID, "scope", "mcp"), 400, "unsupported_grant_type"},
			{"grant_type password by a confidential client", func(*testing.T) (url.Values, string, string) {
				return url.Values{"grant_type": {"password"}, "username": {"nora@example.com"}, "password": {goodPassword}}, f.service.ClientID, f.service.ClientSecret
			}, 400, "unsupported_grant_type"},
			{"grant_type implicit", form("grant_type", "implicit", "client_id", f.pub.ClientID), 400, "unsupported_grant_type"},
			{"grant_type missing", form("client_id", f.pub.ClientID, "code", "x"), 400, "invalid_request"},
			{"unknown code", form("grant_type", "authorization_code", "code", "ory_ac_bogus.bogus", "code_verifier", oauth2.GenerateVerifier(), "redirect_uri", negRedirect, "client_id", f.pub.ClientID), 400, "invalid_grant"},
			{"code_verifier wrong", withCode(func(v url.Values) { v.Set("code_verifier", oauth2.GenerateVerifier()) }), 400, "invalid_grant"},
			{"code_verifier missing", withCode(func(v url.Values) { v.Del("code_verifier") }), 400, "invalid_grant"},
			{"code_verifier sent though no challenge was (downgrade)", func(t *testing.T) (url.Values, string, string) {
				// A second flow without a challenge cannot get a code at all…
				state := oauth2.GenerateVerifier()
				p := callbackParams(t, f.browser.authorize(t, f.authURL(pubCfg, state, "", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") })), negRedirect)
				if p.Has("code") || p.Get("error") != "invalid_request" {
					t.Fatalf("authorize without code_challenge: %v, want invalid_request and no code", p)
				}
				// …so make the server see one: drop the PKCE record of a
				// code, as if it had been issued without a challenge.
				code, verifier := newCode(t)
				sig := code[strings.LastIndexByte(code, '.')+1:]
				if err := f.e.store.OAuthTokens().Delete(ctx, storage.TokenKindPKCE, id.Hash(sig)); err != nil {
					t.Fatalf("drop the PKCE record: %v", err)
				}
				return f.codeForm(code, verifier), "", ""
			}, 400, "invalid_grant"},
			{"code of another client", withCode(func(v url.Values) { v.Set("client_id", f.other.ClientID) }), 400, "invalid_grant"},
			{"redirect_uri differs in path", withCode(func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:53682/other") }), 400, "invalid_grant"},
			{"redirect_uri differs in port", withCode(func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:9999/callback") }), 400, "invalid_grant"},
			{"redirect_uri omitted", withCode(func(v url.Values) { v.Del("redirect_uri") }), 400, "invalid_grant"},
			{"resource not authorized", withCode(func(v url.Values) { v.Set("resource", "https://other.example/mcp") }), 400, "invalid_target"},
			{"client_credentials by a public client", cc(f.pub, "", false), 0, "unauthorized_client|invalid_client|invalid_grant"},
			{"client_credentials by a client not registered for it", cc(f.webApp, f.webApp.ClientSecret, true), 400, "unauthorized_client"},
			{"client_credentials with a wrong secret (basic)", cc(f.service, "kcs_wrong", true), 401, "invalid_client"},
			{"client_credentials with a wrong secret (post)", cc(f.post, "kcs_wrong", false), 401, "invalid_client"},
			{"client_credentials with the secret in the wrong place", cc(f.service, f.service.ClientSecret, false), 401, "invalid_client"},
			{"client_credentials by an unknown client", cc(registration{ClientID: "cli_doesnotexist"}, "kcs_wrong", true), 401, "invalid_client"},
			// A token for another audience cannot be minted at all.
			{"client_credentials for another resource", cc(f.service, f.service.ClientSecret, true, "resource", "https://other.example/mcp"), 400, "invalid_target"},
			{"client_credentials with an unknown scope", cc(f.service, f.service.ClientSecret, true, "scope", "admin"), 400, "invalid_scope"},
			// Advances the shared clock past the code lifetime: keep last.
			{"code expired", func(t *testing.T) (url.Values, string, string) {
				code, verifier := newCode(t)
				f.e.clock.Advance(6 * time.Minute)
				return f.codeForm(code, verifier), "", ""
			}, 400, "invalid_grant"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				v, user, pass := tc.request(t)
				a := f.e.postForm(t, authz.TokenPath, v, user, pass)
				if !strings.Contains(a.Header.Get("Cache-Control"), "no-store") {
					t.Errorf("Cache-Control %q, want no-store (RFC 6749 §5.1)", a.Header.Get("Cache-Control"))
				}
				if tc.wantErr == "" {
					if a.Status != tc.status || a.Body["access_token"] == nil {
						t.Fatalf("want %d with an access token, got %s", tc.status, a)
					}
					return
				}
				if (tc.status != 0 && a.Status != tc.status) || (tc.status == 0 && (a.Status < 400 || a.Status > 499)) || !oneOf(a.errorCode(), tc.wantErr) {
					t.Fatalf("got %s, want %d %s", a, tc.status, tc.wantErr)
				}
				if a.Body["access_token"] != nil {
					t.Fatalf("an error answer with an access token: %s", a)
				}
				// RFC 6749 §5.2: a client that tried HTTP Basic gets 401
				// with a matching challenge.
				if a.Status == http.StatusUnauthorized && user != "" && !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 after HTTP Basic without WWW-Authenticate: Basic (got %q)", a.Header.Get("WWW-Authenticate"))
				}
			})
		}
	})
}

func TestOAuthNegativeRegistration(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		f := newOAuthFixture(t, open)
		e := f.e
		cases := []struct {
			name    string
			body    string
			status  int
			wantErr string
		}{
			{"http redirect on a non-loopback host", `{"redirect_uris":["http://app.example.com/cb"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri"},
			{"redirect with a fragment", `{"redirect_uris":["https://app.example.com/cb#frag"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri"},
			{"loopback redirect with a fragment", `{"redirect_uris":["http://127.0.0.1:8080/cb#x"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri"},
			{"relative redirect", `{"redirect_uris":["/cb"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri"},
			{"redirect with user info", `{"redirect_uris":["https://user@app.example.com/cb"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri"},
			{"no redirect for the code grant", `{"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri"},
			{"grant_types implicit", `{"redirect_uris":["https://app.example.com/cb"],"grant_types":["implicit"]}`, 400, "invalid_client_metadata"},
			{"grant_types password", `{"redirect_uris":["https://app.example.com/cb"],"grant_types":["password"]}`, 400, "invalid_client_metadata"},
			{"response_types token", `{"redirect_uris":["https://app.example.com/cb"],"response_types":["token"]}`, 400, "invalid_client_metadata"},
			{"unsupported auth method", `{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"client_secret_jwt"}`, 400, "invalid_client_metadata"},
			{"public client with client_credentials", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`, 400, "invalid_client_metadata"},
			{"malformed JSON", `{"redirect_uris":`, 400, "invalid_client_metadata"},
			{"wrong JSON type", `{"redirect_uris":"https://app.example.com/cb"}`, 400, "invalid_client_metadata"},
			{"unknown fields are ignored", `{"redirect_uris":["http://localhost:8085/callback"],"token_endpoint_auth_method":"none","resource":"` + f.resource + `","x_vendor":{"a":[1,2]},"software_statement_extra":true}`, 201, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a := e.sendJSON(t, "POST", authz.RegisterPath, "", tc.body)
				if a.Status != tc.status || a.errorCode() != tc.wantErr {
					t.Fatalf("got %s, want %d %q", a, tc.status, tc.wantErr)
				}
				if tc.status == http.StatusCreated && (a.Body["client_id"] == "" || a.Body["x_vendor"] != nil) {
					t.Fatalf("registration answer %s", a)
				}
			})
		}

		// RFC 7592 on one client, in order: read, update, delete with its
		// registration access token; a wrong token gets the same answer
		// as an unknown client.
		reg := e.register(t, map[string]any{"client_name": "Managed", "redirect_uris": []string{negRedirect}, "token_endpoint_auth_method": "none"})
		if reg.RegistrationAccessToken == "" || reg.RegistrationClientURI != e.url+authz.RegisterPath+"/"+reg.ClientID {
			t.Fatalf("registration answer without RFC 7592 fields: %+v", reg)
		}
		unknownURI := e.url + authz.RegisterPath + "/cli_doesnotexist"
		refusal := e.sendJSON(t, "GET", reg.RegistrationClientURI, "krt_wrong", "")
		steps := []struct {
			name   string
			method string
			uri    string
			token  string
			body   string
			status int
			check  func(t *testing.T, a oauthAnswer)
		}{
			{"GET with the token", "GET", reg.RegistrationClientURI, reg.RegistrationAccessToken, "", 200, func(t *testing.T, a oauthAnswer) {
				if a.Body["client_id"] != reg.ClientID || a.Body["client_name"] != "Managed" {
					t.Fatalf("GET answer %s", a)
				}
			}},
			{"GET without a token", "GET", reg.RegistrationClientURI, "", "", 401, nil},
			{"GET with a wrong token", "GET", reg.RegistrationClientURI, "krt_wrong", "", 401, nil},
			{"GET with another client's token", "GET", reg.RegistrationClientURI, f.other.RegistrationAccessToken, "", 401, nil},
			{"GET of an unknown client", "GET", unknownURI, reg.RegistrationAccessToken, "", 401, func(t *testing.T, a oauthAnswer) {
				if string(a.Raw) != string(refusal.Raw) || a.Header.Get("WWW-Authenticate") != refusal.Header.Get("WWW-Authenticate") {
					t.Fatalf("unknown client answered %s (%q), a wrong token %s (%q): must be alike",
						a, a.Header.Get("WWW-Authenticate"), refusal, refusal.Header.Get("WWW-Authenticate"))
				}
			}},
			{"PUT with a wrong token", "PUT", reg.RegistrationClientURI, "krt_wrong", `{"client_id":"` + reg.ClientID + `","client_name":"Hijacked","redirect_uris":["https://evil.example/cb"],"token_endpoint_auth_method":"none"}`, 401, nil},
			{"PUT with the token", "PUT", reg.RegistrationClientURI, reg.RegistrationAccessToken, `{"client_id":"` + reg.ClientID + `","client_name":"Renamed","redirect_uris":["` + negRedirect + `"],"token_endpoint_auth_method":"none"}`, 200, func(t *testing.T, a oauthAnswer) {
				if a.Body["client_name"] != "Renamed" {
					t.Fatalf("PUT answer %s", a)
				}
			}},
			{"PUT with a fragment redirect", "PUT", reg.RegistrationClientURI, reg.RegistrationAccessToken, `{"client_id":"` + reg.ClientID + `","redirect_uris":["https://app.example.com/cb#x"],"token_endpoint_auth_method":"none"}`, 400, func(t *testing.T, a oauthAnswer) {
				if a.errorCode() != "invalid_redirect_uri" {
					t.Fatalf("got %s, want invalid_redirect_uri", a)
				}
			}},
			{"PUT that turns a public client confidential", "PUT", reg.RegistrationClientURI, reg.RegistrationAccessToken, `{"client_id":"` + reg.ClientID + `","redirect_uris":["` + negRedirect + `"],"token_endpoint_auth_method":"client_secret_basic"}`, 400, func(t *testing.T, a oauthAnswer) {
				if a.errorCode() != "invalid_client_metadata" {
					t.Fatalf("got %s, want invalid_client_metadata", a)
				}
			}},
			{"POST to the client URI", "POST", reg.RegistrationClientURI, reg.RegistrationAccessToken, `{}`, 405, nil},
			{"DELETE with a wrong token", "DELETE", reg.RegistrationClientURI, "krt_wrong", "", 401, nil},
			{"GET after a refused DELETE", "GET", reg.RegistrationClientURI, reg.RegistrationAccessToken, "", 200, func(t *testing.T, a oauthAnswer) {
				if a.Body["client_name"] != "Renamed" {
					t.Fatalf("GET answer %s", a)
				}
			}},
			{"DELETE with the token", "DELETE", reg.RegistrationClientURI, reg.RegistrationAccessToken, "", 204, nil},
			{"GET after DELETE", "GET", reg.RegistrationClientURI, reg.RegistrationAccessToken, "", 401, nil},
		}
		for _, st := range steps {
			t.Run("RFC 7592/"+st.name, func(t *testing.T) {
				a := e.sendJSON(t, st.method, st.uri, st.token, st.body)
				if a.Status != st.status {
					t.Fatalf("got %s, want %d", a, st.status)
				}
				if a.Status == http.StatusUnauthorized && (a.errorCode() != "invalid_token" || !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Bearer")) {
					t.Errorf("401 answer %s, WWW-Authenticate %q: want invalid_token and a Bearer challenge", a, a.Header.Get("WWW-Authenticate"))
				}
				if st.check != nil {
					st.check(t, a)
				}
			})
		}
		t.Run("RFC 7592/deleted client cannot authorize", func(t *testing.T) {
			o := f.browser.authorize(t, f.authURL(f.config(reg, negRedirect), "s", oauth2.GenerateVerifier(), nil))
			if o.Status != http.StatusBadRequest || o.Location != nil {
				t.Fatalf("authorize for a deleted client: %d %v, want our 400 page", o.Status, o.Location)
			}
		})
	})
}

func TestOAuthNegativeMCP(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		f := newOAuthFixture(t, open)
		e := f.e
		good := f.serviceToken(t, "mcp")
		noScope := f.serviceToken(t)
		otherScope := f.serviceToken(t, "email")
		revoked := f.serviceToken(t, "mcp")
		if a := e.postForm(t, authz.RevokePath, url.Values{"token": {revoked}}, f.service.ClientID, f.service.ClientSecret); a.Status != http.StatusOK {
			t.Fatalf("revoke: %s", a)
		}
		tampered := good[:len(good)-4] + strings.Map(func(r rune) rune {
			if r == 'A' {
				return 'B'
			}
			return 'A'
		}, good[len(good)-4:])
		prm := `resource_metadata="` + e.url + `/.well-known/oauth-protected-resource/mcp"`
		cases := []struct {
			name          string
			method        string
			query         string
			authorization string
			status        int
			challenge     string // error="…" in WWW-Authenticate; "-" for none at all; "" for no error attribute
		}{
			{"valid token (control)", "POST", "", "Bearer " + good, 200, "-"},
			{"no token", "GET", "", "", 401, ""},
			{"no token, POST", "POST", "", "", 401, ""},
			{"Basic credentials", "GET", "", "Basic " + f.service.ClientID, 401, ""},
			{"garbage token", "GET", "", "Bearer not-a-token", 401, "invalid_token"},
			{"JWT-shaped garbage", "GET", "", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", 401, "invalid_token"},
			{"tampered signature", "GET", "", "Bearer " + tampered, 401, "invalid_token"},
			{"revoked token", "GET", "", "Bearer " + revoked, 401, "invalid_token"},
			{"token without scope mcp", "POST", "", "Bearer " + noScope, 403, "insufficient_scope"},
			{"token with another scope", "POST", "", "Bearer " + otherScope, 403, "insufficient_scope"},
			{"access_token in the query", "GET", "access_token=" + good, "", 400, "invalid_request"},
			{"access_token in the query and the header", "POST", "access_token=" + good, "Bearer " + good, 400, "invalid_request"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a := e.callMCP(t, tc.method, tc.query, tc.authorization)
				if a.Status != tc.status {
					t.Fatalf("got %s, want %d", a, tc.status)
				}
				ch := a.Header.Get("WWW-Authenticate")
				switch {
				case tc.challenge == "-":
					return
				case tc.challenge == "" && strings.Contains(ch, "error="):
					t.Errorf("challenge %q: no error attribute without a token (RFC 6750 §3.1)", ch)
				case tc.challenge != "" && !strings.Contains(ch, `error="`+tc.challenge+`"`):
					t.Errorf("challenge %q, want error=%q", ch, tc.challenge)
				}
				if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, prm) {
					t.Errorf("challenge %q, want Bearer with %s", ch, prm)
				}
				if a.Status != http.StatusBadRequest && !strings.Contains(ch, `scope="mcp"`) {
					t.Errorf("challenge %q, want scope=\"mcp\"", ch)
				}
			})
		}
		// Advances the shared clock past the token lifetime: keep last.
		t.Run("expired token", func(t *testing.T) {
			e.clock.Advance(2 * time.Hour)
			a := e.callMCP(t, "GET", "", "Bearer "+good)
			if a.Status != http.StatusUnauthorized || !strings.Contains(a.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("got %s (%q), want 401 invalid_token", a, a.Header.Get("WWW-Authenticate"))
			}
		})
	})
}

func TestOAuthNegativeIntrospectionRevocation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		f := newOAuthFixture(t, open)
		e := f.e
		token := f.serviceToken(t, "mcp")
		cases := []struct {
			name       string
			path       string
			form       url.Values
			user, pass string
			status     int
			wantErr    string
			active     *bool // introspection: the expected "active"
		}{
			{name: "introspect without client authentication", path: authz.IntrospectPath, form: url.Values{"token": {token}}, status: 401, wantErr: "invalid_client"},
			{name: "introspect with a wrong secret", path: authz.IntrospectPath, form: url.Values{"token": {token}}, user: f.service.ClientID, pass: "kcs_wrong", status: 401, wantErr: "invalid_client"},
			{name: "introspect by an unknown client", path: authz.IntrospectPath, form: url.Values{"token": {token}}, user: "cli_doesnotexist", pass: "kcs_wrong", status: 401, wantErr: "invalid_client"},
			{name: "introspect by a public client", path: authz.IntrospectPath, form: url.Values{"token": {token}, "client_id": {f.pub.ClientID}}, status: 401, wantErr: "invalid_client"},
			{name: "introspect (control)", path: authz.IntrospectPath, form: url.Values{"token": {token}}, user: f.service.ClientID, pass: f.service.ClientSecret, status: 200, active: ptr(true)},
			// Discovery lists client_secret_post for introspection.
			{name: "introspect with client_secret_post", path: authz.IntrospectPath, form: url.Values{"token": {token}, "client_id": {f.post.ClientID}, "client_secret": {f.post.ClientSecret}}, status: 200, active: ptr(true)},
			{name: "introspect a garbage token", path: authz.IntrospectPath, form: url.Values{"token": {"not-a-token"}}, user: f.service.ClientID, pass: f.service.ClientSecret, status: 200, active: ptr(false)},
			{name: "introspect without a token", path: authz.IntrospectPath, form: url.Values{"token_type_hint": {"access_token"}}, user: f.service.ClientID, pass: f.service.ClientSecret, status: 400, wantErr: "invalid_request"},
			{name: "revoke an unknown token", path: authz.RevokePath, form: url.Values{"token": {"not-a-token"}}, user: f.service.ClientID, pass: f.service.ClientSecret, status: 200},
			{name: "revoke an unknown token as a public client", path: authz.RevokePath, form: url.Values{"token": {"ory_rt_unknown.unknown"}, "client_id": {f.pub.ClientID}}, status: 200},
			{name: "revoke with a wrong secret", path: authz.RevokePath, form: url.Values{"token": {token}}, user: f.service.ClientID, pass: "kcs_wrong", status: 401, wantErr: "invalid_client"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a := e.postForm(t, tc.path, tc.form, tc.user, tc.pass)
				if a.Status != tc.status || a.errorCode() != tc.wantErr {
					t.Fatalf("got %s, want %d %q", a, tc.status, tc.wantErr)
				}
				if tc.active != nil {
					if got, _ := a.Body["active"].(bool); got != *tc.active {
						t.Fatalf("active = %v, want %v: %s", got, *tc.active, a)
					}
				}
				if tc.status == http.StatusUnauthorized && tc.user != "" && !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 after HTTP Basic without WWW-Authenticate: Basic (got %q)", a.Header.Get("WWW-Authenticate"))
				}
			})
		}
		t.Run("revoking another client's token leaves it active", func(t *testing.T) {
			a := e.postForm(t, authz.RevokePath, url.Values{"token": {token}}, f.webApp.ClientID, f.webApp.ClientSecret)
			if a.Status >= 500 {
				t.Fatalf("revoke: %s", a)
			}
			if !f.active(t, token) {
				t.Fatal("another client revoked the service client's token")
			}
		})
		t.Run("revoked token is inactive", func(t *testing.T) {
			if a := e.postForm(t, authz.RevokePath, url.Values{"token": {token}}, f.service.ClientID, f.service.ClientSecret); a.Status != http.StatusOK {
				t.Fatalf("revoke: %s", a)
			}
			if f.active(t, token) {
				t.Fatal("token still active after revocation")
			}
		})
	})
}

func ptr[T any](v T) *T { return &v }

// A User-Agent that is not valid UTF-8 (Latin-1 bytes, or one cut inside
// a character) does not stop a token being issued: the audit record
// written with the token row stores it cleaned.
func TestTokenWithInvalidUTF8UserAgent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner := e.client()
		owner.signUp("owner@example.com")
		var ag agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "bot",
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &ag)
		ac := oauthClientFor(t, owner, ag.Agent.ID)
		req, _ := http.NewRequest("POST", e.url+authz.TokenPath, strings.NewReader("grant_type=client_credentials&scope=mcp"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "agent/1.0 caf\xe9 "+strings.Repeat("\xe2\x82\xac", 200))
		req.SetBasicAuth(ac.ClientID, ac.ClientSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("token with a Latin-1 User-Agent: %d", resp.StatusCode)
		}
	})
}
