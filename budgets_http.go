package kavach

import (
	"context"
	"net/http"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

// The budgets API: owners (and server admins) set budgets on agents and
// on their own user; server admins on any scope, organizations included.
// Agents report what they spent to /agents/{id}/usage with their own
// credential.

type budgetView struct {
	ID        string           `json:"id"`
	ScopeType string           `json:"scopeType"`
	ScopeID   string           `json:"scopeId"`
	Metric    string           `json:"metric"`
	Period    string           `json:"period"`
	Limit     any              `json:"limit"` // calls: a number; cost: a decimal string
	Action    string           `json:"action"`
	CreatedAt time.Time        `json:"createdAt"`
	UpdatedAt time.Time        `json:"updatedAt"`
	Usage     *budgetUsageView `json:"usage,omitempty"`
}

type budgetUsageView struct {
	PeriodKey   string    `json:"periodKey"`
	PeriodStart time.Time `json:"periodStart"`
	ResetsAt    time.Time `json:"resetsAt"`
	Used        any       `json:"used"`
	Remaining   any       `json:"remaining"`
	Exhausted   bool      `json:"exhausted"`
}

func toBudgetView(b storage.Budget) budgetView {
	return budgetView{ID: b.ID, ScopeType: b.Scope.Type, ScopeID: b.Scope.ID, Metric: b.Metric, Period: b.Period,
		Limit: agents.BudgetAmount(b.Metric, b.Limit), Action: b.Action, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
}

func toBudgetViews(list []agents.BudgetStatus) []budgetView {
	out := make([]budgetView, 0, len(list))
	for _, st := range list {
		v := toBudgetView(st.Budget)
		v.Usage = &budgetUsageView{PeriodKey: st.PeriodKey, PeriodStart: st.PeriodStart.UTC(), ResetsAt: st.PeriodEnd.UTC(),
			Used: agents.BudgetAmount(st.Metric, st.Used), Remaining: agents.BudgetAmount(st.Metric, max(st.Limit-st.Used, 0)),
			Exhausted: st.Exhausted}
		out = append(out, v)
	}
	return out
}

func (k *Kavach) budgetRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/agents/{id}/budgets", k.signedIn(k.agentOwner(k.handleListAgentBudgets)))
	mux.HandleFunc("POST /api/auth/agents/{id}/budgets", k.signedIn(k.agentOwner(k.handleCreateAgentBudget)))
	mux.HandleFunc("DELETE /api/auth/agents/{id}/budgets/{budgetId}", k.signedIn(k.agentOwner(k.handleDeleteAgentBudget)))
	mux.HandleFunc("POST /api/auth/agents/{id}/usage", k.handleReportUsage)
	mux.HandleFunc("GET /api/auth/budgets", k.signedIn(k.handleListBudgets))
	mux.HandleFunc("POST /api/auth/budgets", k.signedIn(k.handleCreateBudget))
	mux.HandleFunc("DELETE /api/auth/budgets/{budgetId}", k.signedIn(k.handleDeleteBudget))
}

// budgetRequest is a new budget; the agent routes fix the scope.
type budgetRequest struct {
	Metric string        `json:"metric"`
	Period string        `json:"period"`
	Limit  agents.Amount `json:"limit"`
	Action string        `json:"action"`
}

func (k *Kavach) createBudget(w http.ResponseWriter, r *http.Request, view users.SessionView, scope storage.BudgetScope, req budgetRequest) {
	ctx := agents.WithActor(r.Context(), "user", view.User.ID)
	b, err := k.Agents.CreateBudget(ctx, agents.BudgetInput{Scope: scope, Metric: req.Metric, Period: req.Period, Limit: req.Limit, Action: req.Action})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, toBudgetView(b))
}

// handleListAgentBudgets lists every budget that applies to the agent —
// its own and its owner's — with the current period's usage.
func (k *Kavach) handleListAgentBudgets(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	list, err := k.Agents.AgentBudgets(r.Context(), a.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toBudgetViews(list))
}

func (k *Kavach) handleCreateAgentBudget(w http.ResponseWriter, r *http.Request, view users.SessionView, a storage.Agent, _ []agents.Grant) {
	var req budgetRequest
	if !k.decode(w, r, &req) {
		return
	}
	k.createBudget(w, r, view, storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: a.ID}, req)
}

func (k *Kavach) handleDeleteAgentBudget(w http.ResponseWriter, r *http.Request, view users.SessionView, a storage.Agent, _ []agents.Grant) {
	b, err := k.Agents.GetBudget(r.Context(), r.PathValue("budgetId"))
	if err == nil && b.Scope != (storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: a.ID}) {
		err = agents.ErrBudgetNotFound // the owner's budgets are managed under /budgets
	}
	if err == nil {
		err = k.Agents.DeleteBudget(agents.WithActor(r.Context(), "user", view.User.ID), b.ID)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

// budgetScope is the scope a /budgets request names: the caller's own
// user by default. Others than server admins may name only that one; the
// answer is false (and written) when the caller may not.
func (k *Kavach) budgetScope(ctx context.Context, w http.ResponseWriter, view users.SessionView, typ, id string) (storage.BudgetScope, bool) {
	if typ == "" {
		typ = storage.BudgetScopeUser
	}
	if id == "" && typ == storage.BudgetScopeUser {
		id = view.User.ID
	}
	scope := storage.BudgetScope{Type: typ, ID: id}
	switch {
	case typ != storage.BudgetScopeAgent && typ != storage.BudgetScopeUser && typ != storage.BudgetScopeOrganization:
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", `scopeType: must be "agent", "user" or "organization".`)
		return scope, false
	case id == "":
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "scopeId: is required for scope type "+typ+".")
		return scope, false
	}
	if !k.mayManageBudgets(ctx, view, scope) {
		httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN", "You may manage budgets of your own user and of organizations you own or administer here (an agent's under /agents/{id}/budgets); other scopes are for server admins.")
		return scope, false
	}
	return scope, true
}

// mayManageBudgets: a user manages their own user's budgets, an
// organization's owners and admins the organization's, server admins all.
func (k *Kavach) mayManageBudgets(ctx context.Context, view users.SessionView, scope storage.BudgetScope) bool {
	switch {
	case k.isAdmin(publicUser(view.User)):
		return true
	case scope.Type == storage.BudgetScopeUser:
		return scope.ID == view.User.ID
	case scope.Type == storage.BudgetScopeOrganization:
		role, err := k.Users.Organizations().MemberRole(ctx, scope.ID, view.User.ID)
		return err == nil && (role == storage.OrgRoleOwner || role == storage.OrgRoleAdmin)
	}
	return false
}

// handleListBudgets is GET /api/auth/budgets?scopeType=&scopeId=: the
// caller's own user budgets by default.
func (k *Kavach) handleListBudgets(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	q := r.URL.Query()
	scope, ok := k.budgetScope(r.Context(), w, view, q.Get("scopeType"), q.Get("scopeId"))
	if !ok {
		return
	}
	list, err := k.Agents.ScopeBudgets(r.Context(), scope)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toBudgetViews(list))
}

func (k *Kavach) handleCreateBudget(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		ScopeType string `json:"scopeType"`
		ScopeID   string `json:"scopeId"`
		budgetRequest
	}
	if !k.decode(w, r, &req) {
		return
	}
	scope, ok := k.budgetScope(r.Context(), w, view, req.ScopeType, req.ScopeID)
	if !ok {
		return
	}
	k.createBudget(w, r, view, scope, req.budgetRequest)
}

// handleDeleteBudget deletes a budget of the caller's own user, or, for a
// server admin, any budget. Others' budgets answer 404.
func (k *Kavach) handleDeleteBudget(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	b, err := k.Agents.GetBudget(r.Context(), r.PathValue("budgetId"))
	if err == nil && !k.mayManageBudgets(r.Context(), view, b.Scope) {
		err = agents.ErrBudgetNotFound
	}
	if err == nil {
		err = k.Agents.DeleteBudget(agents.WithActor(r.Context(), "user", view.User.ID), b.ID)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

// handleReportUsage is POST /api/auth/agents/{id}/usage: the agent (its
// API key or OAuth access token) or its owner or a server admin (a
// session) reports cost and calls. The answer holds every budget of the
// agent with its usage in the report's period.
func (k *Kavach) handleReportUsage(w http.ResponseWriter, r *http.Request) {
	agentID := r.PathValue("id")
	ctx, ok := k.agentSelfOrManager(w, r, agentID, false)
	if !ok {
		return
	}
	var req struct {
		Cost  agents.Amount `json:"cost"`
		Calls int64         `json:"calls"`
		At    string        `json:"at"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	var at time.Time
	if req.At != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, req.At); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "at: must be an RFC 3339 time such as 2026-11-26T09:30:00Z.")
			return
		}
	}
	res, err := k.Agents.ReportUsage(ctx, agentID, agents.UsageReport{Cost: req.Cost, Calls: req.Calls, At: at})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"budgets": toBudgetViews(res.Budgets), "suspended": res.Suspended})
}
