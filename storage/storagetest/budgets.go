package storagetest

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var budgetTests = []test{
	{"CreateGetListDelete", testBudgetCreateGetListDelete},
	{"Duplicates", testBudgetDuplicates},
	{"NotFound", testBudgetNotFound},
	{"LargeLimit", testBudgetLargeLimit},
}

var usageTests = []test{
	{"AddGet", testUsageAddGet},
	{"Caps", testUsageCaps},
	{"RollbackInTx", testUsageRollbackInTx},
	{"DeleteStale", testUsageDeleteStale},
}

func newBudget(scope storage.BudgetScope, metric, period, action string, limit int64) *storage.Budget {
	return &storage.Budget{ID: newID("bdg"), Scope: scope, Metric: metric, Period: period, Limit: limit, Action: action,
		CreatedAt: now(), UpdatedAt: now()}
}

func testBudgetCreateGetListDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	agent := storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: "agt_1"}
	user := storage.BudgetScope{Type: storage.BudgetScopeUser, ID: "usr_1"}
	org := storage.BudgetScope{Type: storage.BudgetScopeOrganization, ID: "org_1"}
	a := newBudget(agent, storage.BudgetCalls, storage.BudgetDay, storage.BudgetBlock, 100)
	b := newBudget(user, storage.BudgetCost, storage.BudgetMonth, storage.BudgetSuspend, 25_500_000)
	b.CreatedAt = a.CreatedAt.Add(time.Second)
	b.UpdatedAt = b.CreatedAt
	c := newBudget(org, storage.BudgetCalls, storage.BudgetMonth, storage.BudgetWarn, 0)
	c.CreatedAt = a.CreatedAt.Add(2 * time.Second)
	c.UpdatedAt = c.CreatedAt
	// Same scope ID, other type: a different scope.
	d := newBudget(storage.BudgetScope{Type: storage.BudgetScopeUser, ID: "agt_1"}, storage.BudgetCalls, storage.BudgetDay, storage.BudgetBlock, 5)
	for _, x := range []*storage.Budget{a, b, c, d} {
		must(t, "create", s.Budgets().Create(ctx, x))
	}
	got, err := s.Budgets().Get(ctx, b.ID)
	must(t, "get", err)
	wantSame(t, "get", got, b)
	wantUTC(t, "get", got.CreatedAt, got.UpdatedAt)

	all, err := s.Budgets().ListByScopes(ctx, []storage.BudgetScope{agent, user, org})
	must(t, "list", err)
	wantSame(t, "list three scopes", all, []storage.Budget{*a, *b, *c})
	one, err := s.Budgets().ListByScopes(ctx, []storage.BudgetScope{user})
	must(t, "list one scope", err)
	wantSame(t, "list one scope", one, []storage.Budget{*b})
	none, err := s.Budgets().ListByScopes(ctx, []storage.BudgetScope{{Type: storage.BudgetScopeAgent, ID: "agt_2"}})
	must(t, "list no budgets", err)
	if len(none) != 0 {
		t.Fatalf("list of a scope without budgets: %v", none)
	}
	if empty, err := s.Budgets().ListByScopes(ctx, nil); err != nil || len(empty) != 0 {
		t.Fatalf("list of no scopes: %v, %v", empty, err)
	}

	must(t, "delete", s.Budgets().Delete(ctx, a.ID))
	wantErr(t, "get deleted", func() error { _, err := s.Budgets().Get(ctx, a.ID); return err }(), storage.ErrNotFound)
	wantErr(t, "delete again", s.Budgets().Delete(ctx, a.ID), storage.ErrNotFound)
	all, err = s.Budgets().ListByScopes(ctx, []storage.BudgetScope{agent, user, org})
	must(t, "list after delete", err)
	wantSame(t, "list after delete", all, []storage.Budget{*b, *c})
}

func testBudgetDuplicates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	scope := storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: "agt_1"}
	a := newBudget(scope, storage.BudgetCalls, storage.BudgetDay, storage.BudgetBlock, 100)
	must(t, "create", s.Budgets().Create(ctx, a))
	dupID := newBudget(scope, storage.BudgetCost, storage.BudgetDay, storage.BudgetBlock, 1)
	dupID.ID = a.ID
	wantErr(t, "duplicate id", s.Budgets().Create(ctx, dupID), storage.ErrAlreadyExists)
	wantErr(t, "same scope, metric, period and action",
		s.Budgets().Create(ctx, newBudget(scope, storage.BudgetCalls, storage.BudgetDay, storage.BudgetBlock, 7)), storage.ErrAlreadyExists)
	// Any one difference makes another budget.
	for _, x := range []*storage.Budget{
		newBudget(scope, storage.BudgetCalls, storage.BudgetDay, storage.BudgetWarn, 80),
		newBudget(scope, storage.BudgetCalls, storage.BudgetMonth, storage.BudgetBlock, 1000),
		newBudget(scope, storage.BudgetCost, storage.BudgetDay, storage.BudgetBlock, 1),
		newBudget(storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: "agt_2"}, storage.BudgetCalls, storage.BudgetDay, storage.BudgetBlock, 1),
	} {
		must(t, fmt.Sprintf("create %s/%s/%s", x.Metric, x.Period, x.Action), s.Budgets().Create(ctx, x))
	}
}

func testBudgetNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.Budgets().Get(ctx, "missing")
	wantErr(t, "get", err, storage.ErrNotFound)
	wantErr(t, "delete", s.Budgets().Delete(ctx, "missing"), storage.ErrNotFound)
}

// testBudgetLargeLimit: limits are 64-bit (cost in micro-units grows
// fast).
func testBudgetLargeLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	b := newBudget(storage.BudgetScope{Type: storage.BudgetScopeUser, ID: "usr_1"}, storage.BudgetCost, storage.BudgetMonth, storage.BudgetBlock, math.MaxInt64)
	must(t, "create", s.Budgets().Create(ctx, b))
	got, err := s.Budgets().Get(ctx, b.ID)
	must(t, "get", err)
	if got.Limit != math.MaxInt64 {
		t.Fatalf("limit = %d, want %d", got.Limit, int64(math.MaxInt64))
	}
}

func usageKey(scopeID, period string) storage.UsageKey {
	return storage.UsageKey{Scope: storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: scopeID}, Period: period}
}

const noCap = math.MaxInt64

func testUsageAddGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	day, month := usageKey("agt_1", "2026-11-26"), usageKey("agt_1", "2026-11")
	if u, err := s.Usage().Get(ctx, day); err != nil || u != (storage.Usage{}) {
		t.Fatalf("counter never written: %+v, %v", u, err)
	}
	u, ok, err := s.Usage().Add(ctx, day, 1, 0, noCap, noCap, now())
	must(t, "first add", err)
	if !ok || u != (storage.Usage{Calls: 1}) {
		t.Fatalf("first add: %+v, %v", u, ok)
	}
	u, ok, err = s.Usage().Add(ctx, day, 2, 250_000, noCap, noCap, now())
	must(t, "second add", err)
	if !ok || u != (storage.Usage{Calls: 3, Cost: 250_000}) {
		t.Fatalf("second add: %+v, %v", u, ok)
	}
	got, err := s.Usage().Get(ctx, day)
	must(t, "get", err)
	if got != u {
		t.Fatalf("get = %+v, want %+v", got, u)
	}
	// Other periods, scope types and scope ids are other counters.
	for _, k := range []storage.UsageKey{month, usageKey("agt_2", "2026-11-26"),
		{Scope: storage.BudgetScope{Type: storage.BudgetScopeUser, ID: "agt_1"}, Period: "2026-11-26"}} {
		if u, err := s.Usage().Get(ctx, k); err != nil || u != (storage.Usage{}) {
			t.Fatalf("counter %+v: %+v, %v", k, u, err)
		}
	}
	// Large amounts (micro-units) are kept exactly.
	big := int64(1) << 53
	u, ok, err = s.Usage().Add(ctx, month, 0, big+1, noCap, noCap, now())
	must(t, "add large", err)
	if !ok || u.Cost != big+1 {
		t.Fatalf("large cost: %+v, %v", u, ok)
	}
	if _, _, err := s.Usage().Add(ctx, month, -1, 0, noCap, noCap, now()); err == nil {
		t.Fatal("a negative amount was added")
	}
}

func testUsageCaps(t *testing.T, s storage.Store) {
	ctx := t.Context()
	k := usageKey("agt_1", "2026-11-26")
	// A cap a new counter would already pass: refused, nothing stored.
	u, ok, err := s.Usage().Add(ctx, k, 1, 0, 0, noCap, now())
	must(t, "add over a zero cap", err)
	if ok || u != (storage.Usage{}) {
		t.Fatalf("add over a zero cap: %+v, %v", u, ok)
	}
	for i := range 3 {
		u, ok, err = s.Usage().Add(ctx, k, 1, 0, 3, noCap, now())
		must(t, "add within the cap", err)
		if !ok || u.Calls != int64(i+1) {
			t.Fatalf("add %d within the cap: %+v, %v", i+1, u, ok)
		}
	}
	u, ok, err = s.Usage().Add(ctx, k, 1, 0, 3, noCap, now())
	must(t, "add past the calls cap", err)
	if ok || u != (storage.Usage{Calls: 3}) {
		t.Fatalf("add past the calls cap: %+v, %v", u, ok)
	}
	// The cost cap applies to the new total as well, also when the call
	// adds no cost (a budget already used up).
	u, ok, err = s.Usage().Add(ctx, k, 0, 500, noCap, 500, now())
	must(t, "add cost up to the cap", err)
	if !ok || u != (storage.Usage{Calls: 3, Cost: 500}) {
		t.Fatalf("add cost up to the cap: %+v, %v", u, ok)
	}
	u, ok, err = s.Usage().Add(ctx, k, 1, 0, noCap, 499, now())
	must(t, "add a call when the cost is over the cap", err)
	if ok || u != (storage.Usage{Calls: 3, Cost: 500}) {
		t.Fatalf("add a call when the cost is over the cap: %+v, %v", u, ok)
	}
	// No overflow near the largest total.
	u, ok, err = s.Usage().Add(ctx, k, 0, noCap-500, noCap, noCap, now())
	must(t, "add to the largest total", err)
	if !ok || u.Cost != noCap {
		t.Fatalf("add to the largest total: %+v, %v", u, ok)
	}
	u, ok, err = s.Usage().Add(ctx, k, 0, 1, noCap, noCap, now())
	must(t, "add past the largest total", err)
	if ok || u.Cost != noCap {
		t.Fatalf("add past the largest total: %+v, %v", u, ok)
	}
}

// testUsageRollbackInTx: an increment in a transaction that rolls back is
// gone, so a caller can add to several counters all or nothing.
func testUsageRollbackInTx(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a, b := usageKey("agt_1", "2026-11-26"), usageKey("agt_1", "2026-11")
	_, _, err := s.Usage().Add(ctx, b, 5, 0, noCap, noCap, now())
	must(t, "prepare", err)
	errRefused := fmt.Errorf("refused")
	err = s.InTx(ctx, func(tx storage.Store) error {
		if _, ok, err := tx.Usage().Add(ctx, a, 1, 0, noCap, noCap, now()); err != nil || !ok {
			return fmt.Errorf("first add: %v %v", ok, err)
		}
		if _, ok, err := tx.Usage().Add(ctx, b, 1, 0, 5, noCap, now()); err != nil || ok {
			return fmt.Errorf("second add: %v %v", ok, err)
		}
		return errRefused
	})
	wantErr(t, "transaction", err, errRefused)
	if u, err := s.Usage().Get(ctx, a); err != nil || u != (storage.Usage{}) {
		t.Fatalf("rolled back counter: %+v, %v", u, err)
	}
}

func testUsageDeleteStale(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	old, fresh := usageKey("agt_1", "2026-09"), usageKey("agt_1", "2026-11")
	_, _, err := s.Usage().Add(ctx, old, 1, 0, noCap, noCap, t0.Add(-time.Hour))
	must(t, "add old", err)
	_, _, err = s.Usage().Add(ctx, fresh, 1, 0, noCap, noCap, t0.Add(-2*time.Hour))
	must(t, "add fresh", err)
	_, _, err = s.Usage().Add(ctx, fresh, 1, 0, noCap, noCap, t0) // a write refreshes it
	must(t, "add fresh again", err)
	n, err := s.Usage().DeleteStale(ctx, t0.Add(-time.Minute))
	must(t, "delete stale", err)
	if n != 1 {
		t.Fatalf("deleted %d counters, want 1", n)
	}
	if u, _ := s.Usage().Get(ctx, old); u != (storage.Usage{}) {
		t.Fatalf("stale counter kept: %+v", u)
	}
	if u, _ := s.Usage().Get(ctx, fresh); u.Calls != 2 {
		t.Fatalf("fresh counter: %+v", u)
	}
}

// testRaceUsageCap: concurrent increments against a cap let exactly the
// cap through, and uncapped ones lose nothing.
func testRaceUsageCap(t *testing.T, s storage.Store) {
	const limit = 7
	for round := range rounds {
		k := usageKey("agt_race", fmt.Sprintf("2026-11-%02d", round+1))
		var added atomic.Int64
		errs := race(func(int) error {
			_, ok, err := s.Usage().Add(t.Context(), k, 1, 0, limit, noCap, now())
			if ok {
				added.Add(1)
			}
			return err
		})
		for i, err := range errs {
			must(t, fmt.Sprintf("round %d: racer %d", round, i), err)
		}
		if added.Load() != limit {
			t.Fatalf("round %d: %d increments passed a cap of %d", round, added.Load(), limit)
		}
		free := usageKey("agt_free", k.Period)
		errs = race(func(int) error {
			_, _, err := s.Usage().Add(t.Context(), free, 1, 10, noCap, noCap, now())
			return err
		})
		for i, err := range errs {
			must(t, fmt.Sprintf("round %d: uncapped racer %d", round, i), err)
		}
		if u, err := s.Usage().Get(t.Context(), free); err != nil || u != (storage.Usage{Calls: racers, Cost: 10 * racers}) {
			t.Fatalf("round %d: uncapped counter %+v, %v", round, u, err)
		}
	}
}
