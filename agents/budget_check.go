package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kavachos/kavach/storage"
)

// budgetNote is what budgets did to one decision, for its audit record.
type budgetNote struct {
	exceeded string   // the budget that refused the call
	warnings []string // warn budgets whose limit this call reached
}

// decisionExtra is the Extra of a decision's audit record: the deciding
// grant, the approval that let it through, whether the refusal was a
// probe (see GrantSet.Outside), what budgets did, and the trust policy
// that refused the call or asked for approval, with the level it saw.
func decisionExtra(grantID string, d *Decision) []byte {
	n := d.budget
	if grantID == "" && d.ApprovalID == "" && !d.probe && n == nil && d.trust == nil {
		return nil
	}
	x := struct {
		Grant          string   `json:"grant,omitempty"`
		Approval       string   `json:"approval,omitempty"`
		Probe          bool     `json:"probe,omitempty"`
		Budget         string   `json:"budget,omitempty"`
		BudgetWarnings []string `json:"budgetWarnings,omitempty"`
		TrustPolicy    string   `json:"trustPolicy,omitempty"`
		TrustLevel     string   `json:"trustLevel,omitempty"`
	}{Grant: grantID, Approval: d.ApprovalID, Probe: d.probe}
	if n != nil {
		x.Budget, x.BudgetWarnings = n.exceeded, n.warnings
	}
	if d.trust != nil {
		x.TrustPolicy, x.TrustLevel = d.trust.PolicyID, d.trust.Level
	}
	b, _ := json.Marshal(x) // strings always encode
	return b
}

// counter is one usage counter a call is checked against and counted in,
// with the budgets of its scope and period.
type counter struct {
	key     storage.UsageKey
	budgets []*storage.Budget
	// maxCalls and maxCost are the largest totals the block and suspend
	// budgets allow after the call: L calls, and a cost below L.
	maxCalls, maxCost int64
}

// callCounters groups the budgets by the counter they are checked
// against at now. Calls are counted per scope and period that has a
// budget, so agents without budgets cost no counter at all.
func callCounters(budgets []storage.Budget, now time.Time, loc *time.Location) []counter {
	var cs []counter
	for i := range budgets {
		b := &budgets[i]
		k := storage.UsageKey{Scope: b.Scope, Period: periodKey(b.Period, now, loc)}
		j := 0
		for j < len(cs) && cs[j].key != k {
			j++
		}
		if j == len(cs) {
			cs = append(cs, counter{key: k, maxCalls: noCap, maxCost: noCap})
		}
		c := &cs[j]
		c.budgets = append(c.budgets, b)
		if b.Action == storage.BudgetWarn {
			continue
		}
		if b.Metric == storage.BudgetCalls {
			c.maxCalls = min(c.maxCalls, b.Limit)
		} else {
			c.maxCost = min(c.maxCost, b.Limit-1)
		}
	}
	// The order every transaction takes counters in; see usageKeys.
	slices.SortFunc(cs, func(a, b counter) int { return compareKeys(a.key, b.key) })
	return cs
}

// refuses reports whether usage u leaves no room for one more call.
func (c *counter) refuses(u storage.Usage) bool { return u.Calls+1 > c.maxCalls || u.Cost > c.maxCost }

// refusing names the budget that refuses a call at usage u, a suspend
// budget before a block one.
func (c *counter) refusing(u storage.Usage) *storage.Budget {
	var found *storage.Budget
	for _, b := range c.budgets {
		if b.Action == storage.BudgetWarn {
			continue
		}
		full := b.Metric == storage.BudgetCalls && u.Calls >= b.Limit || b.Metric == storage.BudgetCost && u.Cost >= b.Limit
		if full && (found == nil || b.Action == storage.BudgetSuspend && found.Action != storage.BudgetSuspend) {
			found = b
		}
	}
	return found
}

// errBudgetRefused rolls back a call's counting when a budget refuses it.
var errBudgetRefused = errors.New("agents: refused by a budget")

// checkBudget applies the agent's budgets to an allowed decision: it
// counts the call in every counter that has a budget, all or nothing, and
// refuses it (BUDGET_EXCEEDED, counted nowhere) when a block or suspend
// budget has no room; a suspend budget also suspends the agent. Warn
// budgets whose limit this call reaches write EventBudgetWarning, in the
// same transaction as the count. A dry run only reads the counters.
func (s *Service) checkBudget(ctx context.Context, p *principal, d Decision, now time.Time, dryRun bool) Decision {
	if !d.Allowed || len(p.budgets) == 0 {
		return d
	}
	cs := callCounters(p.budgets, now, s.cfg.BudgetTimeZone)
	var (
		refused  *storage.Budget
		warnings []string
		err      error
	)
	if dryRun {
		refused, err = s.peekCall(ctx, cs)
	} else {
		refused, warnings, err = s.countCall(ctx, p.agent.ID, cs, now)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("agents: count a call against budgets; refusing it", "agent", p.agent.ID, "err", err)
		}
		return Decision{Code: CodeUnavailable, Reason: "the agent's budgets could not be checked; try again"}
	}
	if refused != nil {
		if refused.Action == storage.BudgetSuspend && !dryRun {
			// A failure is logged; the next call refused tries again.
			s.suspendForBudget(withActorIfNone(ctx, "agent", p.agent.ID), p.agent.ID, refused, now)
		}
		return Decision{Code: CodeBudgetExceeded, Reason: budgetReason(refused), budget: &budgetNote{exceeded: refused.ID}}
	}
	if len(warnings) > 0 {
		d.budget = &budgetNote{warnings: warnings}
	}
	return d
}

// countCall counts one call in every counter of cs in one transaction.
// It returns the budget that refused the call (and then counted nothing),
// or the warn budgets the call reached.
func (s *Service) countCall(ctx context.Context, agentID string, cs []counter, now time.Time) (*storage.Budget, []string, error) {
	var (
		refused  *storage.Budget
		warnings []string
	)
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		warnings = warnings[:0]
		for i := range cs {
			c := &cs[i]
			u, ok, err := tx.Usage().Add(ctx, c.key, 1, 0, c.maxCalls, c.maxCost, now)
			if err != nil {
				return err
			}
			if !ok {
				if refused = c.refusing(u); refused == nil {
					return fmt.Errorf("usage counter %s/%s/%s is full", c.key.Scope.Type, c.key.Scope.ID, c.key.Period)
				}
				return errBudgetRefused
			}
			for _, b := range c.budgets {
				if b.Action == storage.BudgetWarn && b.Metric == storage.BudgetCalls && u.Calls-1 < b.Limit && b.Limit <= u.Calls {
					warnings = append(warnings, b.ID)
					if err := emitWarning(ctx, tx, b, c.key, u, agentID, now); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if errors.Is(err, errBudgetRefused) {
		return refused, nil, nil
	}
	return nil, warnings, err
}

// peekCall reports the budget that would refuse one more call, if any.
func (s *Service) peekCall(ctx context.Context, cs []counter) (*storage.Budget, error) {
	for i := range cs {
		c := &cs[i]
		u, err := s.store.Usage().Get(ctx, c.key)
		if err != nil {
			return nil, err
		}
		if c.refuses(u) {
			if b := c.refusing(u); b != nil {
				return b, nil
			}
			return nil, fmt.Errorf("usage counter %s/%s/%s is full", c.key.Scope.Type, c.key.Scope.ID, c.key.Period)
		}
	}
	return nil, nil
}

func emitWarning(ctx context.Context, tx storage.Store, b *storage.Budget, key storage.UsageKey, u storage.Usage, agentID string, now time.Time) error {
	return emit(ctx, tx, EventBudgetWarning, b.ID, map[string]any{
		"budgetId": b.ID, "scopeType": b.Scope.Type, "scopeId": b.Scope.ID, "metric": b.Metric, "period": b.Period,
		"periodKey": key.Period, "limit": BudgetAmount(b.Metric, b.Limit), "used": BudgetAmount(b.Metric, usedOf(b.Metric, u)),
		"agentId": agentID,
	}, now)
}

func budgetReason(b *storage.Budget) string {
	whose := map[string]string{
		storage.BudgetScopeAgent: "the agent's", storage.BudgetScopeUser: "its owner's",
		storage.BudgetScopeOrganization: "its organization's",
	}[b.Scope.Type]
	period := "daily"
	if b.Period == storage.BudgetMonth {
		period = "monthly"
	}
	if b.Metric == storage.BudgetCost {
		return fmt.Sprintf("%s %s cost budget of %s is used up", whose, period, FormatCost(b.Limit))
	}
	return fmt.Sprintf("%s %s budget of %d calls is used up", whose, period, b.Limit)
}

// suspendForBudget suspends the agent because of budget b; see
// suspendInTx. Errors are logged: the caller has refused already.
func (s *Service) suspendForBudget(ctx context.Context, agentID string, b *storage.Budget, now time.Time) {
	unlock := s.lockOwner("suspend " + agentID) // one suspension per agent at a time in this process
	defer unlock()
	var suspended bool
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		var err error
		suspended, err = suspendInTx(ctx, tx, agentID, budgetWhy(b), now)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("agents: suspend an agent over its budget", "agent", agentID, "budget", b.ID, "err", err)
		}
		return
	}
	if suspended {
		s.cache.invalidate(agentID)
	}
}

// budgetWhy is why a suspend budget suspends an agent.
func budgetWhy(b *storage.Budget) map[string]any {
	return map[string]any{"reason": "budget", "budgetId": b.ID}
}

// suspendInTx suspends an active agent, with the agent.suspended event
// and its audit record, in tx; why says why ("reason" and what caused
// it) in both. An agent that is not active (already suspended, say) is
// left alone, so concurrent refusals suspend it once.
func suspendInTx(ctx context.Context, tx storage.Store, agentID string, why map[string]any, now time.Time) (bool, error) {
	a, err := tx.Agents().Get(ctx, agentID)
	if err != nil {
		return false, agentErr("get agent", err)
	}
	if effectiveStatus(a, now) != storage.AgentActive {
		return false, nil
	}
	if err := tx.Agents().SetStatus(ctx, a.ID, storage.AgentSuspended, now); err != nil {
		return false, agentErr("suspend agent", err)
	}
	a.Status, a.UpdatedAt = storage.AgentSuspended, now
	info := map[string]any{"agentId": a.ID, "changed": []string{"status"}, "status": a.Status}
	for k, v := range why {
		info[k] = v
	}
	if err := emit(ctx, tx, EventAgentSuspended, a.ID, info, now); err != nil {
		return false, err
	}
	return true, appendSecurity(ctx, tx, securityRecord(ctx, EventAgentSuspended, a, now, info))
}

// withActorIfNone names the actor of lifecycle records unless the caller
// already did (an owner reporting usage with a session, say).
func withActorIfNone(ctx context.Context, principalType, principalID string) context.Context {
	if _, ok := ctx.Value(actorKey{}).(actor); ok {
		return ctx
	}
	return WithActor(ctx, principalType, principalID)
}

// UsageReport is usage an agent reports after the fact.
type UsageReport struct {
	// Cost is what the agent spent, with at most CostDecimals decimal
	// places; empty means 0.
	Cost  Amount
	Calls int64 // calls made outside Decide, if any
	// At places the usage in its day and month; zero means now. It may
	// be up to 35 days back (late reports) and 5 minutes ahead.
	At time.Time
}

// UsageResult answers a report.
type UsageResult struct {
	// Budgets are all that apply to the agent, with their usage in the
	// periods that hold the report's time.
	Budgets []BudgetStatus
	// Suspended is set when the report exhausted a suspend budget and so
	// suspended the agent.
	Suspended bool
}

// ReportUsage adds a report to the day and month counters of every scope
// of the agent (whether or not it has budgets yet, so a budget created
// later sees the period's cost so far). A report is a fact and is never
// refused for a budget; instead, each budget whose limit it reaches acts:
// warn writes EventBudgetWarning, suspend suspends the agent, and block
// refuses the agent's calls from then on (Decide). A revoked agent cannot
// report.
func (s *Service) ReportUsage(ctx context.Context, agentID string, r UsageReport) (UsageResult, error) {
	now := s.now()
	var cost int64
	var err error
	if r.Cost != "" {
		if cost, err = parseCost("cost", r.Cost); err != nil {
			return UsageResult{}, err
		}
	}
	switch {
	case r.Calls < 0 || r.Calls > MaxReportedCalls:
		return UsageResult{}, invalid("calls", "must be between 0 and %d", MaxReportedCalls)
	case r.Cost == "" && r.Calls == 0:
		return UsageResult{}, invalid("cost", "is required (or report calls)")
	}
	at := now
	if !r.At.IsZero() {
		at = r.At.UTC().Truncate(time.Millisecond)
		if at.After(now.Add(usageMaxSkew)) {
			return UsageResult{}, invalid("at", "must not be in the future")
		}
		if at.Before(now.Add(-usageMaxAge)) {
			return UsageResult{}, invalid("at", "must be within the last 35 days")
		}
	}
	ctx = withActorIfNone(ctx, "agent", agentID)
	var res UsageResult
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		res = UsageResult{}
		a, err := tx.Agents().Get(ctx, agentID)
		if err != nil {
			return agentErr("get agent", err)
		}
		if a.Status == storage.AgentRevoked {
			return ErrAgentRevoked
		}
		scopes := BudgetScopes(a)
		budgets, err := tx.Budgets().ListByScopes(ctx, scopes)
		if err != nil {
			return fmt.Errorf("list budgets: %w", err)
		}
		totals := make(map[storage.UsageKey]storage.Usage)
		for _, k := range usageKeys(scopes, []string{storage.BudgetDay, storage.BudgetMonth}, at, s.cfg.BudgetTimeZone) {
			u, ok, err := tx.Usage().Add(ctx, k, r.Calls, cost, noCap, noCap, now)
			if err != nil {
				return fmt.Errorf("add usage: %w", err)
			}
			if !ok {
				return invalid("cost", "the period's total would exceed what a counter can hold")
			}
			totals[k] = u
		}
		var suspendFor *storage.Budget
		for i := range budgets {
			b := &budgets[i]
			k := storage.UsageKey{Scope: b.Scope, Period: periodKey(b.Period, at, s.cfg.BudgetTimeZone)}
			u, delta := totals[k], r.Calls
			if b.Metric == storage.BudgetCost {
				delta = cost
			}
			used := usedOf(b.Metric, u)
			if delta == 0 || used-delta >= b.Limit || used < b.Limit {
				continue // this report did not reach the limit
			}
			switch b.Action {
			case storage.BudgetWarn:
				if err := emitWarning(ctx, tx, b, k, u, a.ID, now); err != nil {
					return err
				}
			case storage.BudgetSuspend:
				if suspendFor == nil {
					suspendFor = b
				}
			}
		}
		if suspendFor != nil {
			if res.Suspended, err = suspendInTx(ctx, tx, a.ID, budgetWhy(suspendFor), now); err != nil {
				return err
			}
		}
		res.Budgets, err = s.budgetStatus(ctx, tx, budgets, at, totals)
		return err
	})
	if err != nil {
		return UsageResult{}, fmt.Errorf("report usage: %w", err)
	}
	if res.Suspended {
		s.cache.invalidate(agentID)
	}
	return res, nil
}
