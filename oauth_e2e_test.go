package kavach_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kavachos/kavach/storage"
)

// authorizeAsBrowser drives the authorize endpoint the way a signed-in
// browser does: authorize → consent page → approve → authorize → redirect
// to the client with a code. It returns the final redirect URL.
func (c *client) authorizeAsBrowser(t *testing.T, authURL string) *url.URL {
	t.Helper()
	get := func(u string) *http.Response {
		req, _ := http.NewRequest("GET", u, nil)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get(authURL)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: status %d, want 303 to consent", resp.StatusCode)
	}
	consent, _ := url.Parse(resp.Header.Get("Location"))
	if consent.Path != "/oauth/consent" {
		t.Fatalf("authorize sent the browser to %s", consent)
	}
	if page := get(consent.String()); page.StatusCode != 200 {
		t.Fatalf("consent page: %d", page.StatusCode)
	}
	form := url.Values{"return_to": {consent.Query().Get("return_to")}, "decision": {"approve"}}
	req, _ := http.NewRequest("POST", c.e.url+"/api/auth/oauth2/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.e.url)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent approve: %d", resp.StatusCode)
	}
	resp = get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize after consent: %d", resp.StatusCode)
	}
	back, _ := url.Parse(resp.Header.Get("Location"))
	return back
}

// TestMCPGoClientFullFlow is the MCP authorization flow end to end with
// mcp-go's own OAuth client: 401 → protected resource metadata → AS
// metadata → dynamic registration → authorize (sign-in cookie + consent) →
// token → tools/list → whoami.
func TestMCPGoClientFullFlow(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		browser := e.client()
		user := browser.signUp("mia@example.com")
		ctx := context.Background()

		const redirect = "http://127.0.0.1:53682/callback"
		store := transport.NewMemoryTokenStore()
		c, err := mcpclient.NewOAuthStreamableHttpClient(e.url+"/mcp", transport.OAuthConfig{
			RedirectURI: redirect, Scopes: []string{"mcp", "offline_access"},
			TokenStore: store, PKCEEnabled: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = c.Initialize(ctx, mcp.InitializeRequest{})
		if !mcpclient.IsOAuthAuthorizationRequiredError(err) {
			t.Fatalf("initialize without a token: %v, want an OAuth authorization required error", err)
		}
		h := mcpclient.GetOAuthHandler(err)
		if err := h.RegisterClient(ctx, "mcp-go test client"); err != nil {
			t.Fatalf("register: %v", err)
		}
		verifier, _ := transport.GenerateCodeVerifier()
		state, _ := transport.GenerateState()
		authURL, err := h.GetAuthorizationURL(ctx, state, transport.GenerateCodeChallenge(verifier))
		if err != nil {
			t.Fatal(err)
		}
		back := browser.authorizeAsBrowser(t, authURL)
		if !strings.HasPrefix(back.String(), redirect) || back.Query().Get("state") != state || back.Query().Get("iss") != e.url {
			t.Fatalf("redirect back %s", back)
		}
		if err := h.ProcessAuthorizationResponse(ctx, back.Query().Get("code"), state, verifier); err != nil {
			t.Fatalf("token exchange: %v", err)
		}
		if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
			t.Fatalf("initialize with a token: %v", err)
		}
		tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil || !slices.ContainsFunc(tools.Tools, func(t mcp.Tool) bool { return t.Name == "whoami" }) ||
			!slices.ContainsFunc(tools.Tools, func(t mcp.Tool) bool { return t.Name == "authorize" }) {
			t.Fatalf("tools/list: %+v %v", tools, err)
		}
		var call mcp.CallToolRequest
		call.Params.Name = "whoami"
		res, err := c.CallTool(ctx, call)
		if err != nil || res.IsError {
			t.Fatalf("whoami: %+v %v", res, err)
		}
		var who map[string]any
		text := res.Content[0].(mcp.TextContent).Text
		if err := json.Unmarshal([]byte(text), &who); err != nil {
			t.Fatalf("whoami text %q: %v", text, err)
		}
		if who["subject"] != user.User.ID && who["principal"] != user.User.ID {
			t.Fatalf("whoami says %v, want subject %s", who, user.User.ID)
		}

		// Refresh through mcp-go: the pair rotates and the client keeps
		// working with the new access token.
		first, err := store.GetToken(ctx)
		if err != nil || first.RefreshToken == "" {
			t.Fatalf("stored token %+v %v: offline_access should yield a refresh token", first, err)
		}
		second, err := h.RefreshToken(ctx, first.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
			t.Fatalf("tools/list after refresh: %v", err)
		}
		// Reusing the first refresh token is theft as far as the server
		// can tell: it fails and revokes the whole grant, so the client's
		// current tokens stop working too.
		if _, err := h.RefreshToken(ctx, first.RefreshToken); err == nil {
			t.Fatal("a used refresh token was accepted again")
		}
		if _, err := h.RefreshToken(ctx, second.RefreshToken); err == nil {
			t.Fatal("the grant survived refresh token reuse")
		}
		req, _ := http.NewRequest("POST", e.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Authorization", "Bearer "+second.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("access token of a revoked grant: %d, want 401", resp.StatusCode)
		}
	})
}
