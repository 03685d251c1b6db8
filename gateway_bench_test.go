package kavach_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/users"
)

// BenchmarkGatewayLatency compares a tools/call made to an mcp-go server
// directly with the same call through Kavach's gateway (token check,
// decision with its durable audit record on SQLite, proxying), one caller
// at a time on loopback, and reports the added p50 and p99.
func BenchmarkGatewayLatency(b *testing.B) {
	ctx := context.Background()
	s := server.NewMCPServer("files", "1.0")
	s.AddTool(mcpgo.NewTool("read_file"), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText("ok"), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithStateLess(true)))
	defer up.Close()
	kSrv := httptest.NewUnstartedServer(nil)
	gwSrv := httptest.NewUnstartedServer(nil)
	base := "http://" + kSrv.Listener.Addr().String()
	gwURL := "http://" + gwSrv.Listener.Addr().String() + "/mcp"
	store := storagetestOpenSQLite(b)
	k, err := kavach.NewWithStore(kavach.Config{BaseURL: base, Secret: testSecret, OAuth: kavach.OAuthConfig{Resources: []string{gwURL}},
		Logger: discardLogger()}, store)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	kSrv.Config.Handler = k.Handler()
	kSrv.Start()
	defer kSrv.Close()
	h, err := k.Gateway(kavach.GatewayOptions{Upstream: up.URL, PublicURL: gwURL, ServerName: "files"})
	if err != nil {
		b.Fatal(err)
	}
	gwSrv.Config.Handler = h
	gwSrv.Start()
	defer gwSrv.Close()

	u, err := k.Users.CreateUser(ctx, users.CreateUserInput{Email: "bench@example.com", EmailVerified: true})
	if err != nil {
		b.Fatal(err)
	}
	a, _, _, err := k.Agents.Create(ctx, agents.CreateInput{OwnerUserID: u.ID, Name: "bench",
		Permissions: []agents.Grant{{Resource: "mcp:files:*", Actions: []string{"call"}}}})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := k.OAuth.RegisterAgentClient(ctx, a.ID, a.Name, authz.ClientMetadata{Scope: "mcp"})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := (&clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: base + authz.TokenPath,
		Scopes: []string{"mcp"}, EndpointParams: url.Values{"resource": {gwURL}}}).Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/motd"}}}`
	client := &http.Client{}
	call := func(target, bearer string) time.Duration {
		req, _ := http.NewRequest("POST", target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 || !strings.Contains(string(out), `"ok"`) {
			b.Fatalf("%s: %d %s", target, resp.StatusCode, out)
		}
		return d
	}
	var direct, gateway []time.Duration
	b.ResetTimer()
	for b.Loop() {
		direct = append(direct, call(up.URL, ""))
		gateway = append(gateway, call(gwURL, tok.AccessToken))
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[int(float64(len(s)-1)*p)].Microseconds())
	}
	b.ReportMetric(pct(direct, 0.5), "direct-p50-µs")
	b.ReportMetric(pct(direct, 0.99), "direct-p99-µs")
	b.ReportMetric(pct(gateway, 0.5), "gateway-p50-µs")
	b.ReportMetric(pct(gateway, 0.99), "gateway-p99-µs")
	b.ReportMetric(pct(gateway, 0.5)-pct(direct, 0.5), "added-p50-µs")
}
