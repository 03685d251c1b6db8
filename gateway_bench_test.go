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

// gatewayBench starts an mcp-go server, Kavach on SQLite and the gateway
// in front of the server, and returns the server's URL, the gateway's and
// an agent's token for the gateway.
func gatewayBench(b *testing.B) (upstreamURL, gwURL, token string) {
	ctx := context.Background()
	s := server.NewMCPServer("files", "1.0")
	s.AddTool(mcpgo.NewTool("read_file"), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText("ok"), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithStateLess(true)))
	b.Cleanup(up.Close)
	kSrv := httptest.NewUnstartedServer(nil)
	gwSrv := httptest.NewUnstartedServer(nil)
	base := "http://" + kSrv.Listener.Addr().String()
	gwURL = "http://" + gwSrv.Listener.Addr().String() + "/mcp"
	store := storagetestOpenSQLite(b)
	k, err := kavach.NewWithStore(kavach.Config{BaseURL: base, Secret: testSecret, OAuth: kavach.OAuthConfig{Resources: []string{gwURL}},
		Logger: discardLogger()}, store)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	kSrv.Config.Handler = k.Handler()
	kSrv.Start()
	b.Cleanup(kSrv.Close)
	h, err := k.Gateway(kavach.GatewayOptions{Upstream: up.URL, PublicURL: gwURL, ServerName: "files"})
	if err != nil {
		b.Fatal(err)
	}
	gwSrv.Config.Handler = h
	gwSrv.Start()
	b.Cleanup(gwSrv.Close)

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
	return up.URL, gwURL, tok.AccessToken
}

// toolCall posts one tools/call to target and checks the answer.
func toolCall(b *testing.B, client *http.Client, target, bearer string) {
	req, _ := http.NewRequest("POST", target, strings.NewReader(benchCallBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(out), `"ok"`) {
		b.Fatalf("%s: %d %s", target, resp.StatusCode, out)
	}
}

const benchCallBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/motd"}}}`

// BenchmarkGatewayLatency compares a tools/call made to an mcp-go server
// directly with the same call through Kavach's gateway (token check,
// decision with its durable audit record on SQLite, proxying), one caller
// at a time on loopback, and reports the added p50 and p99.
func BenchmarkGatewayLatency(b *testing.B) {
	upURL, gwURL, token := gatewayBench(b)
	client := &http.Client{}
	timed := func(target, bearer string) time.Duration {
		start := time.Now()
		toolCall(b, client, target, bearer)
		return time.Since(start)
	}
	var direct, gateway []time.Duration
	b.ResetTimer()
	for b.Loop() {
		direct = append(direct, timed(upURL, ""))
		gateway = append(gateway, timed(gwURL, token))
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

// BenchmarkGatewayThroughput is tools/calls per second from 16 callers,
// to the server directly and through the gateway.
func BenchmarkGatewayThroughput(b *testing.B) {
	upURL, gwURL, token := gatewayBench(b)
	for _, via := range []struct{ name, target, bearer string }{{"direct", upURL, ""}, {"gateway", gwURL, token}} {
		b.Run(via.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					toolCall(b, client, via.target, via.bearer)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
