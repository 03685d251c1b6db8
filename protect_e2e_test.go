package kavach_test

import (
	"context"
	"encoding/base64"
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

// The kit asking Kavach about each call (KavachDecisions): a call the
// agent's grants allow goes through, another is refused with a tool error
// before the server sees it, and the decision's audit record has the
// client's address. The decision API for resource servers refuses
// callers that are not operator-registered clients, bad secrets and bad
// tokens.
func TestProtectWithKavachDecisions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		srv := httptest.NewUnstartedServer(nil)
		resource := "http://" + srv.Listener.Addr().String() + "/mcp"
		e := newEnv(t, open, func(c *kavach.Config) {
			c.OAuth.Resources = []string{resource}
			c.AdminEmails = []string{"platform@example.com"}
		})
		admin := e.newAdmin(t, "platform@example.com")
		var rs agentClient
		admin.do("POST", "/api/auth/admin/oauth2/clients", map[string]any{"client_name": "files server",
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_basic"}).must(t, 201).decode(t, &rs)
		var seen atomic.Pointer[mcp.TokenInfo]
		v, err := mcp.NewJWKSVerifier(mcp.JWKSConfig{Issuer: e.url})
		if err != nil {
			t.Fatal(err)
		}
		h, err := mcp.Protect(filesServer(&seen), mcp.Protection{
			ResourceConfig: mcp.ResourceConfig{Resource: resource, AuthorizationServers: []string{e.url},
				ScopesSupported: []string{"mcp"}, RequiredScopes: []string{"mcp"}, Verifier: v},
			Calls: mcp.KavachDecisions{Issuer: e.url, ServerName: "files", ClientID: rs.ClientID, ClientSecret: rs.ClientSecret},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = h
		srv.Start()
		t.Cleanup(srv.Close)

		owner := e.client()
		owner.signUp("owner@example.com")
		var ag agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "bot",
			"permissions": []map[string]any{{"resource": "mcp:files:read_file", "actions": []string{"call"}}}}).must(t, 201).decode(t, &ag)
		ac := oauthClientFor(t, owner, ag.Agent.ID)
		status, out := e.tokenRequest(t, ac, url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp"}, "resource": {resource}})
		if status != 200 {
			t.Fatalf("token: %d %v", status, out)
		}
		tok := out["access_token"].(string)
		ctx := context.Background()
		c, err := mcpclient.NewStreamableHttpClient(resource, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{}); err != nil {
			t.Fatal(err)
		}
		call := func(tool string) *mcpgo.CallToolResult {
			var req mcpgo.CallToolRequest
			req.Params.Name, req.Params.Arguments = tool, map[string]any{"path": "/tmp/x"}
			res, err := c.CallTool(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", tool, err)
			}
			return res
		}
		if res := call("read_file"); res.IsError {
			t.Fatalf("read_file: %+v", res)
		}
		seen.Store(nil)
		res := call("delete_file")
		if !res.IsError || !strings.Contains(res.Content[0].(mcpgo.TextContent).Text, "PERMISSION_DENIED") || seen.Load() != nil {
			t.Fatalf("delete_file: %+v (the server saw %v)", res, seen.Load())
		}
		recs, _, err := e.store.Audit().Query(ctx, storage.AuditFilter{AgentID: ag.Agent.ID, Event: "authorize"})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[1].Resource != "mcp:files:read_file" || recs[1].IP != "127.0.0.1" || recs[1].ArgsDigest == "" || recs[0].Reason != "PERMISSION_DENIED" {
			t.Fatalf("audit records %+v", recs)
		}

		// The decision API for resource servers refuses the wrong callers.
		ask := func(user, pass string, body map[string]any) *response {
			cl := e.client()
			if user != "" {
				cl.headers["Authorization"] = "Basic " + basicAuth(user, pass)
			}
			return cl.do("POST", "/api/auth/authorize", body)
		}
		q := map[string]any{"token": tok, "action": "call", "resource": "mcp:files:read_file"}
		ask("", "", q).mustError(t, 401, "UNAUTHENTICATED")
		ask(rs.ClientID, "wrong", q).mustError(t, 401, "UNAUTHENTICATED")
		ask(ac.ClientID, ac.ClientSecret, q).mustError(t, 401, "UNAUTHENTICATED") // an agent's client is no resource server
		ask(rs.ClientID, rs.ClientSecret, map[string]any{"token": "nope", "action": "call", "resource": "mcp:files:read_file"}).mustError(t, 400, "INVALID_TOKEN")
		ask(rs.ClientID, rs.ClientSecret, map[string]any{"token": tok, "action": "call", "resource": "mcp:files:read_file", "ip": "not-an-ip"}).mustError(t, 400, "INVALID_REQUEST")
		var d decision
		ask(rs.ClientID, rs.ClientSecret, q).must(t, 200).decode(t, &d)
		if !d.Allowed {
			t.Fatalf("the resource server's own question: %+v", d)
		}
		e.client().do("POST", "/api/auth/authorize", map[string]any{"action": "read", "resource": "mcp:x", "ip": "10.0.0.1"}).mustError(t, 400, "INVALID_REQUEST")

		// Introspection of another client's token is for operator clients
		// too: another user's agent client learns nothing.
		intruder := e.client()
		intruder.signUp("intruder@example.com")
		var other agentCreated
		intruder.do("POST", "/api/auth/agents", map[string]any{"name": "snoop",
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &other)
		oc := oauthClientFor(t, intruder, other.Agent.ID)
		if a := e.postForm(t, authz.IntrospectPath, url.Values{"token": {tok}}, oc.ClientID, oc.ClientSecret); a.Status != 200 || a.Body["active"] != false {
			t.Fatalf("an agent's client introspected another's token: %+v", a)
		}
		if a := e.postForm(t, authz.IntrospectPath, url.Values{"token": {tok}}, rs.ClientID, rs.ClientSecret); a.Status != 200 || a.Body["active"] != true {
			t.Fatalf("the operator's resource server: %+v", a)
		}
	})
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user) + ":" + url.QueryEscape(pass)))
}
