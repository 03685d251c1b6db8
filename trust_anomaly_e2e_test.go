package kavach_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
)

// decideFrom asks for a decision with bearer as if from ip (through the
// trusted proxy on loopback).
func (e *env) decideFrom(t *testing.T, bearer, ip, action, resource string) decision {
	t.Helper()
	c := e.client()
	c.headers["Authorization"] = "Bearer " + bearer
	c.headers["X-Forwarded-For"] = ip
	var d decision
	c.do("POST", "/api/auth/authorize", map[string]any{"action": action, "resource": resource}).must(t, 200).decode(t, &d)
	return d
}

type findingJSON struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	At       time.Time `json:"at"`
	Severity float64   `json:"severity"`
	Detail   string    `json:"detail"`
}

func findingKinds(fs []findingJSON) map[string]int {
	out := map[string]int{}
	for _, f := range fs {
		out[f.Kind]++
	}
	return out
}

// The anomaly detectors on a running server: an agent works from one
// network for four simulated days; calls from the same network find
// nothing; then its access token is used from a distant network two
// minutes after its usual one. The findings are stored, listed by the API
// and in the admin list, sent to the outbox and the audit log, and lower
// the score, which the audit log still rebuilds exactly.
func TestAnomalyFindingsFromLiveTraffic(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		// The simulated days end before the real now: access tokens expire
		// by the real clock (fosite's), and are checked by this one.
		clk := &clock{now: time.Now().UTC().Add(-5 * 24 * time.Hour)}
		e := newEnv(t, open, func(c *kavach.Config) {
			c.AdminEmails = []string{"root@example.com"}
			c.TrustedProxies = []string{"127.0.0.1"}
			c.Now = clk.Now
		})
		e.clock = clk
		ctx := context.Background()
		admin := e.client()
		admin.signUp("root@example.com")
		admin.do("GET", strings.TrimPrefix(e.waitMail("root@example.com", "Verify your email"), e.url), nil).must(t, 200)
		owner := e.client()
		owner.signUp("watched@example.com")
		var created agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "watched", "permissions": []map[string]any{
			{"resource": "mcp:github:*", "actions": []string{"read"}},
		}}).must(t, 201).decode(t, &created)
		id, key := created.Agent.ID, created.Token
		ac := oauthClientFor(t, owner, id)

		// Four working days from one network: the baseline warms up.
		const home, neighbour, faraway = "203.0.113.10", "203.0.113.77", "198.51.100.7"
		day := e.clock.Now().Truncate(24 * time.Hour).Add(24*time.Hour + 9*time.Hour)
		e.clock.Advance(day.Sub(e.clock.Now()))
		for d := range 4 {
			for range 20 {
				if got := e.decideFrom(t, key, home, "read", "mcp:github:issues"); !got.Allowed {
					t.Fatalf("usual call refused: %+v", got)
				}
				e.clock.Advance(20 * time.Minute)
			}
			if d < 3 {
				e.clock.Advance(24*time.Hour - 20*20*time.Minute)
			}
		}
		flush := func() {
			t.Helper()
			if err := e.k.Trust.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		flush()

		// The same network, from another address, with a new access token
		// used from two addresses of it: nothing to find.
		tok, err := (&clientcredentials.Config{ClientID: ac.ClientID, ClientSecret: ac.ClientSecret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.decideFrom(t, key, neighbour, "read", "mcp:github:pulls")
		e.decideFrom(t, tok.AccessToken, home, "read", "mcp:github:issues")
		e.clock.Advance(time.Minute)
		e.decideFrom(t, tok.AccessToken, neighbour, "read", "mcp:github:issues")
		flush()
		var listed struct {
			AgentID  string        `json:"agentId"`
			Findings []findingJSON `json:"findings"`
		}
		owner.do("GET", "/api/auth/trust/agents/"+id+"/findings", nil).must(t, 200).decode(t, &listed)
		if listed.AgentID != id || len(listed.Findings) != 0 {
			t.Fatalf("the agent's usual network made findings: %+v", listed)
		}

		// Two minutes later the same token from a distant network.
		e.clock.Advance(2 * time.Minute)
		odd := e.clock.Now().UTC().Truncate(time.Millisecond)
		e.decideFrom(t, tok.AccessToken, faraway, "read", "mcp:github:issues")
		flush()

		owner.do("GET", "/api/auth/trust/agents/"+id+"/findings?limit=10", nil).must(t, 200).decode(t, &listed)
		if k := findingKinds(listed.Findings); len(listed.Findings) != 2 || k["new_network"] != 1 || k["token_two_networks"] != 1 {
			t.Fatalf("findings %+v", listed.Findings)
		}
		for _, f := range listed.Findings {
			if !f.At.Equal(odd) || f.Severity <= 0 || f.Detail == "" || f.ID == "" {
				t.Fatalf("finding %+v (the call was at %v)", f, odd)
			}
		}
		owner.do("GET", "/api/auth/trust/agents/"+id+"/findings?limit=1", nil).must(t, 200).decode(t, &listed)
		if len(listed.Findings) != 1 {
			t.Fatalf("limit=1 gave %d findings", len(listed.Findings))
		}
		owner.do("GET", "/api/auth/trust/agents/"+id+"/findings?limit=0", nil).mustError(t, 400, "INVALID_REQUEST")
		stranger := e.client()
		stranger.signUp("nosy@example.com")
		stranger.do("GET", "/api/auth/trust/agents/"+id+"/findings", nil).mustError(t, 404, "AGENT_NOT_FOUND")

		// The score explains them: the anomaly signal costs points.
		var view struct {
			Score          float64       `json:"score"`
			LatestFindings []findingJSON `json:"latestFindings"`
			Contributions  []struct {
				Signal string  `json:"signal"`
				Count  int64   `json:"count"`
				Points float64 `json:"points"`
			} `json:"contributions"`
		}
		owner.do("GET", "/api/auth/trust/agents/"+id, nil).must(t, 200).decode(t, &view)
		var anomaly float64
		for _, c := range view.Contributions {
			if c.Signal == "anomaly" {
				anomaly = c.Points
				if c.Count != 2 {
					t.Fatalf("anomaly counted %d times", c.Count)
				}
			}
		}
		if math.Abs(anomaly-(-5*(0.5+3))) > 1e-9 || len(view.LatestFindings) != 2 {
			t.Fatalf("anomaly points %v, latest findings %+v", anomaly, view.LatestFindings)
		}

		// The admin list carries each agent's latest findings.
		var rows []struct {
			AgentID        string        `json:"agentId"`
			LatestFindings []findingJSON `json:"latestFindings"`
		}
		admin.do("GET", "/api/auth/trust/agents", nil).must(t, 200).decode(t, &rows)
		found := false
		for _, r := range rows {
			if r.AgentID == id {
				found = len(r.LatestFindings) == 2
			}
		}
		if !found {
			t.Fatalf("admin list %+v", rows)
		}

		// Audit records and outbox events, one per finding.
		var audit struct {
			Records []struct {
				Event  string `json:"event"`
				Reason string `json:"reason"`
				Kind   string `json:"kind"`
			} `json:"records"`
		}
		owner.do("GET", "/api/auth/audit?agentId="+id+"&event="+trust.EventFinding, nil).must(t, 200).decode(t, &audit)
		if len(audit.Records) != 2 || audit.Records[0].Kind != storage.AuditKindSecurity {
			t.Fatalf("audit records %+v", audit.Records)
		}
		events, err := e.store.Events().Pending(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var outboxed []string
		for _, ev := range events {
			if ev.Type == trust.EventFinding && ev.Subject == id {
				var p struct {
					Kind string `json:"kind"`
				}
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					t.Fatal(err)
				}
				outboxed = append(outboxed, p.Kind)
			}
		}
		if len(outboxed) != 2 {
			t.Fatalf("trust.finding events %v", outboxed)
		}

		// The agent sees them too.
		b := e.myTrust(t, tok.AccessToken)
		var mine struct {
			LatestFindings []findingJSON `json:"latestFindings"`
		}
		if err := json.Unmarshal(b, &mine); err != nil || len(mine.LatestFindings) != 2 {
			t.Fatalf("my_trust %s: %v", b, err)
		}

		// The audit log rebuilds the incremental state.
		stored := e.recomputeAgrees(t, id)
		if stored.Counts.Of(trust.SignalAnomaly) != 2 || stored.Counts.Of(trust.SignalAllowed) != 84 {
			t.Fatalf("stored state %+v", stored)
		}

		// The sweep deletes findings past their retention; the audit
		// records stay.
		e.clock.Advance(trust.FindingRetention - time.Hour)
		if err := e.k.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if fs, err := e.store.TrustFindings().ListByAgent(ctx, id, 0); err != nil || len(fs) != 2 {
			t.Fatalf("findings within their retention: %+v %v", fs, err)
		}
		e.clock.Advance(2 * time.Hour)
		if err := e.k.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if fs, err := e.store.TrustFindings().ListByAgent(ctx, id, 0); err != nil || len(fs) != 0 {
			t.Fatalf("findings past their retention: %+v %v", fs, err)
		}
		if recs, _, err := e.store.Audit().Query(ctx, storage.AuditFilter{AgentID: id, Event: trust.EventFinding}); err != nil || len(recs) != 2 {
			t.Fatalf("audit records of the findings: %d %v", len(recs), err)
		}
	})
}
