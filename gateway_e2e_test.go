package kavach_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

// upstream is an MCP server with no auth of its own, behind the gateway.
// It records the calls it gets and the headers they came with.
type upstream struct {
	mu      sync.Mutex
	calls   []string
	headers []http.Header
	// progressOut counts the progress notifications the upstream put on
	// the wire (mcp-go's stateless server sometimes drops the first one
	// of a call, before its event stream is set up).
	progressOut atomic.Int32
}

// countingWriter counts progress notifications written through it.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int32
}

func (c countingWriter) Write(b []byte) (int, error) {
	c.n.Add(int32(strings.Count(string(b), "notifications/progress")))
	return c.ResponseWriter.Write(b)
}

func (c countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (u *upstream) handler(t *testing.T) http.Handler {
	s := server.NewMCPServer("files", "1.0")
	tool := func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		u.mu.Lock()
		u.calls = append(u.calls, req.Params.Name)
		u.mu.Unlock()
		if req.Params.Name == "count" {
			// Progress as it goes: the gateway must stream it through.
			srv := server.ServerFromContext(ctx)
			for i := 1; i <= 3; i++ {
				_ = srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
					"progressToken": req.Params.Meta.ProgressToken, "progress": i, "total": 3})
			}
		}
		return mcpgo.NewToolResultText(req.Params.Name + " done"), nil
	}
	for _, name := range []string{"read_file", "deploy", "secret_tool", "count"} {
		s.AddTool(mcpgo.NewTool(name), tool)
	}
	mcpHandler := server.NewStreamableHTTPServer(s, server.WithStateLess(true))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		if r.Header.Get("X-Upstream-Key") != "s3cret" {
			http.Error(w, "no upstream key", http.StatusUnauthorized)
			return
		}
		mcpHandler.ServeHTTP(countingWriter{w, &u.progressOut}, r)
	})
}

// Kavach's gateway in front of an upstream MCP server, with the mcp-go
// client: tools/list shows only the tools the agent may call; calls are
// decided first (a refused one never reaches the upstream), a call that
// needs approval waits until the owner approves, progress notifications
// stream through, every call is in the audit log with its arguments'
// digest, and the client's token never reaches the upstream.
func TestGateway(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		up := &upstream{}
		upSrv := httptest.NewServer(up.handler(t))
		t.Cleanup(upSrv.Close)
		gwSrv := httptest.NewUnstartedServer(nil)
		gwURL := "http://" + gwSrv.Listener.Addr().String() + "/mcp"
		e := newEnv(t, open, func(c *kavach.Config) { c.OAuth.Resources = []string{gwURL} })
		h, err := e.k.Gateway(kavach.GatewayOptions{Upstream: upSrv.URL + "/mcp", PublicURL: gwURL, ServerName: "files",
			UpstreamHeader: http.Header{"X-Upstream-Key": {"s3cret"}}, ApprovalWait: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		gwSrv.Config.Handler = h
		gwSrv.Start()
		t.Cleanup(gwSrv.Close)
		if _, err := e.k.Gateway(kavach.GatewayOptions{Upstream: upSrv.URL, PublicURL: "http://elsewhere.example/mcp", ServerName: "files"}); err == nil {
			t.Fatal("a gateway for a URL that is not a resource")
		}
		if _, err := e.k.Gateway(kavach.GatewayOptions{Upstream: upSrv.URL, PublicURL: gwURL, ServerName: "a:b"}); err == nil {
			t.Fatal("a server name with ':'")
		}

		owner := e.client()
		owner.signUp("owner@example.com")
		var ag agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "bot", "permissions": []map[string]any{
			{"resource": "mcp:files:read_file", "actions": []string{"call"}},
			{"resource": "mcp:files:count", "actions": []string{"call"}},
			{"resource": "mcp:files:deploy", "actions": []string{"call"}, "constraints": map[string]any{"requireApproval": true}},
		}}).must(t, 201).decode(t, &ag)
		ac := oauthClientFor(t, owner, ag.Agent.ID)
		status, tok := e.tokenRequest(t, ac, url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp"}, "resource": {gwURL}})
		if status != 200 {
			t.Fatalf("token: %d %v", status, tok)
		}
		ctx := context.Background()
		c, err := mcpclient.NewStreamableHttpClient(gwURL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok["access_token"].(string)}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		var progress atomic.Int32
		c.OnNotification(func(n mcpgo.JSONRPCNotification) {
			if n.Method == "notifications/progress" {
				progress.Add(1)
			}
		})
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{}); err != nil {
			t.Fatal(err)
		}
		list, err := c.ListTools(ctx, mcpgo.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range list.Tools {
			names = append(names, tl.Name)
		}
		if strings.Join(names, ",") != "count,deploy,read_file" {
			t.Fatalf("tools/list through the gateway: %v", names)
		}
		call := func(tool string, args map[string]any) (*mcpgo.CallToolResult, error) {
			var req mcpgo.CallToolRequest
			req.Params.Name, req.Params.Arguments = tool, args
			if tool == "count" {
				req.Params.Meta = &mcpgo.Meta{ProgressToken: "p1"}
			}
			return c.CallTool(ctx, req)
		}
		text := func(r *mcpgo.CallToolResult) string { return r.Content[0].(mcpgo.TextContent).Text }

		res, err := call("read_file", map[string]any{"path": "/etc/motd"})
		if err != nil || res.IsError || text(res) != "read_file done" {
			t.Fatalf("read_file: %+v %v", res, err)
		}
		res, err = call("secret_tool", nil)
		if err != nil || !res.IsError || !strings.Contains(text(res), "PERMISSION_DENIED") {
			t.Fatalf("secret_tool: %+v %v", res, err)
		}
		res, err = call("count", nil)
		if err != nil || res.IsError {
			t.Fatalf("count: %+v %v", res, err)
		}
		// Every progress notification the upstream sent reaches the
		// client. The client hands them to its callback on its own
		// goroutine, so the last may land just after the result.
		sent := up.progressOut.Load()
		for deadline := time.Now().Add(5 * time.Second); progress.Load() < sent && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := progress.Load(); sent == 0 || n != sent {
			t.Fatalf("%d of the %d progress notifications the upstream sent streamed through", n, sent)
		}

		// deploy waits for the owner's approval.
		approved := make(chan error, 1)
		go func() {
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				var list struct {
					Approvals []struct {
						ID string `json:"id"`
					} `json:"approvals"`
				}
				owner.do("GET", "/api/auth/approvals", nil).must(t, 200).decode(t, &list)
				if len(list.Approvals) > 0 {
					r := owner.do("POST", "/api/auth/approvals/"+list.Approvals[0].ID+"/approve", map[string]any{"mode": "once"})
					if r.Status != 200 {
						approved <- errFromStatus(r)
						return
					}
					approved <- nil
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			approved <- errFromStatus(nil)
		}()
		res, err = call("deploy", map[string]any{"env": "prod"})
		if aerr := <-approved; aerr != nil {
			t.Fatalf("approving: %v", aerr)
		}
		if err != nil || res.IsError || text(res) != "deploy done" {
			t.Fatalf("deploy after approval: %+v %v", res, err)
		}

		up.mu.Lock()
		calls := strings.Join(up.calls, ",")
		for _, h := range up.headers {
			if h.Get("Authorization") != "" {
				t.Fatalf("the client's token reached the upstream: %v", h)
			}
		}
		up.mu.Unlock()
		if calls != "read_file,count,deploy" {
			t.Fatalf("the upstream got %s", calls)
		}
		recs, _, err := e.store.Audit().Query(ctx, storage.AuditFilter{AgentID: ag.Agent.ID, Event: "authorize", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, r := range recs {
			if r.Action == "call" {
				seen[r.Resource+" "+r.Reason] = r.ArgsDigest
			}
		}
		if seen["mcp:files:read_file ALLOWED"] == "" || seen["mcp:files:deploy ALLOWED"] == "" || seen["mcp:files:deploy APPROVAL_REQUIRED"] == "" {
			t.Fatalf("audit records %v", seen)
		}
		if _, ok := seen["mcp:files:secret_tool PERMISSION_DENIED"]; !ok {
			t.Fatalf("no record of the refused call: %v", seen)
		}
	})
}

type statusError struct{ r *response }

func (e statusError) Error() string {
	if e.r == nil {
		return "no approval request appeared"
	}
	return string(e.r.Raw)
}

func errFromStatus(r *response) error { return statusError{r} }
