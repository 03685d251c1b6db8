package kavach_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/auditchain"
	"github.com/kavachos/kavach/storage"
)

type decision struct {
	Allowed    bool   `json:"allowed"`
	Code       string `json:"code"`
	Reason     string `json:"reason"`
	AuditID    string `json:"auditId"`
	ApprovalID string `json:"approvalId"`
}

func (e *env) decide(t *testing.T, bearer, action, resource string) (int, decision) {
	t.Helper()
	c := e.client()
	c.headers["Authorization"] = "Bearer " + bearer
	r := c.do("POST", "/api/auth/authorize", map[string]any{"action": action, "resource": resource})
	var d decision
	if r.Status == 200 {
		r.decode(t, &d)
	}
	return r.Status, d
}

// The agents API end to end: a user creates an agent with permissions, the
// agent asks for decisions with its API key, every decision is in the
// audit log with a verifiable chain; suspend, rotate and revoke behave.
func TestAgentsAPIAndDecisions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner := e.client()
		owner.signUp("owner@example.com")
		var created struct {
			Agent struct {
				ID          string `json:"id"`
				Status      string `json:"status"`
				Permissions []any  `json:"permissions"`
			} `json:"agent"`
			Token string `json:"token"`
		}
		owner.do("POST", "/api/auth/agents", map[string]any{
			"name": "Repo bot", "type": "autonomous",
			"permissions": []map[string]any{
				{"resource": "mcp:github:*", "actions": []string{"read"}},
				{"resource": "mcp:github:secrets", "actions": []string{"*"}, "effect": "deny"},
			},
		}).must(t, 201).decode(t, &created)
		if !strings.HasPrefix(created.Token, "kv_") || created.Agent.Status != "active" || len(created.Agent.Permissions) != 2 {
			t.Fatalf("created %+v", created)
		}
		id, key := created.Agent.ID, created.Token

		cases := []struct {
			action, resource string
			allowed          bool
			code             string
		}{
			{"read", "mcp:github:issues", true, ""},
			{"write", "mcp:github:issues", false, "PERMISSION_DENIED"},
			{"read", "mcp:github:secrets", false, "PERMISSION_DENIED"},
			{"read", "mcp:slack:messages", false, "PERMISSION_DENIED"},
		}
		for _, c := range cases {
			status, d := e.decide(t, key, c.action, c.resource)
			if status != 200 || d.Allowed != c.allowed || d.Code != c.code || d.AuditID == "" {
				t.Fatalf("%s %s: %d %+v", c.action, c.resource, status, d)
			}
		}
		if status, _ := e.decide(t, "kv_"+strings.Repeat("x", 43), "read", "mcp:github:issues"); status != 401 {
			t.Fatalf("unknown key: %d", status)
		}
		// A user's session asks for the user (who has no grants), and may
		// not ask for an agent; without any credential it is a 401.
		var mineDecision decision
		owner.do("POST", "/api/auth/authorize", map[string]any{"action": "read", "resource": "mcp:github:issues"}).must(t, 200).decode(t, &mineDecision)
		if mineDecision.Allowed || mineDecision.Code != "PERMISSION_DENIED" || mineDecision.AuditID == "" {
			t.Fatalf("the user's own decision: %+v", mineDecision)
		}
		owner.do("POST", "/api/auth/authorize", map[string]any{"action": "read", "resource": "mcp:github:issues", "agentId": id}).mustError(t, 403, "FORBIDDEN")
		e.client().do("POST", "/api/auth/authorize", map[string]any{"action": "read", "resource": "mcp:github:issues"}).mustError(t, 401, "UNAUTHENTICATED")

		// Only the owner sees the agent.
		owner.do("GET", "/api/auth/agents/"+id, nil).must(t, 200)
		stranger := e.client()
		stranger.signUp("stranger@example.com")
		stranger.do("GET", "/api/auth/agents/"+id, nil).mustError(t, 404, "AGENT_NOT_FOUND")
		stranger.do("DELETE", "/api/auth/agents/"+id, nil).mustError(t, 404, "AGENT_NOT_FOUND")
		var mine []map[string]any
		stranger.do("GET", "/api/auth/agents", nil).must(t, 200).decode(t, &mine)
		if len(mine) != 0 {
			t.Fatalf("stranger lists %v", mine)
		}

		// Suspend: decisions say so (and are audited); resume.
		owner.do("PATCH", "/api/auth/agents/"+id, map[string]any{"status": "suspended"}).must(t, 200)
		if _, d := e.decide(t, key, "read", "mcp:github:issues"); d.Allowed || d.Code != "AGENT_SUSPENDED" {
			t.Fatalf("suspended: %+v", d)
		}
		owner.do("PATCH", "/api/auth/agents/"+id, map[string]any{"status": "active"}).must(t, 200)

		// Rotate without overlap: the old key stops, the new one works.
		var rot struct {
			Token string `json:"token"`
		}
		owner.do("POST", "/api/auth/agents/"+id+"/rotate", nil).must(t, 200).decode(t, &rot)
		if status, _ := e.decide(t, key, "read", "mcp:github:issues"); status != 401 {
			t.Fatalf("old key after rotation: %d", status)
		}
		if _, d := e.decide(t, rot.Token, "read", "mcp:github:issues"); !d.Allowed {
			t.Fatalf("new key: %+v", d)
		}

		// Revoke is permanent: its keys die with it.
		owner.do("DELETE", "/api/auth/agents/"+id, nil).must(t, 200)
		if status, _ := e.decide(t, rot.Token, "read", "mcp:github:issues"); status != 401 {
			t.Fatalf("key of a revoked agent: %d", status)
		}
		owner.do("PATCH", "/api/auth/agents/"+id, map[string]any{"status": "active"}).mustError(t, 409, "AGENT_REVOKED")

		// Every decision is in the audit log, and the chain verifies.
		recs, _, err := e.store.Audit().Query(context.Background(), storage.AuditFilter{AgentID: id, Kind: storage.AuditKindDecision, Limit: 100})
		if err != nil || len(recs) != 6 {
			t.Fatalf("audit records for the agent: %d %v", len(recs), err)
		}
		if n, err := auditchain.VerifyLog(context.Background(), e.store.Audit()); err != nil || n == 0 {
			t.Fatalf("audit chain: %d %v", n, err)
		}
	})
}

// An OAuth client is an agent: its access token is a credential for
// decisions too.
func TestDecisionWithOAuthAccessToken(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, nil)
	reg := e.registerClient(t, authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}, Scope: "mcp"})
	tok, err := (&clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: e.url + authz.TokenPath, Scopes: []string{"mcp"}}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	status, d := e.decide(t, tok.AccessToken, "read", "mcp:github:issues")
	if status != http.StatusOK || d.Allowed || d.Code != "PERMISSION_DENIED" || d.AuditID == "" {
		t.Fatalf("decision for an agent without grants: %d %+v", status, d)
	}
}

// The audit API: owners read their agents' records, page by cursor, and
// export them as JSON, NDJSON and CSV; strangers cannot.
func TestAuditAPI(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner := e.client()
		owner.signUp("auditor@example.com")
		var created struct {
			Agent struct {
				ID string `json:"id"`
			} `json:"agent"`
			Token string `json:"token"`
		}
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "a", "permissions": []map[string]any{{"resource": "docs:*", "actions": []string{"read"}}}}).
			must(t, 201).decode(t, &created)
		for i := range 5 {
			res := "docs:" + string(rune('a'+i))
			e.decide(t, created.Token, "read", res)
		}
		var page struct {
			Records []struct {
				Seq      int64  `json:"seq"`
				Resource string `json:"resource"`
				Result   string `json:"result"`
				Hash     string `json:"hash"`
			} `json:"records"`
			NextCursor string `json:"nextCursor"`
		}
		owner.do("GET", "/api/auth/audit?kind=decision&limit=3&agentId="+created.Agent.ID, nil).must(t, 200).decode(t, &page)
		if len(page.Records) != 3 || page.NextCursor == "" || page.Records[0].Result != "allow" || len(page.Records[0].Hash) != 64 {
			t.Fatalf("first page %+v", page)
		}
		first := page.Records
		owner.do("GET", "/api/auth/audit?kind=decision&limit=3&agentId="+created.Agent.ID+"&cursor="+url.QueryEscape(page.NextCursor), nil).must(t, 200).decode(t, &page)
		if len(page.Records) != 2 || page.Records[0].Seq >= first[2].Seq {
			t.Fatalf("second page %+v after %+v", page.Records, first)
		}
		owner.do("GET", "/api/auth/audit?cursor=garbage&agentId="+created.Agent.ID, nil).mustError(t, 400, "INVALID_REQUEST")
		owner.do("GET", "/api/auth/audit", nil).mustError(t, 403, "FORBIDDEN")
		stranger := e.client()
		stranger.signUp("peek@example.com")
		stranger.do("GET", "/api/auth/audit?agentId="+created.Agent.ID, nil).mustError(t, 403, "FORBIDDEN")

		for format, check := range map[string]func(string) bool{
			"json":   func(b string) bool { return strings.HasPrefix(b, "[") && strings.Count(b, `"event":"authorize"`) == 5 },
			"ndjson": func(b string) bool { return strings.Count(strings.TrimSpace(b), "\n") == 4 },
			"csv": func(b string) bool {
				return strings.HasPrefix(b, "seq,id,at,") && strings.Count(strings.TrimSpace(b), "\n") == 5
			},
		} {
			req, _ := http.NewRequest("GET", e.url+"/api/auth/audit/export?kind=decision&format="+format+"&agentId="+created.Agent.ID, nil)
			resp, err := owner.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !check(string(body)) {
				t.Fatalf("export %s: %d %q", format, resp.StatusCode, body)
			}
		}
	})
}

// Users are principals too: an admin gives a user grants, the user asks
// with their session, and the grants bound the user's agents.
func TestUserPermissionsAPI(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"admin@example.com"} })
		admin := e.client()
		admin.signUp("admin@example.com")
		admin.do("GET", strings.TrimPrefix(e.waitMail("admin@example.com", "Verify your email"), e.url), nil).must(t, 200)
		user := e.client()
		me := user.signUp("dev@example.com")
		var created struct {
			Agent struct {
				ID string `json:"id"`
			} `json:"agent"`
			Token string `json:"token"`
		}
		user.do("POST", "/api/auth/agents", map[string]any{"name": "bot",
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &created)

		grants := map[string]any{"permissions": []map[string]any{{"resource": "mcp:github:*", "actions": []string{"read"}}}}
		user.do("PUT", "/api/auth/admin/users/"+me.User.ID+"/permissions", grants).mustError(t, 403, "FORBIDDEN")
		admin.do("PUT", "/api/auth/admin/users/usr_missing/permissions", grants).mustError(t, 404, "USER_NOT_FOUND")
		admin.do("PUT", "/api/auth/admin/users/"+me.User.ID+"/permissions", map[string]any{"permissions": []map[string]any{{"resource": "", "actions": []string{"read"}}}}).mustError(t, 400, "INVALID_REQUEST")
		admin.do("PUT", "/api/auth/admin/users/"+me.User.ID+"/permissions", grants).must(t, 200)
		var mine struct {
			Permissions []map[string]any `json:"permissions"`
		}
		user.do("GET", "/api/auth/permissions", nil).must(t, 200).decode(t, &mine)
		if len(mine.Permissions) != 1 || mine.Permissions[0]["resource"] != "mcp:github:*" {
			t.Fatalf("own permissions %+v", mine)
		}
		ask := func(c *client, body map[string]any) decision {
			var d decision
			c.do("POST", "/api/auth/authorize", body).must(t, 200).decode(t, &d)
			return d
		}
		if d := ask(user, map[string]any{"action": "read", "resource": "mcp:github:issues"}); !d.Allowed {
			t.Fatalf("the user within their grants: %+v", d)
		}
		if d := ask(user, map[string]any{"action": "read", "resource": "mcp:slack:general"}); d.Allowed {
			t.Fatalf("the user beyond their grants: %+v", d)
		}
		if d := ask(admin, map[string]any{"action": "read", "resource": "mcp:github:issues", "userId": me.User.ID}); !d.Allowed {
			t.Fatalf("an admin asking for the user: %+v", d)
		}
		// The agent created before is bounded by its owner now.
		if status, d := e.decide(t, created.Token, "read", "mcp:slack:general"); status != 200 || d.Allowed {
			t.Fatalf("the user's agent beyond its owner: %d %+v", status, d)
		}
		if status, d := e.decide(t, created.Token, "read", "mcp:github:pulls"); status != 200 || !d.Allowed {
			t.Fatalf("the user's agent within its owner: %d %+v", status, d)
		}
		user.do("POST", "/api/auth/agents", map[string]any{"name": "greedy",
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).mustError(t, 400, "PERMISSION_NOT_DELEGABLE")
	})
}
