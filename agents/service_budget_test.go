package agents_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

func agentScope(id string) storage.BudgetScope {
	return storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: id}
}

func userScope(id string) storage.BudgetScope {
	return storage.BudgetScope{Type: storage.BudgetScopeUser, ID: id}
}

func (e *env) budget(t testing.TB, scope storage.BudgetScope, metric, period, limit, action string) storage.Budget {
	t.Helper()
	b, err := e.svc.CreateBudget(t.Context(), agents.BudgetInput{Scope: scope, Metric: metric, Period: period,
		Limit: agents.Amount(limit), Action: action})
	if err != nil {
		t.Fatalf("create budget: %v", err)
	}
	return b
}

func (e *env) report(t testing.TB, agentID, cost string) agents.UsageResult {
	t.Helper()
	res, err := e.svc.ReportUsage(t.Context(), agentID, agents.UsageReport{Cost: agents.Amount(cost)})
	if err != nil {
		t.Fatalf("report usage: %v", err)
	}
	return res
}

func (e *env) usage(t testing.TB, scope storage.BudgetScope, period string) storage.Usage {
	t.Helper()
	u, err := e.store.Usage().Get(t.Context(), storage.UsageKey{Scope: scope, Period: period})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// events returns the pending outbox events of one type.
func (e *env) events(t testing.TB, typ string) []storage.Event {
	t.Helper()
	all, err := e.store.Events().Pending(t.Context(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.Event
	for _, ev := range all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) status(t testing.TB, agentID string) string {
	t.Helper()
	a, _, err := e.svc.Get(t.Context(), agentID)
	if err != nil {
		t.Fatal(err)
	}
	return a.Status
}

// nextDay moves the clock to 00:00 UTC of the next day (t0 is 10:00).
func (e *env) nextDay() {
	now := e.clock.Now()
	e.clock.Advance(now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now))
}

func TestBudgetCallsBlock(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, grants, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		other, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		read := func(id string) agents.Decision { return e.decide(t, id, "read", "mcp:github:x") }
		wantDecision(t, "before the budget (cached)", read(a.ID), true, agents.CodeAllowed)
		if u := e.usage(t, agentScope(a.ID), "2026-03-04"); u != (storage.Usage{}) {
			t.Fatalf("an agent without budgets was counted: %+v", u)
		}
		b := e.budget(t, agentScope(a.ID), storage.BudgetCalls, storage.BudgetDay, "3", "")
		if b.Action != storage.BudgetBlock || b.Limit != 3 {
			t.Fatalf("budget %+v", b)
		}

		// The new budget applies at once, though the agent was cached.
		for i := range 3 {
			wantDecision(t, fmt.Sprintf("call %d", i+1), read(a.ID), true, agents.CodeAllowed)
		}
		check := e.svc.Decide(ctx, agents.DecideRequest{AgentID: a.ID, Action: "read", Resource: "mcp:github:x", DryRun: true})
		wantDecision(t, "dry run when used up", check, false, agents.CodeBudgetExceeded)
		refused := read(a.ID)
		wantDecision(t, "fourth call", refused, false, agents.CodeBudgetExceeded)
		if !strings.Contains(refused.Reason, "daily budget of 3 calls") {
			t.Fatalf("reason %q", refused.Reason)
		}
		wantDecision(t, "another agent", read(other.ID), true, agents.CodeAllowed)
		// Refused calls and denied ones are not counted.
		wantDecision(t, "denied", e.decide(t, a.ID, "write", "mcp:github:x"), false, agents.CodePermissionDenied)
		if u := e.usage(t, agentScope(a.ID), "2026-03-04"); u.Calls != 3 {
			t.Fatalf("counted %d calls, want 3", u.Calls)
		}
		recs := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID}))
		r := recs[refused.AuditID]
		if r.Result != storage.AuditDeny || r.Reason != agents.CodeBudgetExceeded ||
			string(r.Extra) != `{"grant":"`+grants[0].ID+`","budget":"`+b.ID+`"}` {
			t.Fatalf("refused record %+v (extra %s)", r, r.Extra)
		}

		st, err := e.svc.AgentBudgets(ctx, a.ID)
		if err != nil || len(st) != 1 || st[0].Used != 3 || !st[0].Exhausted || st[0].PeriodKey != "2026-03-04" ||
			!st[0].PeriodEnd.Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("status %+v, %v", st, err)
		}

		// The next day starts over.
		e.nextDay()
		wantDecision(t, "next day", read(a.ID), true, agents.CodeAllowed)
		if u := e.usage(t, agentScope(a.ID), "2026-03-05"); u.Calls != 1 {
			t.Fatalf("next day's counter %+v", u)
		}

		// Deleting the budget lifts it at once.
		for range 2 {
			read(a.ID)
		}
		wantDecision(t, "used up again", read(a.ID), false, agents.CodeBudgetExceeded)
		if err := e.svc.DeleteBudget(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "budget deleted", read(a.ID), true, agents.CodeAllowed)
		if err := e.svc.DeleteBudget(ctx, b.ID); !errors.Is(err, agents.ErrBudgetNotFound) {
			t.Fatalf("delete again: %v", err)
		}
		if n := len(e.events(t, agents.EventBudgetCreated)); n != 1 {
			t.Fatalf("%d budget.created events", n)
		}
		if n := len(e.events(t, agents.EventBudgetDeleted)); n != 1 {
			t.Fatalf("%d budget.deleted events", n)
		}
	})
}

func TestBudgetWarn(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		w := e.budget(t, agentScope(a.ID), storage.BudgetCalls, storage.BudgetDay, "2", storage.BudgetWarn)
		read := func() agents.Decision { return e.decide(t, a.ID, "read", "mcp:github:x") }
		var ds []agents.Decision
		for range 4 {
			d := read()
			wantDecision(t, "warned call", d, true, agents.CodeAllowed)
			ds = append(ds, d)
		}
		evs := e.events(t, agents.EventBudgetWarning)
		if len(evs) != 1 || evs[0].Subject != w.ID {
			t.Fatalf("warning events %+v", evs)
		}
		var payload map[string]any
		if err := json.Unmarshal(evs[0].Payload, &payload); err != nil || payload["used"] != 2.0 || payload["limit"] != 2.0 ||
			payload["periodKey"] != "2026-03-04" || payload["agentId"] != a.ID {
			t.Fatalf("warning payload %s", evs[0].Payload)
		}
		recs := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID}))
		for i, d := range ds {
			warned := strings.Contains(string(recs[d.AuditID].Extra), `"budgetWarnings":["`+w.ID+`"]`)
			if warned != (i == 1) {
				t.Fatalf("call %d: audit extra %s", i+1, recs[d.AuditID].Extra)
			}
		}
		e.nextDay()
		read()
		read()
		if n := len(e.events(t, agents.EventBudgetWarning)); n != 2 {
			t.Fatalf("%d warnings after the second day's crossing, want 2", n)
		}
	})
}

func TestBudgetSuspendOnCalls(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		b := e.budget(t, agentScope(a.ID), storage.BudgetCalls, storage.BudgetMonth, "2", storage.BudgetSuspend)
		read := func() agents.Decision { return e.decide(t, a.ID, "read", "mcp:github:x") }
		read()
		read()
		check := e.svc.Decide(t.Context(), agents.DecideRequest{AgentID: a.ID, Action: "read", Resource: "mcp:github:x", DryRun: true})
		wantDecision(t, "dry run", check, false, agents.CodeBudgetExceeded)
		if s := e.status(t, a.ID); s != storage.AgentActive {
			t.Fatalf("a dry run suspended the agent: %s", s)
		}
		wantDecision(t, "third call", read(), false, agents.CodeBudgetExceeded)
		if s := e.status(t, a.ID); s != storage.AgentSuspended {
			t.Fatalf("status %s, want suspended", s)
		}
		wantDecision(t, "after the suspension", read(), false, agents.CodeAgentSuspended)
		evs := e.events(t, agents.EventAgentSuspended)
		if len(evs) != 1 || !strings.Contains(string(evs[0].Payload), `"reason":"budget"`) ||
			!strings.Contains(string(evs[0].Payload), `"budgetId":"`+b.ID+`"`) {
			t.Fatalf("suspension events %+v", evs)
		}
		sec := e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindSecurity, Event: agents.EventAgentSuspended})
		if len(sec) != 1 || sec[0].PrincipalType != "agent" || sec[0].PrincipalID != a.ID {
			t.Fatalf("suspension audit %+v", sec)
		}
	})
}

// TestBudgetUserScope: a user's budget counts all the user's agents
// together, and applies at once to agents already cached.
func TestBudgetUserScope(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		b, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		stranger, _, _ := e.create(t, agents.CreateInput{OwnerUserID: e.newUser(t), Permissions: []agents.Grant{readGitHub}})
		read := func(id string) agents.Decision { return e.decide(t, id, "read", "mcp:github:x") }
		for _, id := range []string{a.ID, b.ID, stranger.ID} {
			wantDecision(t, "cache it", read(id), true, agents.CodeAllowed)
		}
		e.budget(t, userScope(e.owner), storage.BudgetCalls, storage.BudgetDay, "3", storage.BudgetBlock)
		e.budget(t, agentScope(a.ID), storage.BudgetCalls, storage.BudgetDay, "10", storage.BudgetBlock)
		wantDecision(t, "a 1", read(a.ID), true, agents.CodeAllowed)
		wantDecision(t, "a 2", read(a.ID), true, agents.CodeAllowed)
		wantDecision(t, "b 1", read(b.ID), true, agents.CodeAllowed)
		d := read(b.ID)
		wantDecision(t, "b 2: the owner's budget is used up", d, false, agents.CodeBudgetExceeded)
		if !strings.Contains(d.Reason, "its owner's") {
			t.Fatalf("reason %q", d.Reason)
		}
		wantDecision(t, "a 3", read(a.ID), false, agents.CodeBudgetExceeded)
		wantDecision(t, "another user's agent", read(stranger.ID), true, agents.CodeAllowed)
		// The refused call of a was counted nowhere, its own counter included.
		if u := e.usage(t, agentScope(a.ID), "2026-03-04"); u.Calls != 2 {
			t.Fatalf("agent counter %+v", u)
		}
		if u := e.usage(t, userScope(e.owner), "2026-03-04"); u.Calls != 3 {
			t.Fatalf("user counter %+v", u)
		}
		st, err := e.svc.AgentBudgets(t.Context(), a.ID)
		if err != nil || len(st) != 2 {
			t.Fatalf("agent budgets %+v, %v", st, err)
		}
		mine, err := e.svc.ScopeBudgets(t.Context(), userScope(e.owner))
		if err != nil || len(mine) != 1 || mine[0].Used != 3 {
			t.Fatalf("user budgets %+v, %v", mine, err)
		}
	})
}

func TestBudgetCost(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		b, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		read := func(id string) agents.Decision { return e.decide(t, id, "read", "mcp:github:x") }
		block := e.budget(t, agentScope(a.ID), storage.BudgetCost, storage.BudgetMonth, "1", storage.BudgetBlock)
		warn := e.budget(t, userScope(e.owner), storage.BudgetCost, storage.BudgetDay, "0.5", storage.BudgetWarn)
		suspend := e.budget(t, userScope(e.owner), storage.BudgetCost, storage.BudgetMonth, "2.000001", storage.BudgetSuspend)

		res := e.report(t, a.ID, "0.3")
		if len(res.Budgets) != 3 || res.Suspended {
			t.Fatalf("first report %+v", res)
		}
		byID := map[string]agents.BudgetStatus{}
		for _, st := range res.Budgets {
			byID[st.ID] = st
		}
		if byID[block.ID].Used != 300_000 || byID[warn.ID].Used != 300_000 || byID[block.ID].PeriodKey != "2026-03" {
			t.Fatalf("totals %+v", byID)
		}
		wantDecision(t, "below the cost limit", read(a.ID), true, agents.CodeAllowed)
		if n := len(e.events(t, agents.EventBudgetWarning)); n != 0 {
			t.Fatalf("%d warnings below the limit", n)
		}
		e.report(t, a.ID, "0.7") // 1.0: the block budget is reached, the daily warn one crossed
		if evs := e.events(t, agents.EventBudgetWarning); len(evs) != 1 || evs[0].Subject != warn.ID ||
			!strings.Contains(string(evs[0].Payload), `"used":"1"`) {
			t.Fatalf("warnings %+v", evs)
		}
		d := read(a.ID)
		wantDecision(t, "cost reached", d, false, agents.CodeBudgetExceeded)
		if !strings.Contains(d.Reason, "monthly cost budget of 1 ") {
			t.Fatalf("reason %q", d.Reason)
		}
		wantDecision(t, "the other agent has no cost block", read(b.ID), true, agents.CodeAllowed)
		e.report(t, a.ID, "0.25") // more reports are still taken
		if n := len(e.events(t, agents.EventBudgetWarning)); n != 1 {
			t.Fatalf("%d warnings, want still 1", n)
		}

		// b's report brings the owner's month to 2.000001: b is suspended,
		// a (not reporting, blocked anyway) is not.
		res = e.report(t, b.ID, "0.75")
		if res.Suspended {
			t.Fatalf("suspended below the limit: %+v", res)
		}
		res = e.report(t, b.ID, "0.000001")
		if !res.Suspended || e.status(t, b.ID) != storage.AgentSuspended || e.status(t, a.ID) != storage.AgentActive {
			t.Fatalf("suspension: %+v", res)
		}
		wantDecision(t, "suspended by cost", read(b.ID), false, agents.CodeAgentSuspended)
		evs := e.events(t, agents.EventAgentSuspended)
		if len(evs) != 1 || !strings.Contains(string(evs[0].Payload), suspend.ID) {
			t.Fatalf("suspension events %+v", evs)
		}
		// A suspended agent may still report; it is not suspended twice.
		if res := e.report(t, b.ID, "1"); res.Suspended {
			t.Fatal("suspended again")
		}
		// The owner resumes b: the user's exhausted suspend budget refuses its
		// next call and suspends it again.
		active := storage.AgentActive
		if _, _, err := e.svc.Update(t.Context(), b.ID, agents.UpdateInput{Status: &active}); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "resumed, budget still used up", read(b.ID), false, agents.CodeBudgetExceeded)
		if e.status(t, b.ID) != storage.AgentSuspended {
			t.Fatal("not suspended again")
		}

		// Next month, everything starts over.
		e.clock.Advance(31 * 24 * time.Hour)
		wantDecision(t, "next month", read(a.ID), true, agents.CodeAllowed)
	})
}

func TestBudgetTimeZone(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	e.clock.t = time.Date(2026, 11, 26, 7, 30, 0, 0, time.UTC) // 23:30 on the 25th in Los Angeles
	e.reconfigure(t, agents.Config{BudgetTimeZone: la})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	b := e.budget(t, agentScope(a.ID), storage.BudgetCalls, storage.BudgetDay, "1", storage.BudgetBlock)
	read := func() agents.Decision { return e.decide(t, a.ID, "read", "mcp:github:x") }
	wantDecision(t, "23:30", read(), true, agents.CodeAllowed)
	wantDecision(t, "23:45", read(), false, agents.CodeBudgetExceeded)
	if u := e.usage(t, agentScope(a.ID), "2026-11-25"); u.Calls != 1 {
		t.Fatalf("counted in %+v", u)
	}
	e.clock.Advance(30 * time.Minute) // midnight in Los Angeles, still the 26th in UTC
	wantDecision(t, "00:00", read(), true, agents.CodeAllowed)
	st, err := e.svc.ScopeBudgets(t.Context(), agentScope(a.ID))
	if err != nil || len(st) != 1 || st[0].ID != b.ID || st[0].PeriodKey != "2026-11-26" ||
		!st[0].PeriodEnd.Equal(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("status %+v, %v", st, err)
	}
}

func TestBudgetValidation(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	revoked, _, _ := e.create(t, agents.CreateInput{})
	if err := e.svc.Revoke(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	ok := agents.BudgetInput{Scope: agentScope(a.ID), Metric: "calls", Period: "day", Limit: "10", Action: "block"}
	cases := []struct {
		name  string
		edit  func(*agents.BudgetInput)
		field string
	}{
		{"scope type", func(in *agents.BudgetInput) { in.Scope.Type = "team" }, "scopeType"},
		{"empty scope", func(in *agents.BudgetInput) { in.Scope.ID = "" }, "scopeId"},
		{"unknown agent", func(in *agents.BudgetInput) { in.Scope.ID = "agt_missing" }, "scopeId"},
		{"unknown user", func(in *agents.BudgetInput) { in.Scope = userScope("usr_missing") }, "scopeId"},
		{"scope with NUL", func(in *agents.BudgetInput) { in.Scope.ID = "a\x00b" }, "scopeId"},
		{"long scope", func(in *agents.BudgetInput) { in.Scope.ID = strings.Repeat("x", 129) }, "scopeId"},
		{"metric", func(in *agents.BudgetInput) { in.Metric = "tokens" }, "metric"},
		{"period", func(in *agents.BudgetInput) { in.Period = "week" }, "period"},
		{"action", func(in *agents.BudgetInput) { in.Action = "throttle" }, "action"},
		{"no limit", func(in *agents.BudgetInput) { in.Limit = "" }, "limit"},
		{"fractional calls", func(in *agents.BudgetInput) { in.Limit = "2.5" }, "limit"},
		{"negative", func(in *agents.BudgetInput) { in.Limit = "-1" }, "limit"},
		{"cost decimals", func(in *agents.BudgetInput) { in.Metric, in.Limit = "cost", "0.0000001" }, "limit"},
		{"cost exponent", func(in *agents.BudgetInput) { in.Metric, in.Limit = "cost", "1e2" }, "limit"},
		{"warn at zero", func(in *agents.BudgetInput) { in.Action, in.Limit = "warn", "0" }, "limit"},
	}
	for _, c := range cases {
		in := ok
		c.edit(&in)
		_, err := e.svc.CreateBudget(t.Context(), in)
		var ve *agents.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %v, want a validation error on %s", c.name, err, c.field)
		}
	}
	in := ok
	in.Scope = agentScope(revoked.ID)
	if _, err := e.svc.CreateBudget(t.Context(), in); !errors.Is(err, agents.ErrAgentRevoked) {
		t.Errorf("revoked agent: %v", err)
	}
	// An organization is not checked here (it lives elsewhere).
	e.budget(t, storage.BudgetScope{Type: storage.BudgetScopeOrganization, ID: "org_1"}, "cost", "month", "1000", "warn")
	e.budget(t, ok.Scope, "calls", "day", "10", "")
	if _, err := e.svc.CreateBudget(t.Context(), ok); !errors.Is(err, agents.ErrBudgetExists) {
		t.Errorf("duplicate: %v", err)
	}
}

func TestReportUsageValidation(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	cases := []struct {
		name  string
		r     agents.UsageReport
		field string
	}{
		{"nothing", agents.UsageReport{}, "cost"},
		{"bad cost", agents.UsageReport{Cost: "0.1.2"}, "cost"},
		{"float noise", agents.UsageReport{Cost: "0.30000000000000004"}, "cost"},
		{"negative calls", agents.UsageReport{Calls: -1}, "calls"},
		{"too many calls", agents.UsageReport{Calls: agents.MaxReportedCalls + 1}, "calls"},
		{"future", agents.UsageReport{Cost: "1", At: t0.Add(time.Hour)}, "at"},
		{"too old", agents.UsageReport{Cost: "1", At: t0.Add(-36 * 24 * time.Hour)}, "at"},
	}
	for _, c := range cases {
		_, err := e.svc.ReportUsage(t.Context(), a.ID, c.r)
		var ve *agents.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %v, want a validation error on %s", c.name, err, c.field)
		}
	}
	if _, err := e.svc.ReportUsage(t.Context(), "agt_missing", agents.UsageReport{Cost: "1"}); !errors.Is(err, agents.ErrAgentNotFound) {
		t.Errorf("unknown agent: %v", err)
	}
	// Calls alone, and a report placed yesterday.
	res, err := e.svc.ReportUsage(t.Context(), a.ID, agents.UsageReport{Calls: 4, At: t0.Add(-24 * time.Hour)})
	if err != nil || res.Suspended {
		t.Fatalf("calls report: %+v, %v", res, err)
	}
	if u := e.usage(t, agentScope(a.ID), "2026-03-03"); u != (storage.Usage{Calls: 4}) {
		t.Fatalf("yesterday's counter %+v", u)
	}
	if u := e.usage(t, userScope(e.owner), "2026-03"); u != (storage.Usage{Calls: 4}) {
		t.Fatalf("the owner's month %+v", u)
	}
	if err := e.svc.Revoke(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ReportUsage(t.Context(), a.ID, agents.UsageReport{Cost: "1"}); !errors.Is(err, agents.ErrAgentRevoked) {
		t.Errorf("revoked agent: %v", err)
	}
}

// TestBudgetConcurrent: N parallel decisions against a calls budget of M
// allow exactly M, with a second counter (the owner's month) in the same
// transaction; a suspend budget suspends the agent exactly once.
func TestBudgetConcurrent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		const m, workers, each = 10, 8, 5
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		e.budget(t, agentScope(a.ID), storage.BudgetCalls, storage.BudgetDay, fmt.Sprint(m), storage.BudgetBlock)
		e.budget(t, userScope(e.owner), storage.BudgetCalls, storage.BudgetMonth, "1000", storage.BudgetWarn)
		var allowed, refused atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					switch d := e.decide(t, a.ID, "read", "mcp:github:x"); d.Code {
					case agents.CodeAllowed:
						allowed.Add(1)
					case agents.CodeBudgetExceeded:
						refused.Add(1)
					default:
						t.Errorf("decision %+v", d)
					}
				}
			})
		}
		wg.Wait()
		if allowed.Load() != m || refused.Load() != workers*each-m {
			t.Fatalf("allowed %d, refused %d; want %d and %d", allowed.Load(), refused.Load(), m, workers*each-m)
		}
		if u := e.usage(t, agentScope(a.ID), "2026-03-04"); u.Calls != m {
			t.Fatalf("agent counter %+v", u)
		}
		if u := e.usage(t, userScope(e.owner), "2026-03"); u.Calls != m {
			t.Fatalf("owner counter %+v: refused calls were counted", u)
		}

		s, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		e.budget(t, agentScope(s.ID), storage.BudgetCalls, storage.BudgetDay, fmt.Sprint(m), storage.BudgetSuspend)
		var suspendedAllowed atomic.Int64
		for range workers {
			wg.Go(func() {
				for range each {
					if d := e.decide(t, s.ID, "read", "mcp:github:x"); d.Allowed {
						suspendedAllowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if suspendedAllowed.Load() != m {
			t.Fatalf("allowed %d before the suspension, want %d", suspendedAllowed.Load(), m)
		}
		if e.status(t, s.ID) != storage.AgentSuspended {
			t.Fatal("not suspended")
		}
		if n := len(e.auditRecords(t, storage.AuditFilter{AgentID: s.ID, Event: agents.EventAgentSuspended})); n != 1 {
			t.Fatalf("%d suspension records, want 1", n)
		}
	})
}

// BenchmarkDecideWithBudget is BenchmarkDecide for an agent with a calls
// budget of its own and one of its owner's: each decision also counts the
// call in two counters (one transaction on SQLite).
func BenchmarkDecideWithBudget(b *testing.B) {
	s := storagetest.OpenSQLite(b)
	w := authz.NewAuditWriter(s.Audit())
	b.Cleanup(w.Close)
	e := &env{store: s, clock: &clock{t: t0}}
	e.svc = agents.NewService(s, w, agents.Config{})
	e.owner = e.newUser(b)
	a, _, _ := e.create(b, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	e.budget(b, agentScope(a.ID), storage.BudgetCalls, storage.BudgetDay, "1000000000000", storage.BudgetBlock)
	e.budget(b, userScope(e.owner), storage.BudgetCost, storage.BudgetMonth, "1000", storage.BudgetBlock)
	req := agents.DecideRequest{AgentID: a.ID, Action: "read", Resource: "mcp:github:x"}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d := e.svc.Decide(b.Context(), req); !d.Allowed {
				b.Errorf("decision %+v", d)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
