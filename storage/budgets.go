package storage

import (
	"context"
	"time"
)

// Budget scopes: whose agents a budget counts.
const (
	BudgetScopeAgent        = "agent"        // one agent
	BudgetScopeUser         = "user"         // every agent the user owns
	BudgetScopeOrganization = "organization" // every agent of the organization
)

// Budget metrics.
const (
	BudgetCalls = "calls" // allowed decisions (and calls reported as usage)
	BudgetCost  = "cost"  // reported cost, in micro-units (millionths)
)

// Budget periods, calendar-aligned in the configured time zone.
const (
	BudgetDay   = "day"
	BudgetMonth = "month"
)

// Budget actions.
const (
	BudgetWarn    = "warn"
	BudgetBlock   = "block"
	BudgetSuspend = "suspend"
)

// BudgetScope names whose usage a budget or a counter is about. ID is not
// a foreign key: an organization, for one, lives elsewhere.
type BudgetScope struct {
	Type string // BudgetScopeAgent, BudgetScopeUser or BudgetScopeOrganization
	ID   string
}

// Budget limits what the agents of a scope may use per period (table
// kavach_budget). At most one budget exists per scope, metric, period and
// action. Package agents owns the meaning of the fields.
type Budget struct {
	ID     string
	Scope  BudgetScope
	Metric string // BudgetCalls or BudgetCost
	Period string // BudgetDay or BudgetMonth
	// Limit is a number of calls, or a cost in micro-units: integers
	// only, so no amount is ever rounded.
	Limit     int64
	Action    string // BudgetWarn, BudgetBlock or BudgetSuspend
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Budgets stores budgets.
type Budgets interface {
	// Create stores b; ErrAlreadyExists on a duplicate ID or on a second
	// budget with the same scope, metric, period and action.
	Create(ctx context.Context, b *Budget) error
	Get(ctx context.Context, id string) (*Budget, error)
	// ListByScopes returns the budgets of any of scopes (at most
	// MaxBudgetScopes), by CreatedAt, ID.
	ListByScopes(ctx context.Context, scopes []BudgetScope) ([]Budget, error)
	Delete(ctx context.Context, id string) error // ErrNotFound if none
}

// MaxBudgetScopes bounds the scopes one ListByScopes call may name.
const MaxBudgetScopes = 8

// UsageKey names one usage counter: a scope's usage in one calendar
// period. Period is the period's name in the configured time zone, e.g.
// "2026-11-26" for a day or "2026-11" for a month (package agents makes
// them).
type UsageKey struct {
	Scope  BudgetScope
	Period string
}

// Usage is what a counter holds.
type Usage struct {
	Calls int64
	Cost  int64 // micro-units
}

// UsageCounters stores usage counters (table kavach_usage).
type UsageCounters interface {
	// Add adds calls and cost (both >= 0) to the counter of key in one
	// statement, unless the new totals would exceed maxCalls or maxCost:
	// then nothing changes. It returns the totals after the call (the
	// current ones when refused) and whether it added. A counter never
	// written holds zero. Under any number of concurrent callers no
	// increment is lost and no cap is passed.
	Add(ctx context.Context, key UsageKey, calls, cost, maxCalls, maxCost int64, now time.Time) (Usage, bool, error)
	// Get returns the counter of key; zero for one never written.
	Get(ctx context.Context, key UsageKey) (Usage, error)
	// DeleteStale removes counters not written since before; returns
	// count.
	DeleteStale(ctx context.Context, before time.Time) (int, error)
}
