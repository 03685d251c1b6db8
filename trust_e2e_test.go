package kavach_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
)

// Decisions, a denied approval and a failed client authentication move an
// agent's trust score as they happen; the score is explained over HTTP,
// and rebuilding it from the audit log gives the same state.
func TestTrustScoresFromLiveEvents(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		ctx := context.Background()
		owner := e.client()
		owner.signUp("trust@example.com")
		var created agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "scored", "permissions": []map[string]any{
			{"resource": "mcp:github:*", "actions": []string{"read"}},
			{"resource": "mcp:deploy:*", "actions": []string{"run"}, "constraints": map[string]any{"requireApproval": true}},
		}}).must(t, 201).decode(t, &created)
		id, key := created.Agent.ID, created.Token
		ac := oauthClientFor(t, owner, id)

		for range 5 {
			e.decide(t, key, "read", "mcp:github:issues")
		}
		e.decide(t, key, "read", "mcp:slack:general") // near miss
		e.decide(t, key, "read", "billing:invoices")  // probe
		e.decide(t, key, "write", "payroll:runs")     // probe
		c := e.client()
		c.headers["Authorization"] = "Bearer " + key
		var d decision
		c.do("POST", "/api/auth/authorize", map[string]any{"action": "run", "resource": "mcp:deploy:prod"}).must(t, 200).decode(t, &d)
		owner.do("POST", "/api/auth/approvals/"+d.ApprovalID+"/deny", map[string]any{"reason": "not now"}).must(t, 200)
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest("POST", e.url+authz.TokenPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(ac.ClientID, "wrong-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("wrong secret: %d", resp.StatusCode)
		}
		if err := e.k.Trust.Flush(ctx); err != nil {
			t.Fatal(err)
		}

		var view struct {
			Events        int64   `json:"events"`
			Score         float64 `json:"score"`
			Level         string  `json:"level"`
			Contributions []struct {
				Signal string  `json:"signal"`
				Count  int64   `json:"count"`
				Points float64 `json:"points"`
			} `json:"contributions"`
		}
		owner.do("GET", "/api/auth/trust/agents/"+id, nil).must(t, 200).decode(t, &view)
		counts := map[string]int64{}
		for _, c := range view.Contributions {
			counts[c.Signal] = c.Count
		}
		want := map[string]int64{"allowed": 5, "denied": 1, "probe": 2, "approval_denied": 1, "invalid_client_auth": 1}
		for sig, n := range want {
			if counts[sig] != n {
				t.Fatalf("%s counted %d, want %d; view %+v", sig, counts[sig], n, view)
			}
		}
		if view.Events != 10 || view.Score >= 50 || view.Level == "" {
			t.Fatalf("trust view %+v", view)
		}

		// The stored state is the audit log's.
		stored, err := e.k.Trust.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		rebuilt, err := e.k.Trust.RecomputeFromAudit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m := trust.DefaultModel()
		if rebuilt.Counts != stored.Counts || rebuilt.Events != stored.Events ||
			math.Abs(rebuilt.Score(stored.LastAt, m).Score-stored.Score(stored.LastAt, m).Score) > 1e-9 {
			t.Fatalf("rebuilt %+v, stored %+v", rebuilt, stored)
		}

		// Tokens carry the level at issuance; my_trust on /mcp explains it.
		tok, err := (&clientcredentials.Config{ClientID: ac.ClientID, ClientSecret: ac.ClientSecret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lvl := jwtClaims(t, tok.AccessToken)["trust_level"]; lvl != view.Level {
			t.Fatalf("trust_level claim %v, API level %s", lvl, view.Level)
		}
		mc, err := e.mcpWith(t, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		var call mcp.CallToolRequest
		call.Params.Name = "my_trust"
		res, err := mc.CallTool(ctx, call)
		if err != nil || res.IsError {
			t.Fatalf("my_trust: %+v %v", res, err)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var mine struct {
			AgentID string  `json:"agentId"`
			Score   float64 `json:"score"`
			Level   string  `json:"level"`
		}
		if err := json.Unmarshal(b, &mine); err != nil || mine.AgentID != id || mine.Level != view.Level || math.Abs(mine.Score-view.Score) > 1e-9 {
			t.Fatalf("my_trust %s: %v (API %+v)", b, err, view)
		}

		stranger := e.client()
		stranger.signUp("nosy@example.com")
		stranger.do("GET", "/api/auth/trust/agents/"+id, nil).mustError(t, 404, "AGENT_NOT_FOUND")
		owner.do("GET", "/api/auth/trust/agents", nil).mustError(t, 403, "FORBIDDEN")
	})
}
