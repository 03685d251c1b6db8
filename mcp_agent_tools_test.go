package kavach_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
)

// callTool calls a tool on /mcp and returns its structured answer, or its
// error text when the tool answered with an error.
func callTool(t *testing.T, c *mcpclient.Client, name string, args map[string]any) (out map[string]any, toolErr string) {
	t.Helper()
	var call mcp.CallToolRequest
	call.Params.Name, call.Params.Arguments = name, args
	res, err := c.CallTool(t.Context(), call)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				return nil, tc.Text
			}
		}
		return nil, "(no text)"
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %s: %v", name, b, err)
	}
	return out, ""
}

// Kavach's MCP tools for agents about themselves, through the mcp-go
// client with a client_credentials token: list_my_permissions,
// check_permission (a dry run, recorded as a check), request_approval and
// approval_status (asking a person ahead of the call), and delegate; each
// refuses bad input with the field named.
func TestMCPAgentTools(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		ctx := context.Background()
		owner := e.client()
		owner.signUp("owner@example.com")
		var ag agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "bot", "permissions": []map[string]any{
			{"resource": "mcp:github:*", "actions": []string{"read"}},
			{"resource": "mcp:deploy:*", "actions": []string{"run"}, "constraints": map[string]any{"requireApproval": true}},
		}}).must(t, 201).decode(t, &ag)
		ac := oauthClientFor(t, owner, ag.Agent.ID)
		tok, err := (&clientcredentials.Config{ClientID: ac.ClientID, ClientSecret: ac.ClientSecret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mc, err := e.mcpWith(t, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		list, err := mc.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range list.Tools {
			names = append(names, tl.Name)
		}
		for _, want := range []string{"whoami", "authorize", "my_trust", "list_my_permissions", "check_permission", "request_approval", "approval_status", "delegate"} {
			if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
				t.Fatalf("tools %v lack %s", names, want)
			}
		}

		perms, _ := callTool(t, mc, "list_my_permissions", nil)
		if perms["agentId"] != ag.Agent.ID || len(perms["permissions"].([]any)) != 2 || perms["status"] != "active" {
			t.Fatalf("list_my_permissions %v", perms)
		}

		// check_permission: a dry run, recorded as a check, moving no score.
		if out, _ := callTool(t, mc, "check_permission", map[string]any{"action": "read", "resource": "mcp:github:issues"}); out["allowed"] != true {
			t.Fatalf("check_permission allowed: %v", out)
		}
		if out, _ := callTool(t, mc, "check_permission", map[string]any{"action": "read", "resource": "billing:invoices"}); out["allowed"] != false || out["code"] != "PERMISSION_DENIED" {
			t.Fatalf("check_permission denied: %v", out)
		}
		e.flushTrust(t)
		if st, err := e.k.Trust.State(ctx, ag.Agent.ID); err != nil || st.Events != 0 {
			t.Fatalf("dry runs moved the score: %+v %v", st, err)
		}
		checks, _, err := e.store.Audit().Query(ctx, storage.AuditFilter{AgentID: ag.Agent.ID, Event: "check_permission"})
		if err != nil || len(checks) != 2 {
			t.Fatalf("check records %d %v", len(checks), err)
		}

		// request_approval opens the request before the call; asking again
		// finds the same one; the owner approves; the call then goes through.
		req, _ := callTool(t, mc, "request_approval", map[string]any{"action": "run", "resource": "mcp:deploy:prod"})
		apID, _ := req["approvalId"].(string)
		if req["code"] != "APPROVAL_REQUIRED" || apID == "" {
			t.Fatalf("request_approval %v", req)
		}
		if again, _ := callTool(t, mc, "request_approval", map[string]any{"action": "run", "resource": "mcp:deploy:prod"}); again["approvalId"] != apID {
			t.Fatalf("second request_approval %v", again)
		}
		if st, _ := callTool(t, mc, "approval_status", map[string]any{"approvalId": apID}); st["status"] != "pending" || st["resource"] != "mcp:deploy:prod" {
			t.Fatalf("approval_status pending: %v", st)
		}
		owner.do("POST", "/api/auth/approvals/"+apID+"/approve", map[string]any{"mode": "once"}).must(t, 200)
		if st, _ := callTool(t, mc, "approval_status", map[string]any{"approvalId": apID}); st["status"] != "approved" || st["mode"] != "once" {
			t.Fatalf("approval_status approved: %v", st)
		}
		if out, _ := callTool(t, mc, "check_permission", map[string]any{"action": "run", "resource": "mcp:deploy:prod"}); out["allowed"] != true {
			t.Fatalf("check_permission after approval: %v", out)
		}
		if d := callAuthorizeTool(t, mc, "run", "mcp:deploy:prod"); !d.Allowed || d.ApprovalID != apID {
			t.Fatalf("the approved call: %+v", d)
		}
		if st, _ := callTool(t, mc, "approval_status", map[string]any{"approvalId": apID}); st["status"] != "consumed" {
			t.Fatalf("approval_status after the call: %v", st)
		}
		if recs, _, err := e.store.Audit().Query(ctx, storage.AuditFilter{AgentID: ag.Agent.ID, Event: "request_approval"}); err != nil || len(recs) != 2 {
			t.Fatalf("request_approval records %d %v", len(recs), err)
		}

		// delegate: a sub-agent with a subset of the grants, whose key works.
		sub, _ := callTool(t, mc, "delegate", map[string]any{"name": "reader",
			"permissions": []any{map[string]any{"resource": "mcp:github:issues", "actions": []any{"read"}}}, "expiresInSeconds": 3600})
		key, _ := sub["apiKey"].(string)
		if !strings.HasPrefix(key, "kv_") || sub["expiresAt"] == nil {
			t.Fatalf("delegate %v", sub)
		}
		if status, d := e.decide(t, key, "read", "mcp:github:issues"); status != 200 || !d.Allowed {
			t.Fatalf("the sub-agent's key: %d %+v", status, d)
		}
		if status, d := e.decide(t, key, "read", "mcp:github:pulls"); status != 200 || d.Allowed {
			t.Fatalf("the sub-agent beyond its grant: %d %+v", status, d)
		}

		// Bad input: the field is named, nothing happens.
		for _, bad := range []struct {
			tool  string
			args  map[string]any
			field string
		}{
			{"check_permission", map[string]any{"resource": "mcp:x"}, "action"},
			{"check_permission", map[string]any{"action": "read"}, "resource"},
			{"check_permission", map[string]any{"action": "read", "resource": "mcp:x", "arguments": "nope"}, "arguments"},
			{"request_approval", map[string]any{"action": 3, "resource": "mcp:x"}, "action"},
			{"approval_status", map[string]any{}, "approvalId"},
			{"approval_status", map[string]any{"approvalId": "apr_missing"}, "approvalId"},
			{"delegate", map[string]any{"permissions": []any{}}, "name"},
			{"delegate", map[string]any{"name": "x", "permissions": "all"}, "permissions"},
			{"delegate", map[string]any{"name": "x", "permissions": []any{map[string]any{"resource": "mcp:*", "actions": []any{"read"}}}}, "PERMISSION_NOT_DELEGABLE"},
			{"delegate", map[string]any{"name": "x", "permissions": []any{map[string]any{"resource": "mcp:github:a", "actions": []any{"read"}, "color": 1}}}, "permissions"},
			{"delegate", map[string]any{"name": "x", "permissions": []any{}, "expiresInSeconds": -5}, "expiresInSeconds"},
		} {
			if out, msg := callTool(t, mc, bad.tool, bad.args); !strings.Contains(msg, bad.field) {
				t.Fatalf("%s %v: %v %q", bad.tool, bad.args, out, msg)
			}
		}

		// Another agent cannot read this one's approval.
		var other agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "other", "permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &other)
		oc := oauthClientFor(t, owner, other.Agent.ID)
		otok, err := (&clientcredentials.Config{ClientID: oc.ClientID, ClientSecret: oc.ClientSecret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		omc, err := e.mcpWith(t, otok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, msg := callTool(t, omc, "approval_status", map[string]any{"approvalId": apID}); !strings.Contains(msg, "no such approval request") {
			t.Fatalf("another agent's approval: %q", msg)
		}
	})
}
