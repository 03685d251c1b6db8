package kavach_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/mcp"
	"github.com/kavachos/kavach/storage"
)

// filesServer is a small mcp-go server, as an MCP server author writes
// one: two tools that report who called them.
func filesServer(seen *atomic.Pointer[mcp.TokenInfo]) *server.StreamableHTTPServer {
	s := server.NewMCPServer("files", "1.0")
	h := func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		info, _ := mcp.TokenFromContext(ctx)
		seen.Store(info)
		return mcpgo.NewToolResultText(req.Params.Name + " done"), nil
	}
	s.AddTool(mcpgo.NewTool("read_file"), h)
	s.AddTool(mcpgo.NewTool("delete_file"), h)
	return server.NewStreamableHTTPServer(s, server.WithStateLess(true))
}

// The resource-server kit in front of an mcp-go server, with real Kavach
// tokens: an agent's client_credentials token for the server's URL calls
// its tools, the tools see the principal and its trust level, a tool with
// its own scope needs it (403 insufficient_scope otherwise), a token for
// another resource is refused. With the JWKS verifier a revoked token
// works until it expires; with the introspection verifier it stops at
// once, and so do the tokens of a suspended agent.
func TestProtectWithKavachTokens(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		jwksSrv := httptest.NewUnstartedServer(nil)
		introSrv := httptest.NewUnstartedServer(nil)
		jwksURL := "http://" + jwksSrv.Listener.Addr().String() + "/mcp"
		introURL := "http://" + introSrv.Listener.Addr().String() + "/mcp"
		e := newEnv(t, open, func(c *kavach.Config) {
			c.OAuth.Resources = []string{jwksURL, introURL}
			c.AdminEmails = []string{"platform@example.com"}
		})
		admin := e.newAdmin(t, "platform@example.com")
		var rs struct {
			ClientID     string `json:"clientId"`
			ClientSecret string `json:"clientSecret"`
		}
		admin.do("POST", "/api/auth/admin/oauth2/clients", map[string]any{"client_name": "files server",
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_basic"}).must(t, 201).decode(t, &rs)

		var seen atomic.Pointer[mcp.TokenInfo]
		protection := func(resource string, v mcp.Verifier) mcp.Protection {
			return mcp.Protection{ResourceConfig: mcp.ResourceConfig{Resource: resource, AuthorizationServers: []string{e.url},
				ScopesSupported: []string{"mcp", "email"}, RequiredScopes: []string{"mcp"}, ResourceName: "Files", Verifier: v},
				ToolScopes: map[string][]string{"delete_file": {"email"}}}
		}
		jv, err := mcp.NewJWKSVerifier(mcp.JWKSConfig{Issuer: e.url})
		if err != nil {
			t.Fatal(err)
		}
		h, err := mcp.Protect(filesServer(&seen), protection(jwksURL, jv))
		if err != nil {
			t.Fatal(err)
		}
		jwksSrv.Config.Handler = h
		jwksSrv.Start()
		t.Cleanup(jwksSrv.Close)
		iv, err := mcp.NewIntrospectionVerifier(mcp.IntrospectionConfig{Issuer: e.url, ClientID: rs.ClientID, ClientSecret: rs.ClientSecret, CacheTTL: -1})
		if err != nil {
			t.Fatal(err)
		}
		if h, err = mcp.Protect(filesServer(&seen), protection(introURL, iv)); err != nil {
			t.Fatal(err)
		}
		introSrv.Config.Handler = h
		introSrv.Start()
		t.Cleanup(introSrv.Close)

		owner := e.client()
		owner.signUp("owner@example.com")
		var ag agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "bot",
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"*"}}}}).must(t, 201).decode(t, &ag)
		var ac agentClient
		owner.do("POST", "/api/auth/agents/"+ag.Agent.ID+"/oauth-client", map[string]any{"scope": "mcp email"}).must(t, 201).decode(t, &ac)
		token := func(resource, scope string) string {
			t.Helper()
			status, out := e.tokenRequest(t, ac, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}, "resource": {resource}})
			if status != 200 {
				t.Fatalf("token for %s: %d %v", resource, status, out)
			}
			return out["access_token"].(string)
		}
		ctx := context.Background()
		call := func(resource, tok, tool string) error {
			c, err := mcpclient.NewStreamableHttpClient(resource, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Start(ctx); err != nil {
				return err
			}
			if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{}); err != nil {
				return err
			}
			var req mcpgo.CallToolRequest
			req.Params.Name = tool
			_, err = c.CallTool(ctx, req)
			return err
		}

		for _, resource := range []string{jwksURL, introURL} {
			reader := token(resource, "mcp")
			seen.Store(nil)
			if err := call(resource, reader, "read_file"); err != nil {
				t.Fatalf("%s read_file: %v", resource, err)
			}
			info := seen.Load()
			if info == nil || info.ClientID != ac.ClientID || info.Subject != ac.ClientID || !strings.Contains(strings.Join(info.Audience, " "), resource) {
				t.Fatalf("%s: the tool saw %+v", resource, info)
			}
			if resource == jwksURL && info.TrustLevel != "limited" {
				t.Fatalf("trust level %q", info.TrustLevel)
			}
			if err := call(resource, reader, "delete_file"); err == nil {
				t.Fatalf("%s: delete_file without its scope", resource)
			}
			if err := call(resource, token(resource, "mcp email"), "delete_file"); err != nil {
				t.Fatalf("%s delete_file with its scope: %v", resource, err)
			}
		}
		// A token for Kavach's own /mcp, or for the other server, is not
		// for this one.
		if err := call(jwksURL, token(e.url+"/mcp", "mcp"), "read_file"); err == nil {
			t.Fatal("a token for another resource went through")
		}
		if err := call(jwksURL, token(introURL, "mcp"), "read_file"); err == nil {
			t.Fatal("a token for the other server went through")
		}

		// Revocation: the JWKS verifier cannot know; introspection does.
		jt, it := token(jwksURL, "mcp"), token(introURL, "mcp")
		for _, tok := range []string{jt, it} {
			if a := e.postForm(t, authz.RevokePath, url.Values{"token": {tok}}, ac.ClientID, ac.ClientSecret); a.Status != 200 {
				t.Fatalf("revoke: %+v", a)
			}
		}
		if err := call(jwksURL, jt, "read_file"); err != nil {
			t.Fatalf("JWKS mode after revocation (documented to pass until expiry): %v", err)
		}
		if err := call(introURL, it, "read_file"); err == nil {
			t.Fatal("introspection mode accepted a revoked token")
		}
		// A suspended agent's tokens stop at once under introspection.
		live := token(introURL, "mcp")
		if err := call(introURL, live, "read_file"); err != nil {
			t.Fatal(err)
		}
		owner.do("PATCH", "/api/auth/agents/"+ag.Agent.ID, map[string]any{"status": "suspended"}).must(t, 200)
		if err := call(introURL, live, "read_file"); err == nil {
			t.Fatal("introspection mode accepted a suspended agent's token")
		}
	})
}
