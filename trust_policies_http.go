package kavach

import (
	"context"
	"errors"
	"net/http"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
	"github.com/kavachos/kavach/users"
)

// Trust policies over HTTP. Server admins (the platform team) manage
// every policy; what they create is a platform policy, which no one else
// may change. Owners and admins of an organization manage organization
// policies on their organization and its agents, and read the platform's
// policies there and the global ones that refuse or hold calls. Since
// policies only add requirements, an organization can make its own agents
// stricter but cannot loosen what the platform set.

func (k *Kavach) trustPolicyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/trust/policies", k.signedIn(k.handleListTrustPolicies))
	mux.HandleFunc("POST /api/auth/trust/policies", k.signedIn(k.handleCreateTrustPolicy))
	mux.HandleFunc("GET /api/auth/trust/policies/{id}", k.signedIn(k.trustPolicy(false, k.handleGetTrustPolicy)))
	mux.HandleFunc("PUT /api/auth/trust/policies/{id}", k.signedIn(k.trustPolicy(true, k.handleUpdateTrustPolicy)))
	mux.HandleFunc("DELETE /api/auth/trust/policies/{id}", k.signedIn(k.trustPolicy(true, k.handleDeleteTrustPolicy)))
	mux.HandleFunc("GET /api/auth/trust/policies/{id}/history", k.signedIn(k.handleTrustPolicyHistory))
}

// policyAccess is what one caller may do with policies, worked out once
// per request: whether it is a server admin, and which organizations it
// owns or administers.
type policyAccess struct {
	k      *Kavach
	admin  bool
	orgs   map[string]bool
	agents map[string]string // agent → its organization ("" when none), as looked up
}

func (k *Kavach) policyAccessOf(ctx context.Context, view users.SessionView) (*policyAccess, error) {
	a := &policyAccess{k: k, admin: k.isAdmin(publicUser(view.User)), orgs: map[string]bool{}, agents: map[string]string{}}
	if a.admin {
		return a, nil
	}
	orgs, err := k.Users.Organizations().ListForUser(ctx, view.User.ID)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		if o.Role == storage.OrgRoleOwner || o.Role == storage.OrgRoleAdmin {
			a.orgs[o.ID] = true
		}
	}
	return a, nil
}

func (a *policyAccess) actor(view users.SessionView) trust.Actor {
	return trust.Actor{Type: "user", ID: view.User.ID, Platform: a.admin}
}

// managesScope reports whether the caller may write policies of the
// scope: server admins any; organization managers their organization's
// and its agents'.
func (a *policyAccess) managesScope(ctx context.Context, sc trust.PolicyScope) bool {
	switch {
	case a.admin:
		return true
	case sc.Type == storage.TrustPolicyOrganization:
		return a.orgs[sc.ID]
	case sc.Type == storage.TrustPolicyAgent:
		org, ok := a.agents[sc.ID]
		if !ok {
			if ag, err := a.k.Store.Agents().Get(ctx, sc.ID); err == nil && ag.OrganizationID != nil {
				org = *ag.OrganizationID
			}
			a.agents[sc.ID] = org
		}
		return org != "" && a.orgs[org]
	}
	return false
}

// mayWrite: a platform policy only for server admins.
func (a *policyAccess) mayWrite(ctx context.Context, p trust.Policy) bool {
	return a.admin || p.ManagedBy == trust.ManagedByOrganization && a.managesScope(ctx, p.Scope)
}

// mayRead: the policies of one's scopes, and the global policies that
// refuse or hold calls (their refusals name them anyway); the lines of
// global suspend and alert policies are for the platform team.
func (a *policyAccess) mayRead(ctx context.Context, p trust.Policy) bool {
	if p.Scope.Type == storage.TrustPolicyGlobal {
		return a.admin || len(a.orgs) > 0 && (p.Effect == trust.EffectMinimumLevel || p.Effect == trust.EffectRequireApproval)
	}
	return a.managesScope(ctx, p.Scope)
}

func (k *Kavach) handleListTrustPolicies(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	ctx := r.Context()
	acc, err := k.policyAccessOf(ctx, view)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if !acc.admin && len(acc.orgs) == 0 {
		httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN", "Trust policies are for server admins and for owners and admins of organizations.")
		return
	}
	list, err := k.Trust.Policies().List(ctx)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]trust.Policy, 0, len(list))
	for _, p := range list {
		if acc.mayRead(ctx, p) {
			out = append(out, p)
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"epoch": k.Trust.Policies().Epoch(), "policies": out})
}

func (k *Kavach) handleCreateTrustPolicy(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var in trust.PolicyInput
	if !k.decode(w, r, &in) {
		return
	}
	acc, err := k.policyAccessOf(r.Context(), view)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if !acc.managesScope(r.Context(), in.Scope) {
		httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN",
			"You may set trust policies for organizations you own or administer and for their agents; other scopes are for server admins.")
		return
	}
	p, err := k.Trust.Policies().Create(r.Context(), acc.actor(view), in)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, p)
}

// trustPolicy loads the policy named in the path and checks the caller
// may read it (or, with write, change it). A policy the caller may not
// read is answered as not found.
func (k *Kavach) trustPolicy(write bool, h func(http.ResponseWriter, *http.Request, *policyAccess, users.SessionView, trust.Policy)) func(http.ResponseWriter, *http.Request, users.SessionView) {
	return func(w http.ResponseWriter, r *http.Request, view users.SessionView) {
		ctx := r.Context()
		acc, err := k.policyAccessOf(ctx, view)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		p, err := k.Trust.Policies().Get(ctx, r.PathValue("id"))
		if err != nil {
			k.fail(w, r, err)
			return
		}
		switch {
		case write && acc.mayWrite(ctx, p), !write && acc.mayRead(ctx, p):
			h(w, r, acc, view, p)
		case write && acc.mayRead(ctx, p):
			k.fail(w, r, trust.ErrPolicyReadOnly)
		default:
			k.fail(w, r, trust.ErrPolicyNotFound)
		}
	}
}

func (k *Kavach) handleGetTrustPolicy(w http.ResponseWriter, _ *http.Request, _ *policyAccess, _ users.SessionView, p trust.Policy) {
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (k *Kavach) handleUpdateTrustPolicy(w http.ResponseWriter, r *http.Request, acc *policyAccess, view users.SessionView, p trust.Policy) {
	var in trust.PolicyInput
	if !k.decode(w, r, &in) {
		return
	}
	out, err := k.Trust.Policies().Update(r.Context(), acc.actor(view), p.ID, in)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleDeleteTrustPolicy(w http.ResponseWriter, r *http.Request, acc *policyAccess, view users.SessionView, p trust.Policy) {
	if _, err := k.Trust.Policies().Delete(r.Context(), acc.actor(view), p.ID); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

// handleTrustPolicyHistory answers every version of a policy: for those
// who may read it, and for server admins also once it is deleted.
func (k *Kavach) handleTrustPolicyHistory(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	ctx := r.Context()
	acc, err := k.policyAccessOf(ctx, view)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	policyID := r.PathValue("id")
	p, err := k.Trust.Policies().Get(ctx, policyID)
	switch {
	case err == nil && !acc.mayRead(ctx, p):
		err = trust.ErrPolicyNotFound
	case errors.Is(err, trust.ErrPolicyNotFound) && acc.admin:
		err = nil
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	h, err := k.Trust.Policies().History(ctx, policyID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h)
}
