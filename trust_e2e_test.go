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
		e.recomputeAgrees(t, id)

		// Tokens carry the level at issuance; my_trust on /mcp explains it.
		tok, err := (&clientcredentials.Config{ClientID: ac.ClientID, ClientSecret: ac.ClientSecret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lvl := jwtClaims(t, tok.AccessToken)["trust_level"]; lvl != view.Level {
			t.Fatalf("trust_level claim %v, API level %s", lvl, view.Level)
		}
		b := e.myTrust(t, tok.AccessToken)
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

// recomputeAgrees checks that the agent's state rebuilt from the audit log
// is the one the server kept incrementally (events per signal, and the
// score at the state's last event to 1e-6), and returns the kept one.
func (e *env) recomputeAgrees(t *testing.T, agentID string) trust.State {
	t.Helper()
	ctx := context.Background()
	stored, err := e.k.Trust.State(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := e.k.Trust.RecomputeFromAudit(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	m := trust.DefaultModel()
	if rebuilt.Counts != stored.Counts || rebuilt.Events != stored.Events ||
		math.Abs(rebuilt.Score(stored.LastAt, m).Score-stored.Score(stored.LastAt, m).Score) > 1e-6 {
		t.Fatalf("agent %s: rebuilt %+v, stored %+v", agentID, rebuilt, stored)
	}
	return stored
}

// myTrust calls the my_trust tool on /mcp with the agent's access token
// and returns its structured answer.
func (e *env) myTrust(t *testing.T, accessToken string) []byte {
	t.Helper()
	mc, err := e.mcpWith(t, accessToken)
	if err != nil {
		t.Fatal(err)
	}
	var call mcp.CallToolRequest
	call.Params.Name = "my_trust"
	res, err := mc.CallTool(context.Background(), call)
	if err != nil || res.IsError {
		t.Fatalf("my_trust: %+v %v", res, err)
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
