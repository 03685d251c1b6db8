package kavach_test

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
)

var update = flag.Bool("update", false, "rewrite golden files")

func (e *env) registerClient(t *testing.T, m authz.ClientMetadata) authz.Registration {
	t.Helper()
	reg, err := e.k.OAuth.RegisterClient(context.Background(), m)
	if err != nil {
		t.Fatalf("register client: %v", err)
	}
	return reg
}

// verifyJWT checks a token's signature against the served JWKS and returns
// its header and claims.
func (e *env) verifyJWT(t *testing.T, token string) (jose.Header, map[string]any) {
	t.Helper()
	resp, err := http.Get(e.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256})
	if err != nil {
		t.Fatalf("parse %q: %v", token, err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

func TestClientCredentialsRFC9068(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		for _, auth := range []string{authz.AuthClientSecretBasic, authz.AuthClientSecretPost} {
			t.Run(auth, func(t *testing.T) {
				reg := e.registerClient(t, authz.ClientMetadata{ClientName: "svc", GrantTypes: []string{authz.GrantClientCredentials}, TokenEndpointAuthMethod: auth, Scope: "mcp"})
				style := oauth2.AuthStyleInHeader
				if auth == authz.AuthClientSecretPost {
					style = oauth2.AuthStyleInParams
				}
				cc := clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: e.url + authz.TokenPath,
					Scopes: []string{"mcp"}, AuthStyle: style, EndpointParams: url.Values{"resource": {e.url + "/mcp"}}}
				tok, err := cc.Token(context.Background())
				if err != nil {
					t.Fatalf("token: %v", err)
				}
				if tok.RefreshToken != "" {
					t.Fatal("client_credentials issued a refresh token")
				}
				h, c := e.verifyJWT(t, tok.AccessToken)
				if typ, _ := h.ExtraHeaders["typ"].(string); typ != "at+jwt" || h.Algorithm != "ES256" {
					t.Fatalf("header typ %q alg %q", typ, h.Algorithm)
				}
				for claim, want := range map[string]any{"iss": e.url, "sub": reg.Client.GetID(), "aud": e.url + "/mcp", "client_id": reg.Client.GetID(), "scope": "mcp"} {
					if c[claim] != want {
						t.Errorf("%s = %v, want %v", claim, c[claim], want)
					}
				}
				for _, claim := range []string{"jti", "iat", "exp"} {
					if c[claim] == nil {
						t.Errorf("no %s claim", claim)
					}
				}
				// The token opens /mcp: whoami names the client.
				who := e.callWhoami(t, tok.AccessToken)
				if who["principal"] != reg.Client.GetID() {
					t.Fatalf("whoami %v", who)
				}
			})
		}
	})
}

// callWhoami calls the whoami tool over plain JSON-RPC (stateless server).
func (e *env) callWhoami(t *testing.T, token string) map[string]any {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	req, _ := http.NewRequest("POST", e.url+"/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("whoami: %d %s", resp.StatusCode, raw)
	}
	s := string(raw)
	if i := strings.Index(s, "data: "); i >= 0 { // SSE framing
		s = strings.TrimSpace(s[i+6:])
	}
	var rpc struct {
		Result struct {
			StructuredContent map[string]any `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(s), &rpc); err != nil {
		t.Fatalf("whoami answer %q: %v", raw, err)
	}
	return rpc.Result.StructuredContent
}

// introspect asks the introspection endpoint as a confidential client.
func (e *env) introspect(t *testing.T, reg authz.Registration, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+authz.IntrospectPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(reg.Client.GetID()), url.QueryEscape(reg.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("introspect: %d %v", resp.StatusCode, err)
	}
	return out
}

func TestCodeFlowRefreshRotationIntrospectionRevocation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		browser := e.client()
		user := browser.signUp("noor@example.com")
		rs := e.registerClient(t, authz.ClientMetadata{ClientName: "introspector", GrantTypes: []string{authz.GrantClientCredentials}})
		const redirect = "http://127.0.0.1:41000/cb"
		app := e.registerClient(t, authz.ClientMetadata{ClientName: "App", RedirectURIs: []string{redirect},
			GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}, TokenEndpointAuthMethod: authz.AuthNone})
		conf := oauth2.Config{ClientID: app.Client.GetID(), RedirectURL: redirect, Scopes: []string{"openid", "email", "mcp", "offline_access"},
			Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath, TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
		verifier := oauth2.GenerateVerifier()
		resource := oauth2.SetAuthURLParam("resource", e.url+"/mcp")
		back := browser.authorizeAsBrowser(t, conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier), resource))
		ctx := context.Background()
		tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier), resource)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
			t.Fatalf("no refresh or id token: %+v", tok)
		}
		_, idc := e.verifyJWT(t, tok.Extra("id_token").(string))
		if idc["sub"] != user.User.ID || idc["aud"] != app.Client.GetID() && !containsAny(idc["aud"], app.Client.GetID()) {
			t.Fatalf("id_token claims %v", idc)
		}
		_, c := e.verifyJWT(t, tok.AccessToken)
		if c["sub"] != user.User.ID || c["aud"] != e.url+"/mcp" || c["auth_time"] == nil {
			t.Fatalf("access token claims %v", c)
		}
		if in := e.introspect(t, rs, tok.AccessToken); in["active"] != true || in["sub"] != user.User.ID {
			t.Fatalf("introspection %v", in)
		}
		// userinfo with openid + email
		req, _ := http.NewRequest("GET", e.url+authz.UserinfoPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ui map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&ui)
		resp.Body.Close()
		if ui["sub"] != user.User.ID || ui["email"] != "noor@example.com" {
			t.Fatalf("userinfo %v", ui)
		}

		// Refresh rotates: new pair; the old refresh token is dead, and so
		// is the old access token.
		old := *tok
		tok.Expiry = tok.Expiry.Add(-24 * 3600e9)
		fresh, err := conf.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if fresh.RefreshToken == old.RefreshToken || fresh.AccessToken == old.AccessToken {
			t.Fatal("refresh did not rotate")
		}
		if in := e.introspect(t, rs, old.AccessToken); in["active"] != false {
			t.Fatalf("old access token still active: %v", in)
		}
		if in := e.introspect(t, rs, fresh.AccessToken); in["active"] != true {
			t.Fatalf("new access token inactive: %v", in)
		}
		// Revoking the refresh token revokes its access token too.
		form := url.Values{"token": {fresh.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {app.Client.GetID()}}
		resp, err = http.Post(e.url+authz.RevokePath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("revoke: %v %v", resp, err)
		}
		resp.Body.Close()
		if in := e.introspect(t, rs, fresh.AccessToken); in["active"] != false {
			t.Fatalf("access token active after its refresh token was revoked: %v", in)
		}
		if in := e.introspect(t, rs, fresh.RefreshToken); in["active"] != false {
			t.Fatalf("revoked refresh token active: %v", in)
		}
	})
}

func containsAny(v any, s string) bool {
	list, ok := v.([]any)
	if !ok {
		return false
	}
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDiscoveryGolden pins the discovery documents: exactly what is
// supported, with the issuer byte for byte.
func TestDiscoveryGolden(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, nil)
	docs := map[string]string{}
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/.well-known/oauth-protected-resource/mcp"} {
		resp, err := http.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		pretty, _ := json.MarshalIndent(v, "", "  ")
		docs[p] = strings.ReplaceAll(string(pretty), e.url, "{{ISSUER}}") + "\n"
	}
	if docs["/.well-known/oauth-authorization-server"] != docs["/.well-known/openid-configuration"] {
		t.Fatal("RFC 8414 and OIDC discovery differ")
	}
	check := func(name, got string) {
		path := "testdata/" + name
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestDiscoveryGolden -update)", err)
		}
		if string(want) != got {
			t.Fatalf("%s differs from the golden file:\n%s", name, got)
		}
	}
	check("authorization-server.golden.json", docs["/.well-known/oauth-authorization-server"])
	check("protected-resource.golden.json", docs["/.well-known/oauth-protected-resource/mcp"])
}

// Operators register their own MCP servers as resources; tokens can then
// name them, and only them, as audience.
func TestConfiguredResources(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, func(c *kavach.Config) { c.OAuth.Resources = []string{"https://tools.example.com/mcp"} })
	reg := e.registerClient(t, authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}, Scope: "mcp"})
	for resource, wantErr := range map[string]bool{
		"https://tools.example.com/mcp":  false,
		"https://TOOLS.example.com/mcp/": false, // canonical form matches
		"https://other.example.com/mcp":  true,
		e.url + "/mcp":                   false,
	} {
		cc := clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, EndpointParams: url.Values{"resource": {resource}}}
		tok, err := cc.Token(context.Background())
		if (err != nil) != wantErr {
			t.Fatalf("resource %s: err %v", resource, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "invalid_target") {
				t.Fatalf("resource %s: %v, want invalid_target", resource, err)
			}
			continue
		}
		_, c := e.verifyJWT(t, tok.AccessToken)
		if want := strings.TrimSuffix(strings.ToLower(resource[:8])+resource[8:], "/"); !strings.EqualFold(c["aud"].(string), want) {
			t.Fatalf("aud %v for resource %s", c["aud"], resource)
		}
	}
}

// Every client is an agent principal: delegated when it acts for users,
// service when it is a machine; deleting the client revokes the agent.
func TestClientsAreAgents(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		ctx := context.Background()
		resp, err := http.Post(e.url+authz.RegisterPath, "application/json",
			strings.NewReader(`{"client_name":"Desktop MCP","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
		if err != nil {
			t.Fatal(err)
		}
		var dcr struct {
			ClientID string `json:"client_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&dcr)
		resp.Body.Close()
		svc := e.registerClient(t, authz.ClientMetadata{ClientName: "Nightly job", GrantTypes: []string{authz.GrantClientCredentials}})
		for id, want := range map[string][2]string{dcr.ClientID: {storage.AgentDelegated, "Desktop MCP"}, svc.Client.GetID(): {storage.AgentService, "Nightly job"}} {
			a, err := e.k.OAuth.AgentForClient(ctx, id)
			if err != nil || a.Type != want[0] || a.Name != want[1] || a.Status != storage.AgentActive {
				t.Fatalf("agent of %s: %+v %v, want %v", id, a, err, want)
			}
		}
		a, _ := e.k.OAuth.AgentForClient(ctx, svc.Client.GetID())
		if err := e.k.OAuth.DeleteClient(ctx, svc.Client.GetID()); err != nil {
			t.Fatal(err)
		}
		after, err := e.store.Agents().Get(ctx, a.ID)
		if err != nil || after.Status != storage.AgentRevoked || after.ClientID != nil {
			t.Fatalf("agent after its client was deleted: %+v %v", after, err)
		}
	})
}

func TestAdminClientAPI(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"Root@Example.com"} })
		admin := e.client()
		admin.signUp("root@example.com")
		body := map[string]any{"client_name": "Reporter", "grant_types": []string{"client_credentials"}, "scope": "mcp"}
		// Not verified yet: not an admin.
		admin.do("POST", "/api/auth/admin/oauth2/clients", body).mustError(t, 403, "FORBIDDEN")
		link := e.waitMail("root@example.com", "Verify your email")
		admin.do("GET", strings.TrimPrefix(link, e.url), nil).must(t, 200)

		var created struct {
			ClientID     string `json:"clientId"`
			ClientSecret string `json:"clientSecret"`
		}
		admin.do("POST", "/api/auth/admin/oauth2/clients", body).must(t, 201).decode(t, &created)
		if created.ClientID == "" || !strings.HasPrefix(created.ClientSecret, "kcs_") {
			t.Fatalf("created %+v", created)
		}
		cc := clientcredentials.Config{ClientID: created.ClientID, ClientSecret: created.ClientSecret, TokenURL: e.url + authz.TokenPath, Scopes: []string{"mcp"}}
		if _, err := cc.Token(context.Background()); err != nil {
			t.Fatalf("token for an admin-created client: %v", err)
		}
		var list []map[string]any
		admin.do("GET", "/api/auth/admin/oauth2/clients", nil).must(t, 200).decode(t, &list)
		if len(list) != 1 || list[0]["clientId"] != created.ClientID || list[0]["clientSecret"] != nil {
			t.Fatalf("list %v", list)
		}
		admin.do("POST", "/api/auth/admin/oauth2/clients", map[string]any{"grant_types": []string{"implicit"}}).mustError(t, 400, "INVALID_CLIENT_METADATA")
		admin.headers["Origin"] = "https://evil.example"
		admin.do("DELETE", "/api/auth/admin/oauth2/clients/"+created.ClientID, nil).mustError(t, 403, "INVALID_ORIGIN")
		delete(admin.headers, "Origin")
		admin.do("DELETE", "/api/auth/admin/oauth2/clients/"+created.ClientID, nil).must(t, 200)
		admin.do("DELETE", "/api/auth/admin/oauth2/clients/"+created.ClientID, nil).mustError(t, 404, "CLIENT_NOT_FOUND")

		other := e.client()
		other.signUp("someone@example.com")
		other.do("GET", "/api/auth/admin/oauth2/clients", nil).mustError(t, 403, "FORBIDDEN")
		e.client().do("GET", "/api/auth/admin/oauth2/clients", nil).mustError(t, 401, "UNAUTHENTICATED")
	})
}

// EdDSA access tokens: signed with Ed25519, published in the JWKS, and
// accepted by /mcp.
func TestEdDSAAccessTokens(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, func(c *kavach.Config) { c.OAuth.AccessTokenAlg = "EdDSA" })
	reg := e.registerClient(t, authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}, Scope: "mcp"})
	cc := clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: e.url + authz.TokenPath, Scopes: []string{"mcp"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := e.verifyJWT(t, tok.AccessToken)
	if h.Algorithm != "EdDSA" {
		t.Fatalf("alg %s", h.Algorithm)
	}
	if who := e.callWhoami(t, tok.AccessToken); who["principal"] != reg.Client.GetID() {
		t.Fatalf("whoami %v", who)
	}
}

// Concurrent redemptions of one code: at most one gets tokens, nobody gets
// a 5xx, and since the code was presented more than once, whatever was
// issued is revoked in the end — whichever way the requests interleave.
func TestConcurrentCodeRedemption(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		browser := e.client()
		browser.signUp("race@example.com")
		const redirect = "http://127.0.0.1:41000/cb"
		app := e.registerClient(t, authz.ClientMetadata{RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: authz.AuthNone,
			GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}})
		conf := oauth2.Config{ClientID: app.Client.GetID(), RedirectURL: redirect, Scopes: []string{"mcp"},
			Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath, TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
		verifier := oauth2.GenerateVerifier()
		back := browser.authorizeAsBrowser(t, conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier)))
		code := back.Query().Get("code")
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
			"redirect_uri": {redirect}, "client_id": {app.Client.GetID()}}.Encode()
		const n = 8
		type result struct {
			status int
			token  string
		}
		results := make(chan result, n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				resp, err := http.Post(e.url+authz.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form))
				if err != nil {
					results <- result{status: -1}
					return
				}
				defer resp.Body.Close()
				var body struct {
					AccessToken string `json:"access_token"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&body)
				results <- result{resp.StatusCode, body.AccessToken}
			}()
		}
		close(start)
		var issued []string
		for range n {
			r := <-results
			if r.status >= 500 || r.status < 0 {
				t.Fatalf("a redemption got %d", r.status)
			}
			if r.status == 200 {
				issued = append(issued, r.token)
			}
		}
		if len(issued) > 1 {
			t.Fatalf("%d redemptions of one code got tokens", len(issued))
		}
		for _, tok := range issued {
			req, _ := http.NewRequest("POST", e.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("a token from a code redeemed %d times still works (%d)", n, resp.StatusCode)
			}
		}
	})
}

// A grant for two resources yields, when the token request names one, a
// token for that one only: Kavach's /mcp refuses a token meant for another
// MCP server (no confused deputy).
func TestTokenAudienceNarrowing(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, func(c *kavach.Config) { c.OAuth.Resources = []string{"https://tools.example.com/mcp"} })
	browser := e.client()
	browser.signUp("aud@example.com")
	const redirect = "http://127.0.0.1:41000/cb"
	app := e.registerClient(t, authz.ClientMetadata{RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: authz.AuthNone,
		GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}})
	conf := oauth2.Config{ClientID: app.Client.GetID(), RedirectURL: redirect, Scopes: []string{"mcp", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath, TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier)) +
		"&resource=" + url.QueryEscape(e.url+"/mcp") + "&resource=" + url.QueryEscape("https://tools.example.com/mcp")
	back := browser.authorizeAsBrowser(t, authURL)
	tok, err := conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("resource", "https://tools.example.com/mcp"))
	if err != nil {
		t.Fatal(err)
	}
	_, c := e.verifyJWT(t, tok.AccessToken)
	if c["aud"] != "https://tools.example.com/mcp" {
		t.Fatalf("aud %v, want only the named resource", c["aud"])
	}
	req, _ := http.NewRequest("POST", e.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("/mcp accepted a token for another resource: %d", resp.StatusCode)
	}
	// The grant still covers both: a refresh may name Kavach's /mcp.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {app.Client.GetID()}, "resource": {e.url + "/mcp"}}
	resp, err = http.Post(e.url+authz.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("refresh for the other resource: %d", resp.StatusCode)
	}
	if _, c := e.verifyJWT(t, out.AccessToken); c["aud"] != e.url+"/mcp" {
		t.Fatalf("refreshed aud %v", c["aud"])
	}
}
