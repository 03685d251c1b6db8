package kavach

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

// The agents API (KavachOS's wire contract): users create and manage their
// agents; agents ask for decisions with their own credentials.

type agentView struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Type         string          `json:"type"`
	Status       string          `json:"status"`
	OwnerID      *string         `json:"ownerId"`
	ClientID     *string         `json:"clientId,omitempty"`
	Permissions  []agents.Grant  `json:"permissions"`
	Metadata     json.RawMessage `json:"metadata"`
	ExpiresAt    *time.Time      `json:"expiresAt"`
	LastActiveAt *time.Time      `json:"lastActiveAt"`
	CreatedAt    time.Time       `json:"createdAt"`
	UpdatedAt    time.Time       `json:"updatedAt"`
}

func toAgentView(a storage.Agent, grants []agents.Grant) agentView {
	if grants == nil {
		grants = []agents.Grant{}
	}
	md := json.RawMessage(a.Metadata)
	if len(md) == 0 {
		md = json.RawMessage("{}")
	}
	return agentView{ID: a.ID, Name: a.Name, Type: a.Type, Status: a.Status, OwnerID: a.OwnerUserID, ClientID: a.ClientID,
		Permissions: grants, Metadata: md, ExpiresAt: a.ExpiresAt, LastActiveAt: a.LastActiveAt, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

func (k *Kavach) agentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/auth/agents", k.signedIn(k.handleCreateAgent))
	mux.HandleFunc("GET /api/auth/agents", k.signedIn(k.handleListAgents))
	mux.HandleFunc("GET /api/auth/agents/{id}", k.signedIn(k.agentOwner(k.handleGetAgent)))
	mux.HandleFunc("PATCH /api/auth/agents/{id}", k.signedIn(k.agentOwner(k.handleUpdateAgent)))
	mux.HandleFunc("DELETE /api/auth/agents/{id}", k.signedIn(k.agentOwner(k.handleRevokeAgent)))
	mux.HandleFunc("POST /api/auth/agents/{id}/rotate", k.signedIn(k.agentOwner(k.handleRotateAgent)))
	mux.HandleFunc("POST /api/auth/authorize", k.handleAuthorizeDecision)
}

// agentOwner loads the agent of the path and lets only its owner or a
// server admin through; others get 404, so ids cannot be probed.
func (k *Kavach) agentOwner(h func(http.ResponseWriter, *http.Request, users.SessionView, storage.Agent, []agents.Grant)) func(http.ResponseWriter, *http.Request, users.SessionView) {
	return func(w http.ResponseWriter, r *http.Request, view users.SessionView) {
		a, grants, err := k.Agents.Get(r.Context(), r.PathValue("id"))
		if err == nil && !(a.OwnerUserID != nil && *a.OwnerUserID == view.User.ID) && !k.isAdmin(publicUser(view.User)) {
			err = agents.ErrAgentNotFound
		}
		if err != nil {
			k.failAgent(w, r, err)
			return
		}
		h(w, r, view, a, grants)
	}
}

func (k *Kavach) failAgent(w http.ResponseWriter, r *http.Request, err error) {
	var ve *agents.ValidationError
	switch {
	case errors.As(err, &ve):
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", ve.Error())
	case errors.Is(err, agents.ErrAgentNotFound):
		httpx.WriteError(w, http.StatusNotFound, "AGENT_NOT_FOUND", "No such agent.")
	case errors.Is(err, agents.ErrQuotaExceeded):
		httpx.WriteError(w, http.StatusConflict, "AGENT_QUOTA_EXCEEDED", "You have reached the number of agents you may own.")
	case errors.Is(err, agents.ErrAgentRevoked):
		httpx.WriteError(w, http.StatusConflict, "AGENT_REVOKED", "The agent is revoked.")
	case errors.Is(err, agents.ErrAgentSuspended):
		httpx.WriteError(w, http.StatusConflict, "AGENT_SUSPENDED", "The agent is suspended.")
	case errors.Is(err, agents.ErrAgentExpired):
		httpx.WriteError(w, http.StatusConflict, "AGENT_EXPIRED", "The agent has expired.")
	default:
		k.fail(w, r, err)
	}
}

type createAgentRequest struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Permissions []agents.Grant  `json:"permissions"`
	ExpiresAt   *time.Time      `json:"expiresAt"`
	Metadata    json.RawMessage `json:"metadata"`
}

func (k *Kavach) handleCreateAgent(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req createAgentRequest
	if !k.decode(w, r, &req) {
		return
	}
	a, grants, key, err := k.Agents.Create(r.Context(), agents.CreateInput{
		OwnerUserID: view.User.ID, Name: req.Name, Type: req.Type, Permissions: req.Permissions,
		ExpiresAt: req.ExpiresAt, Metadata: req.Metadata,
	})
	if err != nil {
		k.failAgent(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"agent": toAgentView(a, grants), "token": key})
}

func (k *Kavach) handleListAgents(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	list, err := k.Agents.List(r.Context(), view.User.ID)
	if err != nil {
		k.failAgent(w, r, err)
		return
	}
	out := make([]agentView, 0, len(list))
	for _, a := range list {
		out = append(out, toAgentView(a, nil))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleGetAgent(w http.ResponseWriter, _ *http.Request, _ users.SessionView, a storage.Agent, grants []agents.Grant) {
	httpx.WriteJSON(w, http.StatusOK, toAgentView(a, grants))
}

type updateAgentRequest struct {
	Name        *string          `json:"name"`
	Permissions *[]agents.Grant  `json:"permissions"`
	Metadata    *json.RawMessage `json:"metadata"`
	Status      *string          `json:"status"`
}

func (k *Kavach) handleUpdateAgent(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	var req updateAgentRequest
	if !k.decode(w, r, &req) {
		return
	}
	updated, grants, err := k.Agents.Update(r.Context(), a.ID, agents.UpdateInput{Name: req.Name, Permissions: req.Permissions, Metadata: req.Metadata, Status: req.Status})
	if err != nil {
		k.failAgent(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toAgentView(updated, grants))
}

func (k *Kavach) handleRevokeAgent(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	if err := k.Agents.Revoke(r.Context(), a.ID); err != nil {
		k.failAgent(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

func (k *Kavach) handleRotateAgent(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	var req struct {
		OverlapSeconds int `json:"overlapSeconds"`
	}
	if !k.decodeOptional(w, r, &req) {
		return
	}
	if req.OverlapSeconds < 0 || req.OverlapSeconds > 7*24*3600 {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "overlapSeconds must be between 0 and 604800.")
		return
	}
	key, err := k.Agents.Rotate(r.Context(), a.ID, time.Duration(req.OverlapSeconds)*time.Second)
	if err != nil {
		k.failAgent(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"token": key})
}

// handleAuthorizeDecision is POST /api/auth/authorize: an agent (API key or
// OAuth access token in Authorization: Bearer) asks whether it may do
// something. A denial is a 200 with allowed:false; a bad credential is a
// 401. A server admin's session may ask for any agent with agentId.
func (k *Kavach) handleAuthorizeDecision(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Action    string          `json:"action"`
		Resource  string          `json:"resource"`
		Arguments json.RawMessage `json:"arguments"`
		AgentID   string          `json:"agentId"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	agentID, ok := k.decisionPrincipal(w, r, req.AgentID)
	if !ok {
		return
	}
	if req.Action == "" || req.Resource == "" {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "action and resource are required.")
		return
	}
	ip := k.limits.ip.ClientIP(r)
	d := k.Agents.Decide(r.Context(), agents.DecideRequest{AgentID: agentID, Action: req.Action, Resource: req.Resource,
		Arguments: req.Arguments, IP: ip, UserAgent: r.UserAgent()})
	out := map[string]any{"allowed": d.Allowed, "auditId": d.AuditID}
	if !d.Allowed {
		out["code"], out["reason"] = d.Code, d.Reason
	}
	if d.ApprovalID != "" {
		out["approvalId"] = d.ApprovalID
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// decisionPrincipal finds the agent a decision is for: the bearer
// credential's agent (see bearerAgent), or, for a server admin's session,
// agentId.
func (k *Kavach) decisionPrincipal(w http.ResponseWriter, r *http.Request, agentID string) (string, bool) {
	id, rejected := k.bearerAgent(r)
	if id != "" {
		return id, true
	}
	if !rejected && agentID != "" {
		// A human session token may still be an admin asking for an agent.
		if view, err := k.session(w, r); err == nil && k.isAdmin(publicUser(view.User)) {
			return agentID, true
		}
	}
	agentUnauthorized(w)
	return "", false
}

// bearerAgent authenticates an agent by the request's bearer credential:
// a kv_ API key, or an OAuth access token of an agent's client. A valid key
// of an agent that may not act (suspended, revoked, expired) still names
// it, so a decision about it can be recorded. rejected reports a kv_ key
// that does not authenticate: the caller meant to be an agent, so no other
// reading of the request applies. Neither means the bearer, if any, is not
// an agent's (it may be a user's session token).
func (k *Kavach) bearerAgent(r *http.Request) (agentID string, rejected bool) {
	h := r.Header.Get("Authorization")
	if len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	if strings.HasPrefix(tok, "kv_") {
		a, err := k.Agents.AuthenticateKey(r.Context(), tok)
		switch {
		case err == nil:
			return a.ID, false
		case a.ID != "" && (errors.Is(err, agents.ErrAgentSuspended) || errors.Is(err, agents.ErrAgentRevoked) || errors.Is(err, agents.ErrAgentExpired)):
			return a.ID, false
		default:
			return "", true
		}
	}
	if c, err := k.OAuth.VerifyAccessToken(r.Context(), tok); err == nil {
		if a, err := k.OAuth.AgentForClient(r.Context(), c.ClientID); err == nil {
			return a.ID, false
		}
	}
	return "", false
}

func agentUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer`)
	httpx.WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "An agent credential (API key or access token) is required.")
}
