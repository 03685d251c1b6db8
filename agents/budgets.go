package agents

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Budgets limit what agents use per calendar day or month, in the zone of
// Config.BudgetTimeZone: the calls they are allowed (counted by Decide)
// and the cost they report (ReportUsage). A budget belongs to a scope —
// one agent, every agent of a user, or every agent of an organization —
// and every budget of every scope of an agent applies to it. Counters are
// in the store, so all nodes share them. See docs/agents.md, "Budgets".

// CodeBudgetExceeded refuses a call that a block or suspend budget does
// not allow (a reason code of Decide, like those in decision.go).
const CodeBudgetExceeded = "BUDGET_EXCEEDED"

// Budget errors.
var (
	ErrBudgetNotFound = errors.New("budget not found")
	// ErrBudgetExists refuses a second budget with the same scope, metric,
	// period and action. (So a scope has at most 2 × 2 × 3 = 12 budgets,
	// which bounds the work of a decision.)
	ErrBudgetExists = errors.New("budget exists")
)

// Events of budgets (outbox events; the first two are also audit events).
const (
	EventBudgetCreated = "budget.created"
	EventBudgetDeleted = "budget.deleted"
	// EventBudgetWarning is written once per budget and period, when the
	// period's usage first reaches a warn budget's limit.
	EventBudgetWarning = "budget.warning"
)

// Bounds on budgets and usage reports.
const (
	// MaxCostUnits is the largest cost a budget or one report may name,
	// in whole units (a cost is stored in millionths).
	MaxCostUnits = 1_000_000_000_000
	// MaxCallsLimit is the largest calls limit; MaxReportedCalls the most
	// calls one report may add.
	MaxCallsLimit    = 1_000_000_000_000
	MaxReportedCalls = 1_000_000_000
	// CostDecimals is how many decimal places a cost may have.
	CostDecimals = 6
	// Reports may name a time this far back or ahead (clock skew).
	usageMaxAge  = 35 * 24 * time.Hour
	usageMaxSkew = 5 * time.Minute
)

const microsPerUnit = 1_000_000

// Amount is a decimal number as a client wrote it — a JSON number or a
// string such as "0.25" — kept as text, so no binary float ever rounds it.
// Whether it is valid depends on what it measures; the Service checks it.
type Amount string

// UnmarshalJSON keeps the literal text of a number, the contents of a
// string, and anything else as written (refused later, with the field
// named). null leaves the Amount empty.
func (a *Amount) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Amount(s)
	default:
		*a = Amount(b)
	}
	return nil
}

// parseCost reads a non-negative decimal with at most CostDecimals
// places as millionths.
func parseCost(field string, a Amount) (int64, error) {
	s := string(a)
	if s == "" {
		return 0, invalid(field, "is required")
	}
	whole, frac, dot := strings.Cut(s, ".")
	if !isDigits(whole) || dot && !isDigits(frac) {
		return 0, invalid(field, "must be a non-negative decimal number such as 12.5 or \"0.000125\" (no sign, exponent or spaces)")
	}
	if len(frac) > CostDecimals {
		return 0, invalid(field, "must have at most %d decimal places", CostDecimals)
	}
	n, ok := parseDigits(whole, MaxCostUnits)
	f, _ := parseDigits(frac+strings.Repeat("0", CostDecimals-len(frac)), microsPerUnit)
	if !ok || n == MaxCostUnits && f > 0 {
		return 0, invalid(field, "must be at most %d", MaxCostUnits)
	}
	return n*microsPerUnit + f, nil
}

// parseCalls reads a whole number of calls of at most max.
func parseCalls(field string, a Amount, max int64) (int64, error) {
	s := string(a)
	if s == "" {
		return 0, invalid(field, "is required")
	}
	if !isDigits(s) {
		return 0, invalid(field, "must be a whole number of calls")
	}
	n, ok := parseDigits(s, max)
	if !ok {
		return 0, invalid(field, "must be at most %d", max)
	}
	return n, nil
}

// parseDigits reads ASCII digits (leading zeros allowed); ok is false for
// a number above max.
func parseDigits(s string, max int64) (n int64, ok bool) {
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n <= max
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatCost writes millionths as a decimal without trailing zeros:
// 12500000 → "12.5", 3000000 → "3".
func FormatCost(micros int64) string {
	s := strconv.FormatInt(micros/microsPerUnit, 10)
	if f := micros % microsPerUnit; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", f), "0")
	}
	return s
}

// BudgetAmount is a value of a budget's metric as the API shows it: a
// number of calls, or a cost as a decimal string.
func BudgetAmount(metric string, v int64) any {
	if metric == storage.BudgetCost {
		return FormatCost(v)
	}
	return v
}

// Period names the calendar period (day or month) that holds t in loc,
// as usage counters key it ("2026-11-26", "2026-11"), with its first
// instant and the first instant of the next period. Days are calendar
// days: 23 or 25 hours long across a daylight-saving change, and starting
// at 01:00 where a change skips midnight.
func Period(period string, t time.Time, loc *time.Location) (key string, start, end time.Time) {
	y, m, d := t.In(loc).Date()
	if period == storage.BudgetMonth {
		return periodKey(period, t, loc), dayStart(y, m, 1, loc), dayStart(y, m+1, 1, loc)
	}
	return periodKey(period, t, loc), dayStart(y, m, d, loc), dayStart(y, m, d+1, loc)
}

// periodKey is the key part of Period, cheap enough for every decision.
func periodKey(period string, t time.Time, loc *time.Location) string {
	y, m, d := t.In(loc).Date()
	b := make([]byte, 0, 10)
	b = appendPadded(b, y, 4)
	b = append(b, '-')
	b = appendPadded(b, int(m), 2)
	if period != storage.BudgetMonth {
		b = append(b, '-')
		b = appendPadded(b, d, 2)
	}
	return string(b)
}

func appendPadded(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// dayStart is the first instant of a calendar day in loc (y, m, d are
// normalized as time.Date does). time.Date alone is not enough: for a
// midnight that a daylight-saving change skips or repeats it may answer
// an instant of the day before, or the second midnight.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	want := time.Date(y, m, d, 12, 0, 0, 0, time.UTC) // the date, normalized
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if sameDate(t, want) && dateBefore(t.Add(-time.Second), want) {
		return t
	}
	// Search the hours around t for the first second of the date; offsets
	// change by at most a few hours.
	lo, hi := t.Add(-3*time.Hour), t.Add(3*time.Hour)
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if dateBefore(mid, want) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// sameDate and dateBefore compare t's date in its location with want's
// date in UTC.
func sameDate(t, want time.Time) bool {
	y, m, d := t.Date()
	wy, wm, wd := want.Date()
	return y == wy && m == wm && d == wd
}

func dateBefore(t, want time.Time) bool {
	y, m, d := t.Date()
	wy, wm, wd := want.Date()
	return y < wy || y == wy && (m < wm || m == wm && d < wd)
}

// BudgetScopes lists the scopes whose budgets apply to agent a, the
// narrowest first: the agent itself, then its owner, then its
// organization if it has one.
func BudgetScopes(a *storage.Agent) []storage.BudgetScope {
	scopes := make([]storage.BudgetScope, 0, 3)
	scopes = append(scopes, storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: a.ID})
	if a.OwnerUserID != nil {
		scopes = append(scopes, storage.BudgetScope{Type: storage.BudgetScopeUser, ID: *a.OwnerUserID})
	}
	if a.OrganizationID != nil {
		scopes = append(scopes, storage.BudgetScope{Type: storage.BudgetScopeOrganization, ID: *a.OrganizationID})
	}
	return scopes
}

// BudgetInput describes a new budget.
type BudgetInput struct {
	Scope  storage.BudgetScope
	Metric string // storage.BudgetCalls or BudgetCost
	Period string // storage.BudgetDay or BudgetMonth
	// Limit is a whole number of calls, or a cost with at most
	// CostDecimals decimal places.
	Limit  Amount
	Action string // storage.BudgetWarn, BudgetBlock (default) or BudgetSuspend
}

// BudgetStatus is a budget with its usage in the current period.
type BudgetStatus struct {
	storage.Budget
	PeriodKey   string
	PeriodStart time.Time
	PeriodEnd   time.Time // when the usage starts over
	Used        int64     // calls, or cost in millionths
	// Exhausted is set when usage has reached the limit: a block or
	// suspend budget refuses calls until the period ends.
	Exhausted bool
}

func checkBudget(in BudgetInput) (storage.Budget, error) {
	b := storage.Budget{Scope: in.Scope, Metric: in.Metric, Period: in.Period, Action: in.Action}
	switch b.Scope.Type {
	case storage.BudgetScopeAgent, storage.BudgetScopeUser, storage.BudgetScopeOrganization:
	default:
		return b, invalid("scopeType", "must be %q, %q or %q", storage.BudgetScopeAgent, storage.BudgetScopeUser, storage.BudgetScopeOrganization)
	}
	if err := checkScopeID(b.Scope.ID); err != nil {
		return b, err
	}
	if b.Metric != storage.BudgetCalls && b.Metric != storage.BudgetCost {
		return b, invalid("metric", "must be %q or %q", storage.BudgetCalls, storage.BudgetCost)
	}
	if b.Period != storage.BudgetDay && b.Period != storage.BudgetMonth {
		return b, invalid("period", "must be %q or %q", storage.BudgetDay, storage.BudgetMonth)
	}
	switch b.Action {
	case "":
		b.Action = storage.BudgetBlock
	case storage.BudgetWarn, storage.BudgetBlock, storage.BudgetSuspend:
	default:
		return b, invalid("action", "must be %q, %q or %q", storage.BudgetWarn, storage.BudgetBlock, storage.BudgetSuspend)
	}
	var err error
	if b.Metric == storage.BudgetCost {
		b.Limit, err = parseCost("limit", in.Limit)
	} else {
		b.Limit, err = parseCalls("limit", in.Limit, MaxCallsLimit)
	}
	if err != nil {
		return b, err
	}
	if b.Action == storage.BudgetWarn && b.Limit == 0 {
		// Usage starts every period at zero: it would never cross.
		return b, invalid("limit", "a warn budget needs a limit above 0")
	}
	return b, nil
}

func checkScopeID(s string) error {
	switch {
	case s == "":
		return invalid("scopeId", "must not be empty")
	case len(s) > 128 || !utf8.ValidString(s):
		return invalid("scopeId", "must be at most 128 bytes of UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return invalid("scopeId", "must not contain spaces or control characters")
	}
	return nil
}

// CreateBudget stores a budget for an agent (that exists and is not
// revoked), a user (that exists) or an organization (not checked), with
// its outbox event and audit record. Decisions in this process apply it at
// once, other nodes within the decision cache's lifetime.
func (s *Service) CreateBudget(ctx context.Context, in BudgetInput) (storage.Budget, error) {
	now := s.now()
	b, err := checkBudget(in)
	if err != nil {
		return storage.Budget{}, err
	}
	b.ID, b.CreatedAt, b.UpdatedAt = id.New("bdg"), now, now
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		if err := checkScopeExists(ctx, tx, b.Scope); err != nil {
			return err
		}
		if err := tx.Budgets().Create(ctx, &b); err != nil {
			if errors.Is(err, storage.ErrAlreadyExists) {
				return ErrBudgetExists
			}
			return err
		}
		return budgetChanged(ctx, tx, EventBudgetCreated, &b, now)
	})
	if err != nil {
		return storage.Budget{}, fmt.Errorf("create budget: %w", err)
	}
	s.cache.invalidateScope(b.Scope)
	return b, nil
}

func checkScopeExists(ctx context.Context, tx storage.Store, sc storage.BudgetScope) error {
	var err error
	switch sc.Type {
	case storage.BudgetScopeAgent:
		var a *storage.Agent
		if a, err = tx.Agents().Get(ctx, sc.ID); err == nil && a.Status == storage.AgentRevoked {
			return ErrAgentRevoked
		}
	case storage.BudgetScopeUser:
		_, err = tx.Users().Get(ctx, sc.ID)
	}
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return invalid("scopeId", "no such %s", sc.Type)
	}
	return err
}

// GetBudget returns one budget.
func (s *Service) GetBudget(ctx context.Context, budgetID string) (storage.Budget, error) {
	b, err := s.store.Budgets().Get(ctx, budgetID)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return storage.Budget{}, ErrBudgetNotFound
	}
	if err != nil {
		return storage.Budget{}, fmt.Errorf("get budget: %w", err)
	}
	return *b, nil
}

// DeleteBudget removes a budget, with its outbox event and audit record.
// Its scope's counters stay: other budgets may use them.
func (s *Service) DeleteBudget(ctx context.Context, budgetID string) error {
	now := s.now()
	var scope storage.BudgetScope
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		b, err := tx.Budgets().Get(ctx, budgetID)
		if err == nil {
			err = tx.Budgets().Delete(ctx, budgetID)
		}
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
			return ErrBudgetNotFound
		}
		if err != nil {
			return err
		}
		scope = b.Scope
		return budgetChanged(ctx, tx, EventBudgetDeleted, b, now)
	})
	if err != nil {
		return fmt.Errorf("delete budget: %w", err)
	}
	s.cache.invalidateScope(scope)
	return nil
}

// budgetChanged writes the outbox event and the audit record of a budget
// created or deleted, in the caller's transaction.
func budgetChanged(ctx context.Context, tx storage.Store, event string, b *storage.Budget, now time.Time) error {
	info := map[string]any{
		"budgetId": b.ID, "scopeType": b.Scope.Type, "scopeId": b.Scope.ID, "metric": b.Metric,
		"period": b.Period, "limit": BudgetAmount(b.Metric, b.Limit), "action": b.Action,
	}
	if err := emit(ctx, tx, event, b.ID, info, now); err != nil {
		return err
	}
	r := storage.AuditRecord{
		ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: event,
		Action: event, Resource: "budget:" + b.ID, Result: storage.AuditOK,
	}
	if b.Scope.Type == storage.BudgetScopeAgent {
		r.AgentID = b.Scope.ID
	}
	if act, ok := ctx.Value(actorKey{}).(actor); ok {
		r.PrincipalType, r.PrincipalID = act.principalType, act.principalID
	}
	r.Extra, _ = json.Marshal(info) // strings and numbers always encode
	return appendSecurity(ctx, tx, r)
}

// ScopeBudgets returns the budgets of one scope with their usage now.
func (s *Service) ScopeBudgets(ctx context.Context, scope storage.BudgetScope) ([]BudgetStatus, error) {
	list, err := s.store.Budgets().ListByScopes(ctx, []storage.BudgetScope{scope})
	if errors.Is(err, storage.ErrInvalidValue) {
		return []BudgetStatus{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list budgets: %w", err)
	}
	return s.budgetStatus(ctx, s.store, list, s.now(), nil)
}

// AgentBudgets returns every budget that applies to the agent — its own,
// its owner's, its organization's — with their usage now.
func (s *Service) AgentBudgets(ctx context.Context, agentID string) ([]BudgetStatus, error) {
	a, err := s.store.Agents().Get(ctx, agentID)
	if err != nil {
		return nil, agentErr("get agent", err)
	}
	list, err := s.store.Budgets().ListByScopes(ctx, BudgetScopes(a))
	if err != nil {
		return nil, fmt.Errorf("list budgets: %w", err)
	}
	return s.budgetStatus(ctx, s.store, list, s.now(), nil)
}

// budgetStatus reads the usage of each budget in the period that holds
// at; known holds counters already read.
func (s *Service) budgetStatus(ctx context.Context, st storage.Store, list []storage.Budget, at time.Time, known map[storage.UsageKey]storage.Usage) ([]BudgetStatus, error) {
	out := make([]BudgetStatus, 0, len(list))
	for _, b := range list {
		key, start, end := Period(b.Period, at, s.cfg.BudgetTimeZone)
		k := storage.UsageKey{Scope: b.Scope, Period: key}
		u, ok := known[k]
		if !ok {
			var err error
			if u, err = st.Usage().Get(ctx, k); err != nil {
				return nil, fmt.Errorf("read usage: %w", err)
			}
			if known == nil {
				known = make(map[storage.UsageKey]storage.Usage)
			}
			known[k] = u
		}
		used := usedOf(b.Metric, u)
		out = append(out, BudgetStatus{Budget: b, PeriodKey: key, PeriodStart: start, PeriodEnd: end, Used: used,
			Exhausted: used >= b.Limit})
	}
	return out, nil
}

func usedOf(metric string, u storage.Usage) int64 {
	if metric == storage.BudgetCost {
		return u.Cost
	}
	return u.Calls
}

// invalidateScope drops every cached agent that budgets of scope apply to.
func (c *principalCache) invalidateScope(scope storage.BudgetScope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for agentID, p := range c.m {
		if slices.Contains(BudgetScopes(&p.agent), scope) {
			delete(c.m, agentID)
		}
	}
	c.gen++
}

// usageKeys returns the counter keys of scopes × periods at t, in the one
// order every transaction takes counters in (so that two transactions
// never wait on each other's rows crosswise).
func usageKeys(scopes []storage.BudgetScope, periods []string, t time.Time, loc *time.Location) []storage.UsageKey {
	keys := make([]storage.UsageKey, 0, len(scopes)*len(periods))
	for _, sc := range scopes {
		for _, p := range periods {
			keys = append(keys, storage.UsageKey{Scope: sc, Period: periodKey(p, t, loc)})
		}
	}
	sortKeys(keys)
	return slices.Compact(keys)
}

func sortKeys(keys []storage.UsageKey) { slices.SortFunc(keys, compareKeys) }

func compareKeys(a, b storage.UsageKey) int {
	return cmp.Or(cmp.Compare(a.Scope.Type, b.Scope.Type), cmp.Compare(a.Scope.ID, b.Scope.ID), cmp.Compare(a.Period, b.Period))
}

// noCap stands for "no limit" in storage.UsageCounters.Add.
const noCap = math.MaxInt64

// UsageRetention is how long a usage counter is kept after its last
// write: past the 35 days a late report may reach back, and long enough
// to show the previous month.
const UsageRetention = 100 * 24 * time.Hour

// SweepUsage deletes usage counters not written for UsageRetention.
func (s *Service) SweepUsage(ctx context.Context) (int, error) {
	n, err := s.store.Usage().DeleteStale(ctx, s.now().Add(-UsageRetention))
	if err != nil {
		return 0, fmt.Errorf("sweep usage counters: %w", err)
	}
	return n, nil
}
