package main

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/users"
)

// The example end to end: a real Kavach (SQLite), an agent with an OAuth
// client, a client_credentials token for the example's URL, and the
// mcp-go client calling its tools; add_note needs its extra scope.
func TestExampleWithKavach(t *testing.T) {
	ctx := context.Background()
	kavachSrv := httptest.NewUnstartedServer(nil)
	notesSrv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + kavachSrv.Listener.Addr().String()
	resource := "http://" + notesSrv.Listener.Addr().String() + "/mcp"
	k, err := kavach.New(ctx, kavach.Config{BaseURL: issuer, Secret: strings.Repeat("s", 40),
		DatabaseURL: "sqlite:" + t.TempDir() + "/kavach.db", OAuth: kavach.OAuthConfig{Resources: []string{resource}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	kavachSrv.Config.Handler = k.Handler()
	kavachSrv.Start()
	t.Cleanup(kavachSrv.Close)

	h, err := newHandler(config{issuer: issuer, resource: resource})
	if err != nil {
		t.Fatal(err)
	}
	notesSrv.Config.Handler = h
	notesSrv.Start()
	t.Cleanup(notesSrv.Close)

	u, err := k.Users.CreateUser(ctx, users.CreateUserInput{Email: "dev@example.com", EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	a, _, _, err := k.Agents.Create(ctx, agents.CreateInput{OwnerUserID: u.ID, Name: "note taker",
		Permissions: []agents.Grant{{Resource: "mcp:notes:*", Actions: []string{"*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := k.OAuth.RegisterAgentClient(ctx, a.ID, a.Name, authz.ClientMetadata{Scope: "mcp email"})
	if err != nil {
		t.Fatal(err)
	}
	connect := func(scopes ...string) *mcpclient.Client {
		tok, err := (&clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: issuer + authz.TokenPath,
			Scopes: scopes, EndpointParams: url.Values{"resource": {resource}}}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := mcpclient.NewStreamableHttpClient(resource, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
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
		return c
	}
	call := func(c *mcpclient.Client, tool string, args map[string]any) (string, error) {
		var req mcpgo.CallToolRequest
		req.Params.Name, req.Params.Arguments = tool, args
		res, err := c.CallTool(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Content[0].(mcpgo.TextContent).Text, nil
	}
	reader := connect("mcp")
	if out, err := call(reader, "list_notes", nil); err != nil || out != "no notes yet" {
		t.Fatalf("list_notes: %q %v", out, err)
	}
	if _, err := call(reader, "add_note", map[string]any{"text": "hello"}); err == nil {
		t.Fatal("add_note without its scope went through")
	}
	writer := connect("mcp", "email")
	if out, err := call(writer, "add_note", map[string]any{"text": "hello"}); err != nil || out != "added" {
		t.Fatalf("add_note: %q %v", out, err)
	}
	out, err := call(reader, "list_notes", nil)
	if err != nil || !strings.Contains(out, "hello — "+reg.Client.GetID()+" (trust: limited)") {
		t.Fatalf("list_notes after add: %q %v", out, err)
	}
}
