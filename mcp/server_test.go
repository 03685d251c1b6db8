package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// testServer is Kavach's MCP endpoint on a real listener, with its metadata
// and a stand-in for the authorization server's RFC 8414 metadata (authz
// serves the real one), so that the mcp-go client can discover everything.
type testServer struct {
	url      string // origin, also the issuer
	cfg      ResourceConfig
	verifier *fakeVerifier
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resource := srv.URL + "/mcp"
	v := &fakeVerifier{tokens: map[string]*TokenInfo{
		"good":      tokenFor([]string{resource}, "mcp:tools", "profile"),
		"other-aud": tokenFor([]string{"https://elsewhere.example.com/mcp"}, "mcp:tools", "profile"),
		"one-scope": tokenFor([]string{resource}, "mcp:tools"),
	}}
	cfg := ResourceConfig{
		Resource:             resource,
		AuthorizationServers: []string{srv.URL},
		ScopesSupported:      []string{"mcp:tools", "profile", "offline_access"},
		RequiredScopes:       []string{"mcp:tools", "profile"},
		ResourceName:         "Kavach MCP",
		Verifier:             v,
	}
	prmPath, err := MetadataPath(resource)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/mcp", Handler(cfg))
	mux.Handle(prmPath, MetadataHandler(cfg))
	asMetadata, _ := json.Marshal(map[string]any{
		"issuer":                                srv.URL,
		"authorization_endpoint":                srv.URL + "/api/auth/oauth2/authorize",
		"token_endpoint":                        srv.URL + "/api/auth/oauth2/token",
		"registration_endpoint":                 srv.URL + "/api/auth/oauth2/register",
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_basic"},
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(asMetadata)
	})
	return &testServer{url: srv.URL, cfg: cfg, verifier: v}
}

func (ts *testServer) prmURL() string {
	return ts.url + "/.well-known/oauth-protected-resource/mcp"
}

func startClient(t *testing.T, c *client.Client) {
	t.Helper()
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
}

func initRequest(protocolVersion string) mcpgo.InitializeRequest {
	var req mcpgo.InitializeRequest
	req.Params.ProtocolVersion = protocolVersion
	req.Params.ClientInfo = mcpgo.Implementation{Name: "kavach-mcp-test", Version: "1"}
	return req
}

func callWhoami(t *testing.T, c *client.Client) WhoAmI {
	t.Helper()
	var call mcpgo.CallToolRequest
	call.Params.Name = "whoami"
	res, err := c.CallTool(t.Context(), call)
	if err != nil {
		t.Fatalf("tools/call whoami: %v", err)
	}
	if res.IsError {
		t.Fatalf("whoami returned a tool error: %+v", res.Content)
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var got WhoAmI
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("structured content %s: %v", raw, err)
	}
	// Clients without structured content support read the text block.
	if len(res.Content) != 1 {
		t.Fatalf("content = %+v, want one text block", res.Content)
	}
	text, ok := res.Content[0].(mcpgo.TextContent)
	if !ok {
		t.Fatalf("content[0] = %T, want text", res.Content[0])
	}
	var fromText WhoAmI
	if err := json.Unmarshal([]byte(text.Text), &fromText); err != nil || !reflect.DeepEqual(fromText, got) {
		t.Errorf("text content %q does not match structured content (%v)", text.Text, err)
	}
	return got
}

// The mcp-go client, holding a valid token, completes initialize, lists the
// tools and gets its own claims back from whoami, in every protocol era.
func TestEndToEndWhoami(t *testing.T) {
	ts := newTestServer(t)
	want := WhoAmI{
		Principal: "usr_alice",
		ClientID:  "https://client.example.com/metadata.json",
		Scopes:    []string{"mcp:tools", "profile"},
		Audience:  []string{ts.cfg.Resource},
		ExpiresAt: "2026-09-01T11:00:00Z",
		IssuedAt:  "2026-09-01T10:00:00Z",
		AuthTime:  "2026-09-01T09:59:00Z",
	}
	for _, version := range []string{"", mcpgo.ProtocolVersion20260728, "2025-11-25", "2025-06-18", "2025-03-26"} {
		name := version
		if name == "" {
			name = "negotiated"
		}
		t.Run(name, func(t *testing.T) {
			c, err := client.NewStreamableHttpClient(ts.cfg.Resource,
				transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer good"}))
			if err != nil {
				t.Fatal(err)
			}
			startClient(t, c)

			res, err := c.Initialize(t.Context(), initRequest(version))
			if err != nil {
				t.Fatalf("initialize: %v", err)
			}
			if version != "" && res.ProtocolVersion != version {
				t.Errorf("protocol version = %q, want %q", res.ProtocolVersion, version)
			}
			if res.ServerInfo.Name != ServerName {
				t.Errorf("server name = %q, want %q", res.ServerInfo.Name, ServerName)
			}

			tools, err := c.ListTools(t.Context(), mcpgo.ListToolsRequest{})
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			i := slices.IndexFunc(tools.Tools, func(tool mcpgo.Tool) bool { return tool.Name == "whoami" })
			if i < 0 {
				t.Fatalf("tools/list = %+v, want whoami", tools.Tools)
			}
			whoamiTool := tools.Tools[i]
			if whoamiTool.Annotations.ReadOnlyHint == nil || !*whoamiTool.Annotations.ReadOnlyHint {
				t.Error("whoami is not marked read-only")
			}
			if _, ok := whoamiTool.OutputSchema.Properties["expires_at"]; !ok {
				t.Errorf("whoami output schema lacks expires_at: %+v", whoamiTool.OutputSchema)
			}

			if got := callWhoami(t, c); !reflect.DeepEqual(got, want) {
				t.Errorf("whoami = %+v\nwant %+v", got, want)
			}
		})
	}
}

// Without a token the client learns that authorization is required and
// where the resource metadata is.
func TestEndToEndWithoutToken(t *testing.T) {
	ts := newTestServer(t)
	c, err := client.NewStreamableHttpClient(ts.cfg.Resource)
	if err != nil {
		t.Fatal(err)
	}
	startClient(t, c)
	_, err = c.Initialize(t.Context(), initRequest(""))
	if !client.IsAuthorizationRequiredError(err) {
		t.Fatalf("initialize error = %v, want an authorization-required error", err)
	}
	if got := client.GetResourceMetadataURL(err); got != ts.prmURL() {
		t.Errorf("resource metadata URL = %q, want %q", got, ts.prmURL())
	}
	if ts.verifier.calls.Load() != 0 {
		t.Error("verifier called for a request without a token")
	}
}

// The OAuth-enabled client with a token the server refuses gets an
// OAuthAuthorizationRequiredError, and from it discovers the authorization
// server through our metadata: mcp-go checks that the metadata URL shares the
// resource's origin, that the metadata's resource equals the URL it was given
// and that the issuer matches, then builds an authorization URL that carries
// our resource as the RFC 8707 target.
func TestEndToEndOAuthClientDiscovery(t *testing.T) {
	for _, stale := range []string{"expired-or-unknown", "other-aud"} {
		t.Run(stale, func(t *testing.T) {
			ts := newTestServer(t)
			store := client.NewMemoryTokenStore()
			if err := store.SaveToken(t.Context(), &client.Token{AccessToken: stale, TokenType: "bearer"}); err != nil {
				t.Fatal(err)
			}
			c, err := client.NewOAuthStreamableHttpClient(ts.cfg.Resource, client.OAuthConfig{
				ClientID:    "test-client",
				RedirectURI: "http://127.0.0.1:9999/callback",
				Scopes:      []string{"mcp:tools", "profile"},
				TokenStore:  store,
				PKCEEnabled: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			startClient(t, c)

			_, err = c.Initialize(t.Context(), initRequest(""))
			if !client.IsOAuthAuthorizationRequiredError(err) {
				t.Fatalf("initialize error = %v, want an OAuth authorization-required error", err)
			}
			if got := client.GetResourceMetadataURL(err); got != ts.prmURL() {
				t.Errorf("resource metadata URL = %q, want %q", got, ts.prmURL())
			}
			handler := client.GetOAuthHandler(err)
			md, err := handler.GetServerMetadata(t.Context())
			if err != nil {
				t.Fatalf("discovery through our metadata failed: %v", err)
			}
			if md.Issuer != ts.url || md.TokenEndpoint != ts.url+"/api/auth/oauth2/token" {
				t.Errorf("discovered %+v", md)
			}
			authURL, err := handler.GetAuthorizationURL(t.Context(), "state-1", client.GenerateCodeChallenge("verifier"))
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(authURL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("resource") != ts.cfg.Resource || q.Get("scope") != "mcp:tools profile" || q.Get("code_challenge_method") != "S256" {
				t.Errorf("authorization URL %s lacks resource, scope or PKCE", authURL)
			}
		})
	}
}

// The OAuth-enabled client with a valid token in its store works like the
// header-configured one.
func TestEndToEndOAuthClientWithToken(t *testing.T) {
	ts := newTestServer(t)
	store := client.NewMemoryTokenStore()
	token := &client.Token{AccessToken: "good", TokenType: "Bearer", ExpiresAt: time.Now().Add(time.Hour)}
	if err := store.SaveToken(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	c, err := client.NewOAuthStreamableHttpClient(ts.cfg.Resource, client.OAuthConfig{
		ClientID:    "test-client",
		RedirectURI: "http://127.0.0.1:9999/callback",
		TokenStore:  store,
		PKCEEnabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	startClient(t, c)
	if _, err := c.Initialize(t.Context(), initRequest("")); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if got := callWhoami(t, c); got.Principal != "usr_alice" {
		t.Errorf("whoami principal = %q", got.Principal)
	}
}

// A token without the required scopes is refused with 403. mcp-go (v1.2.1)
// has no step-up: it does not treat 403 as an authorization error, and on
// initialize it takes any 4xx other than 401 for a legacy SSE server.
func TestEndToEndInsufficientScope(t *testing.T) {
	ts := newTestServer(t)

	req, _ := http.NewRequest(http.MethodPost, ts.cfg.Resource, nil)
	req.Header.Set("Authorization", "Bearer one-scope")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantChallenge := `Bearer error="insufficient_scope", error_description="The access token lacks a scope this resource requires.", ` +
		`resource_metadata="` + ts.prmURL() + `", scope="mcp:tools profile"`
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("WWW-Authenticate") != wantChallenge {
		t.Errorf("got %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	c, err := client.NewStreamableHttpClient(ts.cfg.Resource,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer one-scope"}))
	if err != nil {
		t.Fatal(err)
	}
	startClient(t, c)
	_, err = c.Initialize(t.Context(), initRequest(""))
	if err == nil || client.IsAuthorizationRequiredError(err) {
		t.Fatalf("initialize error = %v, want a non-authorization error", err)
	}
	t.Logf("mcp-go reports a 403 on initialize as: %v", err)
}

// Served without RequireBearer, whoami reports a tool error rather than
// inventing a principal.
func TestWhoamiWithoutToken(t *testing.T) {
	res, err := whoami(context.Background(), mcpgo.CallToolRequest{})
	if err != nil || res == nil || !res.IsError {
		t.Fatalf("whoami without token = %+v, %v; want a tool error", res, err)
	}
}

func TestWhoAmIFromMinimalToken(t *testing.T) {
	got := whoAmIFrom(&TokenInfo{Subject: "agt_1", ExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))})
	want := WhoAmI{Principal: "agt_1", Scopes: []string{}, Audience: []string{}, ExpiresAt: "2026-01-02T02:04:05Z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("whoAmIFrom = %+v, want %+v", got, want)
	}
}
