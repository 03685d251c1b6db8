package kavach_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
)

// trustView is GET /api/auth/trust/agents/{id}.
type trustView struct {
	Score         float64 `json:"score"`
	Level         string  `json:"level"`
	Contributions []struct {
		Signal string `json:"signal"`
		Count  int64  `json:"count"`
	} `json:"contributions"`
}

func (e *env) trustOf(t *testing.T, c *client, agentID string) trustView {
	t.Helper()
	var v trustView
	c.do("GET", "/api/auth/trust/agents/"+agentID, nil).must(t, 200).decode(t, &v)
	return v
}

func (e *env) flushTrust(t *testing.T) {
	t.Helper()
	if err := e.k.Trust.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// newAdmin signs up a server admin (its address must be in AdminEmails)
// and verifies its address.
func (e *env) newAdmin(t *testing.T, email string) *client {
	t.Helper()
	admin := e.client()
	admin.signUp(email)
	admin.do("GET", strings.TrimPrefix(e.waitMail(email, "Verify your email"), e.url), nil).must(t, 200)
	return admin
}

// The simulation the trust issue asks for, over the real server with a
// simulated clock: a well-behaved agent earns its way from limited to
// trusted over weeks, and the policies open resources to it as it does; a
// probing agent drops, is refused TRUST_TOO_LOW on a guarded resource,
// raises an alert, and is suspended automatically when it crosses the
// suspension line, with its owner told by mail. The audit log and the
// events show each step, and rebuilding both scores from the audit log
// agrees with the incremental ones.
func TestTrustSimulation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"platform@example.com"} })
		ctx := context.Background()
		// Mondays at 09:00 UTC make the days easy to read.
		start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
		e.clock.Advance(start.Sub(e.clock.Now()))
		admin := e.newAdmin(t, "platform@example.com")
		owner := e.client()
		owner.signUp("owner@example.com")

		for _, p := range []map[string]any{
			{"name": "deploys need standard", "scope": map[string]any{"type": "global"}, "effect": "minimum_level",
				"resources": []string{"mcp:deploy:*"}, "level": "standard"},
			{"name": "payments need a person below trusted", "scope": map[string]any{"type": "global"}, "effect": "require_approval",
				"resources": []string{"mcp:payments:*"}, "level": "trusted"},
			{"name": "tell the platform team", "scope": map[string]any{"type": "global"}, "effect": "alert", "belowScore": 40},
			{"name": "stop bad agents", "scope": map[string]any{"type": "global"}, "effect": "suspend", "belowScore": 20},
		} {
			admin.do("POST", "/api/auth/trust/policies", p).must(t, 201)
		}
		grants := []map[string]any{
			{"resource": "mcp:github:*", "actions": []string{"read"}},
			{"resource": "mcp:deploy:*", "actions": []string{"run"}},
			{"resource": "mcp:payments:*", "actions": []string{"pay"}},
		}
		var good, prober agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "good", "permissions": grants}).must(t, 201).decode(t, &good)
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "prober", "permissions": grants}).must(t, 201).decode(t, &prober)

		expect := func(key, action, resource, code string) decision {
			t.Helper()
			status, d := e.decide(t, key, action, resource)
			if got := d.Code; status != 200 || d.Allowed != (code == "ALLOWED") || (!d.Allowed && got != code) {
				t.Fatalf("%s %s at %s: %d %+v, want %s", action, resource, e.clock.Now().Format(time.DateTime), status, d, code)
			}
			return d
		}
		// A new agent is limited (50): deploys are closed to it, payments
		// need a person.
		expect(good.Token, "run", "mcp:deploy:prod", "TRUST_TOO_LOW")
		held := expect(good.Token, "pay", "mcp:payments:invoice", "APPROVAL_REQUIRED")
		for _, r := range auditOf(t, e.store, good.Agent.ID) {
			if r.ID == held.AuditID && (!strings.Contains(string(r.Extra), `"trustPolicy":"tpol_`) || !strings.Contains(string(r.Extra), `"trustLevel":"limited"`)) {
				t.Fatalf("a policy's APPROVAL_REQUIRED is recorded without it: %s", r.Extra)
			}
		}

		// A working day: 50 reads, ten minutes apart from 09:00.
		workDay := func(key string) {
			for i := range 50 {
				e.clock.Advance(10 * time.Minute)
				expect(key, "read", "mcp:github:issue-"+string(rune('a'+i%26)), "ALLOWED")
			}
			e.flushTrust(t)
		}
		nextDay := func(day int) {
			e.clock.Advance(start.AddDate(0, 0, day).Sub(e.clock.Now()))
		}

		// The well-behaved agent, three weeks.
		var levels []string
		for day := range 21 {
			nextDay(day)
			workDay(good.Token)
			levels = append(levels, e.trustOf(t, owner, good.Agent.ID).Level)
			if day == 0 {
				// Standard after its first day: deploys open.
				expect(good.Token, "run", "mcp:deploy:prod", "ALLOWED")
			}
		}
		if levels[0] != "standard" || levels[20] != "trusted" {
			t.Fatalf("levels day by day %v", levels)
		}
		for i := 1; i < len(levels); i++ {
			if trust.Level(levels[i]).Rank() < trust.Level(levels[i-1]).Rank() {
				t.Fatalf("a well-behaved agent lost a level: %v", levels)
			}
		}
		final := e.trustOf(t, owner, good.Agent.ID)
		t.Logf("well-behaved agent, level day by day: %v; score after 3 weeks %.1f", levels, final.Score)
		if final.Score < 80 {
			t.Fatalf("after three weeks %+v", final)
		}
		// Trusted: payments no longer wait for a person.
		expect(good.Token, "pay", "mcp:payments:invoice", "ALLOWED")

		// The prober works two honest days (standard), then probes.
		nextDay(21)
		workDay(prober.Token)
		nextDay(22)
		workDay(prober.Token)
		if v := e.trustOf(t, owner, prober.Agent.ID); v.Level != "standard" {
			t.Fatalf("prober before probing %+v", v)
		}
		expect(prober.Token, "run", "mcp:deploy:prod", "ALLOWED")

		probes := 0
		var tooLow decision
		for v := e.trustOf(t, owner, prober.Agent.ID); v.Score >= 20; v = e.trustOf(t, owner, prober.Agent.ID) {
			if probes > 20 {
				t.Fatalf("still %v after %d probes", v, probes)
			}
			e.clock.Advance(time.Minute)
			expect(prober.Token, "read", "billing:invoices:"+string(rune('a'+probes)), "PERMISSION_DENIED")
			probes++
			e.flushTrust(t)
			if v := e.trustOf(t, owner, prober.Agent.ID); tooLow.AuditID == "" && v.Score < 60 && v.Score >= 20 {
				// Below standard: the deploy it could make an hour ago is
				// refused, before anything is counted.
				tooLow = expect(prober.Token, "run", "mcp:deploy:prod", "TRUST_TOO_LOW")
			}
		}
		if tooLow.AuditID == "" {
			t.Fatal("the prober was never refused TRUST_TOO_LOW")
		}
		t.Logf("prober suspended after %d probes, score %.1f", probes, e.trustOf(t, owner, prober.Agent.ID).Score)
		// Crossing 20 suspended it: every call is refused now.
		expect(prober.Token, "read", "mcp:github:issues", "AGENT_SUSPENDED")
		var shown struct {
			Status string `json:"status"`
		}
		owner.do("GET", "/api/auth/agents/"+prober.Agent.ID, nil).must(t, 200).decode(t, &shown)
		if shown.Status != "suspended" {
			t.Fatalf("prober status %q", shown.Status)
		}
		mail := e.waitMailText("owner@example.com", "Your agent prober was suspended")
		if !strings.Contains(mail, prober.Agent.ID) || !strings.Contains(mail, "stop bad agents") {
			t.Fatalf("suspension mail:\n%s", mail)
		}

		// The audit trail: the refusal names the policy and the level; the
		// alert and the suspension are security records.
		recs := auditOf(t, e.store, prober.Agent.ID)
		var sawTooLow, sawAlert, sawSuspended, probeRecs int
		for _, r := range recs {
			var x map[string]any
			_ = json.Unmarshal(r.Extra, &x)
			switch {
			case r.Event == "authorize" && r.Reason == "TRUST_TOO_LOW":
				if x["trustPolicy"] == nil || x["trustLevel"] == nil || r.ID != tooLow.AuditID {
					t.Fatalf("TRUST_TOO_LOW record %+v extra %v", r, x)
				}
				sawTooLow++
			case r.Event == "authorize" && x["probe"] == true:
				probeRecs++
			case r.Event == trust.EventAlert:
				if x["policyName"] != "tell the platform team" || x["score"].(float64) >= 40 {
					t.Fatalf("alert record extra %v", x)
				}
				sawAlert++
			case r.Event == "agent.suspended":
				if x["reason"] != "trust" || x["policyName"] != "stop bad agents" || x["score"].(float64) >= 20 || r.PrincipalID != "trust" {
					t.Fatalf("suspension record %+v extra %v", r, x)
				}
				sawSuspended++
			}
		}
		if sawTooLow != 1 || sawAlert != 1 || sawSuspended != 1 || probeRecs != probes {
			t.Fatalf("audit trail: %d TRUST_TOO_LOW, %d alerts, %d suspensions, %d/%d probes", sawTooLow, sawAlert, sawSuspended, probeRecs, probes)
		}
		// The events webhooks get.
		events, err := e.store.Events().Pending(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var alerted, suspended, policies int
		for _, ev := range events {
			switch {
			case ev.Type == trust.EventAlert && ev.Subject == prober.Agent.ID:
				alerted++
			case ev.Type == "agent.suspended" && ev.Subject == prober.Agent.ID && strings.Contains(string(ev.Payload), `"reason":"trust"`):
				suspended++
			case ev.Type == trust.EventPolicyCreated:
				policies++
			case ev.Type == trust.EventAlert || ev.Type == "agent.suspended":
				t.Fatalf("event about another agent: %+v", ev)
			}
		}
		if alerted != 1 || suspended != 1 || policies != 4 {
			t.Fatalf("events: %d alerts, %d suspensions, %d policies created", alerted, suspended, policies)
		}

		// Rebuilding both scores from the audit log agrees.
		e.recomputeAgrees(t, good.Agent.ID)
		e.recomputeAgrees(t, prober.Agent.ID)

		// The owner resumes the prober: no policy overrules a person until
		// its score recovers and falls again.
		owner.do("PATCH", "/api/auth/agents/"+prober.Agent.ID, map[string]any{"status": "active"}).must(t, 200)
		e.clock.Advance(time.Minute)
		expect(prober.Token, "read", "mcp:github:issues", "ALLOWED")
		e.flushTrust(t)
		expect(prober.Token, "read", "mcp:github:issues", "ALLOWED")
		expect(prober.Token, "run", "mcp:deploy:prod", "TRUST_TOO_LOW")
	})
}

// auditOf returns every audit record about an agent, oldest first.
func auditOf(t *testing.T, s storage.Store, agentID string) []storage.AuditRecord {
	t.Helper()
	var out []storage.AuditRecord
	f := storage.AuditFilter{AgentID: agentID, Limit: storage.AuditQueryMax}
	for {
		page, next, err := s.Audit().Query(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
