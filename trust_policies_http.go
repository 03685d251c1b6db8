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
// every policy; owners and admins of an organization manage the policies
// of their organization and of its agents, and read the global ones.
// Policies only add requirements, so no one can loosen a policy someone
// else set.

func (k *Kavach) trustPolicyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/trust/policies", k.signedIn(k.handleListTrustPolicies))
	mux.HandleFunc("POST /api/auth/trust/policies", k.signedIn(k.handleCreateTrustPolicy))
	mux.HandleFunc("GET /api/auth/trust/policies/{id}", k.signedIn(k.trustPolicy(false, k.handleGetTrustPolicy)))
	mux.HandleFunc("PUT /api/auth/trust/policies/{id}", k.signedIn(k.trustPolicy(true, k.handleUpdateTrustPolicy)))
	mux.HandleFunc("DELETE /api/auth/trust/policies/{id}", k.signedIn(k.trustPolicy(true, k.handleDeleteTrustPolicy)))
	mux.HandleFunc("GET /api/auth/trust/policies/{id}/history", k.signedIn(k.handleTrustPolicyHistory))
}

// mayManageTrustScope reports whether the caller may write policies of
// scope: server admins any; organization owners and admins their
// organization's and its agents'.
func (k *Kavach) mayManageTrustScope(ctx context.Context, view users.SessionView, sc trust.PolicyScope) bool {
	if k.isAdmin(publicUser(view.User)) {
		return true
	}
	org := ""
	switch sc.Type {
	case storage.TrustPolicyOrganization:
		org = sc.ID
	case storage.TrustPolicyAgent:
		a, err := k.Store.Agents().Get(ctx, sc.ID)
		if err != nil || a.OrganizationID == nil {
			return false
		}
		org = *a.OrganizationID
	default:
		return false
	}
	role, err := k.Users.Organizations().MemberRole(ctx, org, view.User.ID)
	return err == nil && (role == storage.OrgRoleOwner || role == storage.OrgRoleAdmin)
}

// mayReadTrustScope: anyone who may manage policies somewhere reads the
// global ones too, so an organization sees what applies to its agents.
func (k *Kavach) mayReadTrustScope(ctx context.Context, view users.SessionView, sc trust.PolicyScope, managesAny func() bool) bool {
	if sc.Type == storage.TrustPolicyGlobal {
		return managesAny()
	}
	return k.mayManageTrustScope(ctx, view, sc)
}

func (k *Kavach) mayReadPolicy(ctx context.Context, view users.SessionView, sc trust.PolicyScope) bool {
	return k.mayReadTrustScope(ctx, view, sc, func() bool { return k.managesAnyOrganization(ctx, view) })
}

// managesAnyOrganization reports whether the caller is a server admin or
// owns or administers some organization.
func (k *Kavach) managesAnyOrganization(ctx context.Context, view users.SessionView) bool {
	if k.isAdmin(publicUser(view.User)) {
		return true
	}
	orgs, err := k.Users.Organizations().ListForUser(ctx, view.User.ID)
	if err != nil {
		return false
	}
	for _, o := range orgs {
		if o.Role == storage.OrgRoleOwner || o.Role == storage.OrgRoleAdmin {
			return true
		}
	}
	return false
}

func policyActor(view users.SessionView) trust.Actor {
	return trust.Actor{Type: "user", ID: view.User.ID}
}

func (k *Kavach) handleListTrustPolicies(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	ctx := r.Context()
	list, err := k.Trust.Policies().List(ctx)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	var manages *bool
	managesAny := func() bool {
		if manages == nil {
			m := k.managesAnyOrganization(ctx, view)
			manages = &m
		}
		return *manages
	}
	out := make([]trust.Policy, 0, len(list))
	for _, p := range list {
		if k.mayReadTrustScope(ctx, view, p.Scope, managesAny) {
			out = append(out, p)
		}
	}
	if len(out) == 0 && !managesAny() {
		httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN", "Trust policies are for server admins and for owners and admins of organizations.")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"epoch": k.Trust.Policies().Epoch(), "policies": out})
}

func (k *Kavach) handleCreateTrustPolicy(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var in trust.PolicyInput
	if !k.decode(w, r, &in) {
		return
	}
	if !k.mayManageTrustScope(r.Context(), view, in.Scope) {
		httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN",
			"You may set trust policies for organizations you own or administer and for their agents; other scopes are for server admins.")
		return
	}
	p, err := k.Trust.Policies().Create(r.Context(), policyActor(view), in)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, p)
}

// trustPolicy loads the policy named in the path and checks the caller
// may read it (or, with write, change it). A policy the caller may not
// read is answered as not found.
func (k *Kavach) trustPolicy(write bool, h func(http.ResponseWriter, *http.Request, users.SessionView, trust.Policy)) func(http.ResponseWriter, *http.Request, users.SessionView) {
	return func(w http.ResponseWriter, r *http.Request, view users.SessionView) {
		ctx := r.Context()
		p, err := k.Trust.Policies().Get(ctx, r.PathValue("id"))
		if err != nil {
			k.fail(w, r, err)
			return
		}
		switch {
		case write && k.mayManageTrustScope(ctx, view, p.Scope), !write && k.mayReadPolicy(ctx, view, p.Scope):
			h(w, r, view, p)
		case write && k.mayReadPolicy(ctx, view, p.Scope):
			httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN", "Only server admins may change this trust policy.")
		default:
			k.fail(w, r, trust.ErrPolicyNotFound)
		}
	}
}

func (k *Kavach) handleGetTrustPolicy(w http.ResponseWriter, _ *http.Request, _ users.SessionView, p trust.Policy) {
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (k *Kavach) handleUpdateTrustPolicy(w http.ResponseWriter, r *http.Request, view users.SessionView, p trust.Policy) {
	var in trust.PolicyInput
	if !k.decode(w, r, &in) {
		return
	}
	out, err := k.Trust.Policies().Update(r.Context(), policyActor(view), p.ID, in)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleDeleteTrustPolicy(w http.ResponseWriter, r *http.Request, view users.SessionView, p trust.Policy) {
	if _, err := k.Trust.Policies().Delete(r.Context(), policyActor(view), p.ID); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

// handleTrustPolicyHistory answers every version of a policy: for those
// who may read it, and for server admins also once it is deleted.
func (k *Kavach) handleTrustPolicyHistory(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	ctx := r.Context()
	policyID := r.PathValue("id")
	p, err := k.Trust.Policies().Get(ctx, policyID)
	switch {
	case err == nil && !k.mayReadPolicy(ctx, view, p.Scope):
		err = trust.ErrPolicyNotFound
	case errors.Is(err, trust.ErrPolicyNotFound) && k.isAdmin(publicUser(view.User)):
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
