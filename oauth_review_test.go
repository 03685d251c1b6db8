package kavach_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
)

// userGrant signs a user up and runs the code flow for a public client,
// returning its tokens.
func (e *env) userGrant(t *testing.T, browser *client, app authz.Registration, redirect string) *oauth2.Token {
	t.Helper()
	conf := oauth2.Config{ClientID: app.Client.GetID(), RedirectURL: redirect, Scopes: []string{"mcp", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath, TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	back := browser.authorizeAsBrowser(t, conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier)))
	tok, err := conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) mcpStatus(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Deleting a user or resetting the password ends the OAuth grants too.
func TestUserDeletionAndResetEndOAuthGrants(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		const redirect = "http://127.0.0.1:41000/cb"
		app := e.registerClient(t, authz.ClientMetadata{RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: authz.AuthNone,
			GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}})

		b1 := e.client()
		u1 := b1.signUp("gone@example.com")
		tok := e.userGrant(t, b1, app, redirect)
		if e.mcpStatus(t, tok.AccessToken) != 200 {
			t.Fatal("fresh token refused")
		}
		if err := e.k.Users.DeleteUser(context.Background(), u1.User.ID); err != nil {
			t.Fatal(err)
		}
		if s := e.mcpStatus(t, tok.AccessToken); s != 401 {
			t.Fatalf("deleted user's token: %d", s)
		}
		if _, err := (&oauth2.Config{ClientID: app.Client.GetID(), Endpoint: oauth2.Endpoint{TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}).
			TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("deleted user's refresh token still works")
		}

		b2 := e.client()
		b2.signUp("reset@example.com")
		tok2 := e.userGrant(t, b2, app, redirect)
		b2.do("POST", "/api/auth/password/forgot", map[string]string{"email": "reset@example.com"}).must(t, 200)
		link := e.waitMail("reset@example.com", "Reset your password")
		b2.do("POST", "/api/auth/password/reset", map[string]string{"token": tokenOf(t, link), "newPassword": "fresh-harbor-lantern-77"}).must(t, 200)
		if s := e.mcpStatus(t, tok2.AccessToken); s != 401 {
			t.Fatalf("token after password reset: %d", s)
		}
	})
}

// Adding a redirect URI through RFC 7592 drops earlier consent.
func TestRegistrationUpdateDropsConsent(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, nil)
	browser := e.client()
	browser.signUp("dcr@example.com")
	resp, err := http.Post(e.url+authz.RegisterPath, "application/json", strings.NewReader(
		`{"client_name":"App","redirect_uris":["http://127.0.0.1:41000/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
		Token    string `json:"registration_access_token"`
		URI      string `json:"registration_client_uri"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	conf := oauth2.Config{ClientID: reg.ClientID, RedirectURL: "http://127.0.0.1:41000/cb", Scopes: []string{"mcp"},
		Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath}}
	browser.authorizeAsBrowser(t, conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))

	req, _ := http.NewRequest("PUT", reg.URI, strings.NewReader(
		`{"client_name":"App","redirect_uris":["http://127.0.0.1:41000/cb","https://evil.example.net/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"]}`))
	req.Header.Set("Authorization", "Bearer "+reg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("update: %v %v", resp, err)
	}
	resp.Body.Close()
	conf.RedirectURL = "https://evil.example.net/cb"
	u := conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	r2, _ := http.NewRequest("GET", u, nil)
	resp, err = browser.http.Do(r2)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "/oauth/consent") {
		t.Fatalf("after adding a redirect URI the user was not asked again: %d %s", resp.StatusCode, loc)
	}
}

// Open registration cannot create machine clients; introspection of other
// clients' tokens is for operator-registered clients only; a jwks_uri that
// cannot be fetched is the client's failure (401), not ours.
func TestOpenRegistrationLimits(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, nil)
	resp, err := http.Post(e.url+authz.RegisterPath, "application/json", strings.NewReader(`{"grant_types":["client_credentials"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 400 || body["error"] != "invalid_client_metadata" {
		t.Fatalf("open registration of a machine client: %d %v", resp.StatusCode, body)
	}

	svc := e.registerClient(t, authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}, Scope: "mcp"})
	tok, err := (&clientcredentials.Config{ClientID: svc.Client.GetID(), ClientSecret: svc.Secret, TokenURL: e.url + authz.TokenPath, Scopes: []string{"mcp"}}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs := e.registerClient(t, authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}})
	if in := e.introspect(t, rs, tok.AccessToken); in["active"] != true {
		t.Fatalf("an operator-registered resource server cannot introspect: %v", in)
	}
	if in := e.introspect(t, svc, tok.AccessToken); in["active"] != true {
		t.Fatalf("a client cannot introspect its own token: %v", in)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := e.registerClient(t, authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}, TokenEndpointAuthMethod: authz.AuthPrivateKeyJWT,
		JWKSURI: "https://127.0.0.1:1/jwks.json", TokenEndpointAuthSigningAlg: "ES256"})
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	assertion, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: bad.Client.GetID(), Subject: bad.Client.GetID(), ID: "jti-1",
		Audience: jwt.Audience{e.url + authz.TokenPath}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute)), IssuedAt: jwt.NewNumericDate(time.Now())}).Serialize()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {bad.Client.GetID()},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	resp, err = http.Post(e.url+authz.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unfetchable jwks_uri: %d, want 401 invalid_client", resp.StatusCode)
	}
}
