package kavach

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

// The organizations API (KavachOS's naming): organizations, memberships
// and roles. Who may do what is decided in users.Organizations; to anyone
// who is neither a member nor a server admin an organization does not
// exist (404).

type orgView struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Slug      string          `json:"slug"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedBy *string         `json:"createdBy"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
	// Role is the caller's role; absent for a server admin who is not a
	// member.
	Role string `json:"role,omitempty"`
}

func toOrgView(o storage.Organization, role string) orgView {
	md := json.RawMessage(o.Metadata)
	if len(md) == 0 {
		md = json.RawMessage("{}")
	}
	return orgView{ID: o.ID, Name: o.Name, Slug: o.Slug, Metadata: md, CreatedBy: o.CreatedBy,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Role: role}
}

type orgMemberView struct {
	OrganizationID string    `json:"organizationId"`
	UserID         string    `json:"userId"`
	Email          string    `json:"email"`
	Name           string    `json:"name"`
	Image          *string   `json:"image"`
	Role           string    `json:"role"`
	CreatedAt      time.Time `json:"createdAt"`
}

func toOrgMemberView(m storage.OrgMemberProfile) orgMemberView {
	return orgMemberView{OrganizationID: m.OrganizationID, UserID: m.UserID, Email: m.Email, Name: m.Name,
		Image: m.Image, Role: m.Role, CreatedAt: m.CreatedAt}
}

const orgsPath = "/api/auth/organizations"

func (k *Kavach) organizationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+orgsPath, k.signedIn(k.handleCreateOrg))
	mux.HandleFunc("GET "+orgsPath, k.signedIn(k.handleListOrgs))
	mux.HandleFunc("GET "+orgsPath+"/{id}", k.signedIn(k.handleGetOrg))
	mux.HandleFunc("PATCH "+orgsPath+"/{id}", k.signedIn(k.handleUpdateOrg))
	mux.HandleFunc("DELETE "+orgsPath+"/{id}", k.signedIn(k.handleDeleteOrg))
	mux.HandleFunc("GET "+orgsPath+"/{id}/members", k.signedIn(k.handleListOrgMembers))
	// Adding by email tells whether an address has an account, so it is
	// rate limited like the other routes that could.
	mux.HandleFunc("POST "+orgsPath+"/{id}/members", k.limitIP("org-add-member", k.signedIn(k.handleAddOrgMember)))
	mux.HandleFunc("PATCH "+orgsPath+"/{id}/members/{userId}", k.signedIn(k.handleUpdateOrgMember))
	mux.HandleFunc("DELETE "+orgsPath+"/{id}/members/{userId}", k.signedIn(k.handleRemoveOrgMember))
}

func (k *Kavach) orgActor(view users.SessionView) users.OrgActor {
	return users.OrgActor{UserID: view.User.ID, ServerAdmin: k.isAdmin(publicUser(view.User))}
}

func (k *Kavach) handleCreateOrg(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Name     string          `json:"name"`
		Slug     string          `json:"slug"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	o, err := k.Users.Organizations().Create(r.Context(), view.User.ID, users.CreateOrgInput{Name: req.Name, Slug: req.Slug, Metadata: req.Metadata})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, toOrgView(o, storage.OrgRoleOwner))
}

func (k *Kavach) handleListOrgs(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	list, err := k.Users.Organizations().ListForUser(r.Context(), view.User.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]orgView, 0, len(list))
	for _, o := range list {
		out = append(out, toOrgView(o.Organization, o.Role))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleGetOrg(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	o, role, err := k.Users.Organizations().Get(r.Context(), k.orgActor(view), r.PathValue("id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toOrgView(o, role))
}

func (k *Kavach) handleUpdateOrg(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Name     *string          `json:"name"`
		Slug     *string          `json:"slug"`
		Metadata *json.RawMessage `json:"metadata"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	orgs, actor := k.Users.Organizations(), k.orgActor(view)
	o, err := orgs.Update(r.Context(), actor, r.PathValue("id"), users.UpdateOrgInput{Name: req.Name, Slug: req.Slug, Metadata: req.Metadata})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	role, err := orgs.MemberRole(r.Context(), o.ID, actor.UserID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toOrgView(o, role))
}

func (k *Kavach) handleDeleteOrg(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	if err := k.Users.Organizations().Delete(r.Context(), k.orgActor(view), r.PathValue("id")); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (k *Kavach) handleListOrgMembers(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	list, err := k.Users.Organizations().ListMembers(r.Context(), k.orgActor(view), r.PathValue("id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]orgMemberView, 0, len(list))
	for _, m := range list {
		out = append(out, toOrgMemberView(m))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleAddOrgMember(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		UserID string `json:"userId"`
		Email  string `json:"email"`
		Role   string `json:"role"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	m, err := k.Users.Organizations().AddMember(r.Context(), k.orgActor(view), r.PathValue("id"),
		users.AddMemberInput{UserID: req.UserID, Email: req.Email, Role: req.Role})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, toOrgMemberView(m))
}

func (k *Kavach) handleUpdateOrgMember(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Role string `json:"role"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	m, err := k.Users.Organizations().UpdateRole(r.Context(), k.orgActor(view), r.PathValue("id"), r.PathValue("userId"), req.Role)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toOrgMemberView(m))
}

func (k *Kavach) handleRemoveOrgMember(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	if err := k.Users.Organizations().RemoveMember(r.Context(), k.orgActor(view), r.PathValue("id"), r.PathValue("userId")); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"removed": true})
}

// canManageAgent reports whether the signed-in user may see and change the
// agent: its owner, a server admin, or an owner or admin of the agent's
// organization. Plain members of the organization may not (they manage
// only the agents they own).
func (k *Kavach) canManageAgent(ctx context.Context, view users.SessionView, a storage.Agent) (bool, error) {
	if a.OwnerUserID != nil && *a.OwnerUserID == view.User.ID || k.isAdmin(publicUser(view.User)) {
		return true, nil
	}
	if a.OrganizationID == nil {
		return false, nil
	}
	role, err := k.Users.Organizations().MemberRole(ctx, *a.OrganizationID, view.User.ID)
	if err != nil {
		return false, fmt.Errorf("organization role: %w", err)
	}
	return role == storage.OrgRoleOwner || role == storage.OrgRoleAdmin, nil
}

// handleListOrgAgents is GET /api/auth/agents?organizationId=…: all the
// organization's agents for its owners and admins (and server admins),
// only their own ones in it for plain members, 404 for anyone else.
func (k *Kavach) handleListOrgAgents(w http.ResponseWriter, r *http.Request, view users.SessionView, orgID string) {
	_, role, err := k.Users.Organizations().Get(r.Context(), k.orgActor(view), orgID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	list, err := k.Agents.ListByOrganization(r.Context(), orgID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	all := role == storage.OrgRoleOwner || role == storage.OrgRoleAdmin || k.isAdmin(publicUser(view.User))
	out := make([]agentView, 0, len(list))
	for _, a := range list {
		if all || a.OwnerUserID != nil && *a.OwnerUserID == view.User.ID {
			out = append(out, toAgentView(a, nil))
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
