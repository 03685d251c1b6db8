package kavach

import (
	"net/http"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/users"
)

// Users' own grants: users go through the same decision point as agents
// (POST /api/auth/authorize with a session), and their grants, once set,
// bound what the agents they own may do. Server admins set them.

func (k *Kavach) userPermissionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/permissions", k.signedIn(k.handleMyPermissions))
	mux.HandleFunc("GET /api/auth/admin/users/{id}/permissions", k.admin(k.handleGetUserPermissions))
	mux.HandleFunc("PUT /api/auth/admin/users/{id}/permissions", k.admin(k.handleSetUserPermissions))
}

func (k *Kavach) writeUserGrants(w http.ResponseWriter, r *http.Request, grants []agents.Grant, err error) {
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if grants == nil {
		grants = []agents.Grant{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"permissions": grants})
}

func (k *Kavach) handleMyPermissions(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	grants, err := k.Agents.UserGrants(r.Context(), view.User.ID)
	k.writeUserGrants(w, r, grants, err)
}

func (k *Kavach) handleGetUserPermissions(w http.ResponseWriter, r *http.Request, _ users.SessionView) {
	grants, err := k.Agents.UserGrants(r.Context(), r.PathValue("id"))
	k.writeUserGrants(w, r, grants, err)
}

func (k *Kavach) handleSetUserPermissions(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Permissions []agents.Grant `json:"permissions"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	ctx := agents.WithActor(r.Context(), "user", view.User.ID)
	grants, err := k.Agents.SetUserGrants(ctx, r.PathValue("id"), req.Permissions)
	k.writeUserGrants(w, r, grants, err)
}
