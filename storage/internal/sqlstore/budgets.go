package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kavachos/kavach/storage"
)

type budgets struct{ s *Store }

const budgetColumns = `id, scope_type, scope_id, metric, period, limit_value, action, created_at, updated_at`

func budgetFields(b *storage.Budget) []any {
	return []any{&b.ID, &b.Scope.Type, &b.Scope.ID, &b.Metric, &b.Period, &b.Limit, &b.Action, &b.CreatedAt, &b.UpdatedAt}
}

func (r budgets) Create(ctx context.Context, b *storage.Budget) error {
	t := now()
	stamp(&b.CreatedAt, t)
	stamp(&b.UpdatedAt, b.CreatedAt)
	_, err := r.s.exec(ctx, "budgets.create",
		`INSERT INTO kavach_budget (`+budgetColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.Scope.Type, b.Scope.ID, b.Metric, b.Period, b.Limit, b.Action, b.CreatedAt.UTC(), b.UpdatedAt.UTC())
	return err
}

func (r budgets) Get(ctx context.Context, id string) (*storage.Budget, error) {
	var b storage.Budget
	if err := r.s.get(ctx, "budgets.get", `SELECT `+budgetColumns+` FROM kavach_budget WHERE id = ?`,
		[]any{id}, budgetFields(&b)...); err != nil {
		return nil, err
	}
	return &b, nil
}

// ListByScopes builds one query per number of scopes, so the statements
// stay few (at most storage.MaxBudgetScopes) and are prepared once.
func (r budgets) ListByScopes(ctx context.Context, scopes []storage.BudgetScope) ([]storage.Budget, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	if len(scopes) > storage.MaxBudgetScopes {
		return nil, fmt.Errorf("storage: budgets.list: %d scopes, at most %d", len(scopes), storage.MaxBudgetScopes)
	}
	var q strings.Builder
	q.WriteString(`SELECT ` + budgetColumns + ` FROM kavach_budget WHERE `)
	args := make([]any, 0, 2*len(scopes))
	for i, sc := range scopes {
		if i > 0 {
			q.WriteString(` OR `)
		}
		q.WriteString(`(scope_type = ? AND scope_id = ?)`)
		args = append(args, sc.Type, sc.ID)
	}
	q.WriteString(` ORDER BY created_at, id`)
	return list(ctx, r.s, "budgets.list", q.String(), args, budgetFields)
}

func (r budgets) Delete(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "budgets.delete", `DELETE FROM kavach_budget WHERE id = ?`, id)
}

type usageCounters struct{ s *Store }

// addUsage increments a counter in one statement, so concurrent callers
// can neither lose an increment nor pass a cap together. The VALUES row is
// a new counter; an existing one is updated only while the WHERE holds,
// and otherwise RETURNING yields no row. The caps arrive as "largest total
// before the addition" (cap minus the amount), so the comparison itself
// cannot overflow. In SET and WHERE, u.* is the row before the update.
//
// Parameters: scope type, scope id, period, calls, cost, now, calls
// threshold, cost threshold.
const addUsage = `
INSERT INTO kavach_usage AS u (scope_type, scope_id, period_key, calls, cost, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (scope_type, scope_id, period_key) DO UPDATE SET
	calls = u.calls + excluded.calls,
	cost = u.cost + excluded.cost,
	updated_at = excluded.updated_at
WHERE u.calls <= ? AND u.cost <= ?
RETURNING calls, cost`

func (r usageCounters) Add(ctx context.Context, key storage.UsageKey, calls, cost, maxCalls, maxCost int64, now time.Time) (storage.Usage, bool, error) {
	if calls < 0 || cost < 0 {
		return storage.Usage{}, false, fmt.Errorf("storage: usage.add: negative amount: %w", storage.ErrInvalidValue)
	}
	if calls > maxCalls || cost > maxCost {
		// Even a new counter would pass the cap.
		u, err := r.Get(ctx, key)
		return u, false, err
	}
	var u storage.Usage
	err := r.s.get(ctx, "usage.add", addUsage,
		[]any{key.Scope.Type, key.Scope.ID, key.Period, calls, cost, now.UTC(), maxCalls - calls, maxCost - cost},
		&u.Calls, &u.Cost)
	if errors.Is(err, storage.ErrNotFound) {
		u, err = r.Get(ctx, key)
		return u, false, err
	}
	if err != nil {
		return storage.Usage{}, false, err
	}
	return u, true, nil
}

func (r usageCounters) Get(ctx context.Context, key storage.UsageKey) (storage.Usage, error) {
	var u storage.Usage
	err := r.s.get(ctx, "usage.get",
		`SELECT calls, cost FROM kavach_usage WHERE scope_type = ? AND scope_id = ? AND period_key = ?`,
		[]any{key.Scope.Type, key.Scope.ID, key.Period}, &u.Calls, &u.Cost)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Usage{}, nil
	}
	return u, err
}

func (r usageCounters) DeleteStale(ctx context.Context, before time.Time) (int, error) {
	n, err := r.s.exec(ctx, "usage.delete_stale", `DELETE FROM kavach_usage WHERE updated_at < ?`, before.UTC())
	return int(n), err
}
