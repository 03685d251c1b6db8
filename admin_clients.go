package kavach

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/users"
)

// Admin API for OAuth clients: pre-registration without the CLI. Only
// server admins may call it: signed-in users whose verified email is in
// Config.AdminEmails (verified, so nobody becomes admin by signing up with
// an admin's address first).

const adminClientsPath = "/api/auth/admin/oauth2/clients"

func (k *Kavach) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+adminClientsPath, k.admin(k.handleListClients))
	mux.HandleFunc("POST "+adminClientsPath, k.admin(k.handleCreateClient))
	mux.HandleFunc("DELETE "+adminClientsPath+"/{id}", k.admin(k.handleDeleteClient))
	mux.HandleFunc("POST "+adminUsersPath+"/{id}/ban", k.admin(k.handleBanUser))
	mux.HandleFunc("POST "+adminUsersPath+"/{id}/unban", k.admin(k.handleUnbanUser))
}

// isAdmin reports whether the user is a server admin.
func (k *Kavach) isAdmin(u User) bool {
	return u.EmailVerified && slices.Contains(k.cfg.AdminEmails, u.Email)
}

func (k *Kavach) admin(h func(http.ResponseWriter, *http.Request, users.SessionView)) http.HandlerFunc {
	return k.signedIn(func(w http.ResponseWriter, r *http.Request, view users.SessionView) {
		if !k.isAdmin(publicUser(view.User)) {
			httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN", "Only server admins may do this.")
			return
		}
		h(w, r, view)
	})
}

// adminClient is a client as the admin API shows it.
type adminClient struct {
	ClientID     string               `json:"clientId"`
	ClientSecret string               `json:"clientSecret,omitempty"` // only in the create answer
	Source       string               `json:"source"`
	Metadata     authz.ClientMetadata `json:"metadata"`
	CreatedAt    string               `json:"createdAt"`
}

func toAdminClient(c *authz.Client, secret string) adminClient {
	return adminClient{ClientID: c.GetID(), ClientSecret: secret, Source: c.Record.Source, Metadata: c.Metadata,
		CreatedAt: c.Record.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
}

func (k *Kavach) handleListClients(w http.ResponseWriter, r *http.Request, _ users.SessionView) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	cs, err := k.OAuth.Clients(r.Context(), limit, max(offset, 0))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]adminClient, 0, len(cs))
	for _, c := range cs {
		out = append(out, toAdminClient(c, ""))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleCreateClient(w http.ResponseWriter, r *http.Request, _ users.SessionView) {
	var m authz.ClientMetadata
	if !k.decode(w, r, &m) {
		return
	}
	reg, err := k.OAuth.RegisterClient(r.Context(), m)
	var me *authz.MetadataError
	if errors.As(err, &me) {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_CLIENT_METADATA", me.Description)
		return
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, toAdminClient(reg.Client, reg.Secret))
}

func (k *Kavach) handleDeleteClient(w http.ResponseWriter, r *http.Request, _ users.SessionView) {
	err := k.OAuth.DeleteClient(r.Context(), r.PathValue("id"))
	if errors.Is(err, authz.ErrClientNotFound) {
		httpx.WriteError(w, http.StatusNotFound, "CLIENT_NOT_FOUND", "No such client.")
		return
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}
