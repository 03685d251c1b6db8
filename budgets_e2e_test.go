package kavach_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

type budgetJSON struct {
	ID        string `json:"id"`
	ScopeType string `json:"scopeType"`
	ScopeID   string `json:"scopeId"`
	Metric    string `json:"metric"`
	Period    string `json:"period"`
	Limit     any    `json:"limit"`
	Action    string `json:"action"`
	Usage     *struct {
		PeriodKey string    `json:"periodKey"`
		ResetsAt  time.Time `json:"resetsAt"`
		Used      any       `json:"used"`
		Remaining any       `json:"remaining"`
		Exhausted bool      `json:"exhausted"`
	} `json:"usage"`
}

func budgetByID(list []budgetJSON, id string) budgetJSON {
	for _, b := range list {
		if b.ID == id {
			return b
		}
	}
	return budgetJSON{}
}

// Budgets end to end over HTTP: an owner sets a calls budget and a cost
// budget on an agent; the agent's fourth call of the day is refused; the
// agent reports cost with its key until the suspend budget suspends it;
// the next day the calls counter starts over.
func TestBudgetsAPI(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		owner := e.client()
		owner.signUp("owner@example.com")
		var created struct {
			Agent struct {
				ID string `json:"id"`
			} `json:"agent"`
			Token string `json:"token"`
		}
		owner.do("POST", "/api/auth/agents", map[string]any{
			"name": "Spender", "permissions": []map[string]any{{"resource": "mcp:github:*", "actions": []string{"read"}}},
		}).must(t, 201).decode(t, &created)
		id, key := created.Agent.ID, created.Token
		base := "/api/auth/agents/" + id

		var calls budgetJSON
		owner.do("POST", base+"/budgets", map[string]any{"metric": "calls", "period": "day", "limit": 3, "action": "block"}).
			must(t, 201).decode(t, &calls)
		if calls.ScopeType != "agent" || calls.ScopeID != id || calls.Limit != 3.0 || calls.Action != "block" {
			t.Fatalf("created %+v", calls)
		}
		for i := range 3 {
			if _, d := e.decide(t, key, "read", "mcp:github:issues"); !d.Allowed {
				t.Fatalf("call %d: %+v", i+1, d)
			}
		}
		if status, d := e.decide(t, key, "read", "mcp:github:issues"); status != 200 || d.Allowed || d.Code != "BUDGET_EXCEEDED" || d.AuditID == "" {
			t.Fatalf("fourth call: %d %+v", status, d)
		}
		var list []budgetJSON
		owner.do("GET", base+"/budgets", nil).must(t, 200).decode(t, &list)
		if len(list) != 1 || list[0].Usage == nil || list[0].Usage.Used != 3.0 || list[0].Usage.Remaining != 0.0 || !list[0].Usage.Exhausted {
			t.Fatalf("budgets %+v", list)
		}

		// A cost budget that suspends; the agent reports with its key.
		var cost budgetJSON
		owner.do("POST", base+"/budgets", map[string]any{"metric": "cost", "period": "month", "limit": "1.50", "action": "suspend"}).
			must(t, 201).decode(t, &cost)
		if cost.Limit != "1.5" {
			t.Fatalf("cost limit %v", cost.Limit)
		}
		agent := e.client()
		agent.headers["Authorization"] = "Bearer " + key
		var rep struct {
			Budgets   []budgetJSON `json:"budgets"`
			Suspended bool         `json:"suspended"`
		}
		agent.do("POST", base+"/usage", map[string]any{"cost": 1.0}).must(t, 200).decode(t, &rep)
		if rep.Suspended || len(rep.Budgets) != 2 || budgetByID(rep.Budgets, cost.ID).Usage.Used != "1" {
			t.Fatalf("first report %+v", rep)
		}
		// The owner may report too (with a session).
		owner.do("POST", base+"/usage", map[string]any{"cost": "0.25"}).must(t, 200).decode(t, &rep)
		if rep.Suspended {
			t.Fatalf("owner's report %+v", rep)
		}
		agent.do("POST", base+"/usage", map[string]any{"cost": "0.25", "at": e.clock.Now().Format(time.RFC3339)}).must(t, 200).decode(t, &rep)
		if b := budgetByID(rep.Budgets, cost.ID); !rep.Suspended || b.Usage.Used != "1.5" || !b.Usage.Exhausted {
			t.Fatalf("crossing report %+v", rep)
		}
		if _, d := e.decide(t, key, "read", "mcp:github:issues"); d.Code != "AGENT_SUSPENDED" {
			t.Fatalf("after the suspension: %+v", d)
		}
		var ag struct {
			Status string `json:"status"`
		}
		owner.do("GET", base, nil).must(t, 200).decode(t, &ag)
		if ag.Status != "suspended" {
			t.Fatalf("agent status %s", ag.Status)
		}

		// The owner lifts the cost budget and resumes the agent: the day's
		// calls are still used up; the next day they start over.
		owner.do("DELETE", base+"/budgets/"+cost.ID, nil).must(t, 200)
		owner.do("DELETE", base+"/budgets/"+cost.ID, nil).mustError(t, 404, "BUDGET_NOT_FOUND")
		owner.do("PATCH", base, map[string]any{"status": "active"}).must(t, 200)
		if _, d := e.decide(t, key, "read", "mcp:github:issues"); d.Code != "BUDGET_EXCEEDED" {
			t.Fatalf("resumed, same day: %+v", d)
		}
		now := e.clock.Now()
		e.clock.Advance(now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute).Sub(now))
		for i := range 3 {
			if _, d := e.decide(t, key, "read", "mcp:github:issues"); !d.Allowed {
				t.Fatalf("next day, call %d: %+v", i+1, d)
			}
		}
		if _, d := e.decide(t, key, "read", "mcp:github:issues"); d.Code != "BUDGET_EXCEEDED" {
			t.Fatalf("next day, fourth call: %+v", d)
		}

		// The audit log has the suspension, by the agent, for the budget.
		var audit struct {
			Records []struct {
				Event         string `json:"event"`
				PrincipalType string `json:"principalType"`
				Reason        string `json:"reason"`
			} `json:"records"`
		}
		owner.do("GET", "/api/auth/audit?agentId="+id+"&event=agent.suspended", nil).must(t, 200).decode(t, &audit)
		if len(audit.Records) != 1 || audit.Records[0].PrincipalType != "agent" {
			t.Fatalf("suspension audit %+v", audit.Records)
		}
	})
}

// TestBudgetsAPIAccess: validation, and who may see and change which
// budgets.
func TestBudgetsAPIAccess(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		owner := e.client()
		me := owner.signUp("owner@example.com")
		var created struct {
			Agent struct {
				ID string `json:"id"`
			} `json:"agent"`
			Token string `json:"token"`
		}
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "Bot"}).must(t, 201).decode(t, &created)
		base := "/api/auth/agents/" + created.Agent.ID

		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"metric": "tokens", "period": "day", "limit": 1}, "metric"},
			{map[string]any{"metric": "calls", "period": "week", "limit": 1}, "period"},
			{map[string]any{"metric": "calls", "period": "day", "limit": 1, "action": "revoke"}, "action"},
			{map[string]any{"metric": "calls", "period": "day"}, "limit"},
			{map[string]any{"metric": "calls", "period": "day", "limit": 1.5}, "limit"},
			{map[string]any{"metric": "calls", "period": "day", "limit": -2}, "limit"},
			{map[string]any{"metric": "cost", "period": "day", "limit": "0.1234567"}, "limit"},
			{map[string]any{"metric": "cost", "period": "day", "limit": 1e-7}, "limit"},
			{map[string]any{"metric": "cost", "period": "day", "limit": true}, "limit"},
			{map[string]any{"metric": "calls", "period": "day", "limit": 1, "scopeType": "user"}, "scopeType"},
		} {
			r := owner.do("POST", base+"/budgets", c.body).mustError(t, 400, "INVALID_REQUEST")
			if !strings.Contains(r.Error.Message, c.field) {
				t.Errorf("%v: message %q does not name %s", c.body, r.Error.Message, c.field)
			}
		}
		var b budgetJSON
		owner.do("POST", base+"/budgets", map[string]any{"metric": "cost", "period": "day", "limit": 2}).must(t, 201).decode(t, &b)
		if b.Action != "block" || b.Limit != "2" {
			t.Fatalf("defaults %+v", b)
		}
		owner.do("POST", base+"/budgets", map[string]any{"metric": "cost", "period": "day", "limit": 5}).mustError(t, 409, "BUDGET_EXISTS")

		// Usage reports: validation and credentials.
		agent := e.client()
		agent.headers["Authorization"] = "Bearer " + created.Token
		agent.do("POST", base+"/usage", map[string]any{}).mustError(t, 400, "INVALID_REQUEST")
		agent.do("POST", base+"/usage", map[string]any{"cost": "-1"}).mustError(t, 400, "INVALID_REQUEST")
		agent.do("POST", base+"/usage", map[string]any{"cost": 1, "at": "yesterday"}).mustError(t, 400, "INVALID_REQUEST")
		agent.do("POST", base+"/usage", map[string]any{"cost": 1, "calls": 1.5}).mustError(t, 400, "INVALID_REQUEST")
		agent.do("POST", base+"/usage", map[string]any{"cost": 1, "at": e.clock.Now().Add(time.Hour).Format(time.RFC3339)}).mustError(t, 400, "INVALID_REQUEST")
		e.client().do("POST", base+"/usage", map[string]any{"cost": 1}).mustError(t, 401, "UNAUTHENTICATED")
		bad := e.client()
		bad.headers["Authorization"] = "Bearer kv_" + strings.Repeat("x", 43)
		bad.do("POST", base+"/usage", map[string]any{"cost": 1}).mustError(t, 401, "UNAUTHENTICATED")

		// A stranger sees nothing of it; the stranger's agent cannot report
		// for it.
		stranger := e.client()
		stranger.signUp("stranger@example.com")
		stranger.do("GET", base+"/budgets", nil).mustError(t, 404, "AGENT_NOT_FOUND")
		stranger.do("POST", base+"/budgets", map[string]any{"metric": "calls", "period": "day", "limit": 1}).mustError(t, 404, "AGENT_NOT_FOUND")
		stranger.do("DELETE", base+"/budgets/"+b.ID, nil).mustError(t, 404, "AGENT_NOT_FOUND")
		stranger.do("POST", base+"/usage", map[string]any{"cost": 1}).mustError(t, 404, "AGENT_NOT_FOUND")
		stranger.do("DELETE", "/api/auth/budgets/"+b.ID, nil).mustError(t, 404, "BUDGET_NOT_FOUND")
		var theirs struct {
			Agent struct {
				ID string `json:"id"`
			} `json:"agent"`
			Token string `json:"token"`
		}
		stranger.do("POST", "/api/auth/agents", map[string]any{"name": "Other"}).must(t, 201).decode(t, &theirs)
		other := e.client()
		other.headers["Authorization"] = "Bearer " + theirs.Token
		other.do("POST", base+"/usage", map[string]any{"cost": 1}).mustError(t, 404, "AGENT_NOT_FOUND")

		// User scope: my own budgets, not others'; organizations are for
		// admins.
		var mine budgetJSON
		owner.do("POST", "/api/auth/budgets", map[string]any{"metric": "calls", "period": "month", "limit": 1000, "action": "warn"}).
			must(t, 201).decode(t, &mine)
		if mine.ScopeType != "user" || mine.ScopeID != me.User.ID {
			t.Fatalf("user budget %+v", mine)
		}
		var list []budgetJSON
		owner.do("GET", "/api/auth/budgets", nil).must(t, 200).decode(t, &list)
		if len(list) != 1 || list[0].ID != mine.ID || list[0].Usage == nil {
			t.Fatalf("my budgets %+v", list)
		}
		owner.do("GET", base+"/budgets", nil).must(t, 200).decode(t, &list)
		if len(list) != 2 || budgetByID(list, mine.ID).ScopeType != "user" {
			t.Fatalf("the agent's budgets, the owner's included: %+v", list)
		}
		// The owner's budget is not the agent's to delete.
		owner.do("DELETE", base+"/budgets/"+mine.ID, nil).mustError(t, 404, "BUDGET_NOT_FOUND")
		stranger.do("GET", "/api/auth/budgets?scopeType=user&scopeId="+me.User.ID, nil).mustError(t, 403, "FORBIDDEN")
		stranger.do("POST", "/api/auth/budgets", map[string]any{"scopeType": "user", "scopeId": me.User.ID, "metric": "calls", "period": "day", "limit": 0}).
			mustError(t, 403, "FORBIDDEN")
		stranger.do("DELETE", "/api/auth/budgets/"+mine.ID, nil).mustError(t, 404, "BUDGET_NOT_FOUND")
		owner.do("POST", "/api/auth/budgets", map[string]any{"scopeType": "organization", "scopeId": "org_1", "metric": "calls", "period": "day", "limit": 1}).
			mustError(t, 403, "FORBIDDEN")
		owner.do("GET", "/api/auth/budgets?scopeType=team&scopeId=x", nil).mustError(t, 400, "INVALID_REQUEST")
		e.client().do("GET", "/api/auth/budgets", nil).mustError(t, 401, "UNAUTHENTICATED")

		// A server admin manages any scope.
		admin := e.client()
		admin.signUp("root@example.com")
		admin.do("GET", strings.TrimPrefix(e.waitMail("root@example.com", "Verify your email"), e.url), nil).must(t, 200)
		var org budgetJSON
		admin.do("POST", "/api/auth/budgets", map[string]any{"scopeType": "organization", "scopeId": "org_1", "metric": "cost", "period": "month", "limit": "100.5", "action": "warn"}).
			must(t, 201).decode(t, &org)
		admin.do("GET", "/api/auth/budgets?scopeType=organization&scopeId=org_1", nil).must(t, 200).decode(t, &list)
		if len(list) != 1 || list[0].ID != org.ID || list[0].Limit != "100.5" {
			t.Fatalf("organization budgets %+v", list)
		}
		admin.do("GET", "/api/auth/budgets?scopeType=organization", nil).mustError(t, 400, "INVALID_REQUEST")
		admin.do("GET", "/api/auth/budgets?scopeType=user&scopeId="+me.User.ID, nil).must(t, 200)
		admin.do("POST", "/api/auth/budgets", map[string]any{"scopeType": "user", "scopeId": "usr_missing", "metric": "calls", "period": "day", "limit": 1}).
			mustError(t, 400, "INVALID_REQUEST")
		admin.do("GET", base+"/budgets", nil).must(t, 200)
		admin.do("POST", base+"/usage", map[string]any{"cost": "0.5"}).must(t, 200)
		admin.do("DELETE", "/api/auth/budgets/"+mine.ID, nil).must(t, 200)
		admin.do("DELETE", "/api/auth/budgets/"+org.ID, nil).must(t, 200)
	})
}

func TestBudgetTimeZoneConfig(t *testing.T) {
	for zone, ok := range map[string]bool{"": true, "UTC": true, "Asia/Kolkata": true, "America/Los_Angeles": true,
		"Local": false, "Mars/Olympus_Mons": false, "../etc/passwd": false} {
		k, err := kavach.NewWithStore(kavach.Config{Secret: testSecret, BudgetTimeZone: zone, Email: kavach.EmailConfig{DevDir: t.TempDir()}},
			storagetestOpenSQLite(t))
		if err == nil {
			k.Close()
		}
		if (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "budget time zone") {
			t.Errorf("zone %q: %v", zone, err)
		}
	}
}
