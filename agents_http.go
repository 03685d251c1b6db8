package kavach

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/clientip"
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
	// ParentID is the agent that delegated to this one; DelegationDepth
	// its place in the chain (0 for an agent a user created).
	ParentID        *string `json:"parentId"`
	DelegationDepth int     `json:"delegationDepth"`

	// OrganizationID is null for an agent outside any organization.
	OrganizationID *string `json:"organizationId"`
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
		Permissions: grants, Metadata: md, ExpiresAt: a.ExpiresAt, LastActiveAt: a.LastActiveAt, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		ParentID: a.ParentID, DelegationDepth: a.DelegationDepth, OrganizationID: a.OrganizationID}
}

func (k *Kavach) agentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/auth/agents", k.signedIn(k.handleCreateAgent))
	mux.HandleFunc("GET /api/auth/agents", k.signedIn(k.handleListAgents))
	mux.HandleFunc("GET /api/auth/agents/{id}", k.signedIn(k.agentOwner(k.handleGetAgent)))
	mux.HandleFunc("PATCH /api/auth/agents/{id}", k.signedIn(k.agentOwner(k.handleUpdateAgent)))
	mux.HandleFunc("DELETE /api/auth/agents/{id}", k.signedIn(k.agentOwner(k.handleRevokeAgent)))
	mux.HandleFunc("POST /api/auth/agents/{id}/rotate", k.signedIn(k.agentOwner(k.handleRotateAgent)))
	mux.HandleFunc("POST /api/auth/agents/{id}/oauth-client", k.signedIn(k.agentOwner(k.handleAgentClient)))
	mux.HandleFunc("POST /api/auth/agents/{id}/delegate", k.handleDelegate)
	mux.HandleFunc("POST /api/auth/authorize", k.handleAuthorizeDecision)
}

// agentOwner loads the agent of the path and lets only those who manage it
// through (canManageAgent: its owner, a server admin, an owner or admin of
// its organization); others get 404, so ids cannot be probed.
func (k *Kavach) agentOwner(h func(http.ResponseWriter, *http.Request, users.SessionView, storage.Agent, []agents.Grant)) func(http.ResponseWriter, *http.Request, users.SessionView) {
	return func(w http.ResponseWriter, r *http.Request, view users.SessionView) {
		a, grants, err := k.managedAgent(r.Context(), view, r.PathValue("id"))
		if err != nil {
			k.fail(w, r, err)
			return
		}
		h(w, r, view, a, grants)
	}
}

// managedAgent loads an agent the user manages (canManageAgent: its owner,
// a server admin, an owner or admin of its organization);
// agents.ErrAgentNotFound for any other, so ids cannot be probed.
func (k *Kavach) managedAgent(ctx context.Context, view users.SessionView, agentID string) (storage.Agent, []agents.Grant, error) {
	a, grants, err := k.Agents.Get(ctx, agentID)
	if err != nil {
		return storage.Agent{}, nil, err
	}
	ok, err := k.canManageAgent(ctx, view, a)
	switch {
	case err != nil:
		return storage.Agent{}, nil, err
	case !ok:
		return storage.Agent{}, nil, agents.ErrAgentNotFound
	}
	return a, grants, nil
}

type createAgentRequest struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Permissions []agents.Grant  `json:"permissions"`
	ExpiresAt   *time.Time      `json:"expiresAt"`
	Metadata    json.RawMessage `json:"metadata"`

	// OrganizationID puts the agent in an organization the caller belongs
	// to (any role).
	OrganizationID string `json:"organizationId"`
}

func (k *Kavach) handleCreateAgent(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req createAgentRequest
	if !k.decode(w, r, &req) {
		return
	}
	a, grants, key, err := k.Agents.Create(r.Context(), agents.CreateInput{
		OwnerUserID: view.User.ID, Name: req.Name, Type: req.Type, Permissions: req.Permissions,
		ExpiresAt: req.ExpiresAt, Metadata: req.Metadata, OrganizationID: req.OrganizationID,
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"agent": toAgentView(a, grants), "token": key})
}

func (k *Kavach) handleListAgents(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	if q := r.URL.Query(); q.Has("organizationId") {
		k.handleListOrgAgents(w, r, view, q.Get("organizationId"))
		return
	}
	list, err := k.Agents.List(r.Context(), view.User.ID)
	if err != nil {
		k.fail(w, r, err)
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
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toAgentView(updated, grants))
}

func (k *Kavach) handleRevokeAgent(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	if err := k.Agents.Revoke(r.Context(), a.ID); err != nil {
		k.fail(w, r, err)
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
		k.fail(w, r, err)
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
		UserID    string          `json:"userId"`
		// Token, IP and UserAgent are for resource servers: the access
		// token a client presented to them, and that client's address
		// and User-Agent (see resourceServerCaller).
		Token     string `json:"token"`
		IP        string `json:"ip"`
		UserAgent string `json:"userAgent"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	if req.AgentID != "" && req.UserID != "" {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "agentId and userId: name one principal, not both.")
		return
	}
	ip, ua := k.limits.ip.ClientIP(r), r.UserAgent()
	var (
		who decisionCaller
		ok  bool
	)
	if req.Token != "" {
		who, ip, ua, ok = k.resourceServerCaller(w, r, req.Token, req.IP, req.UserAgent)
	} else if req.IP != "" || req.UserAgent != "" {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "ip and userAgent: only with token, from a resource server.")
		return
	} else {
		who, ok = k.decisionPrincipal(w, r, req.AgentID, req.UserID)
	}
	if !ok {
		return
	}
	if req.Action == "" || req.Resource == "" {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "action and resource are required.")
		return
	}
	d := k.Agents.Decide(r.Context(), agents.DecideRequest{AgentID: who.agentID, UserID: who.userID, Action: req.Action, Resource: req.Resource,
		Arguments: req.Arguments, IP: ip, UserAgent: ua, TokenID: who.tokenID, ActingFor: who.actingFor, Chain: who.chain})
	out := map[string]any{"allowed": d.Allowed, "auditId": d.AuditID}
	if !d.Allowed {
		out["code"], out["reason"] = d.Code, d.Reason
	}
	if d.ApprovalID != "" {
		out["approvalId"] = d.ApprovalID
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// decisionCaller is who asks for a decision.
type decisionCaller struct {
	agentID   string
	userID    string   // a user deciding for themselves (session), or named by an admin
	actingFor string   // from an access token's sub, when it is not the agent itself
	chain     []string // from the token, outermost first
	tokenID   string   // the agent's credential: an API key's id or an access token's jti
}

// decisionPrincipal finds the principal a decision is for: the bearer
// credential's agent (see bearerAgent); else the signed-in user — for
// themselves, or, for a server admin, the agentId or userId named.
func (k *Kavach) decisionPrincipal(w http.ResponseWriter, r *http.Request, agentID, userID string) (decisionCaller, bool) {
	unauthorized := func() (decisionCaller, bool) {
		agentUnauthorized(w)
		return decisionCaller{}, false
	}
	cred, badKey := k.bearerAgent(r)
	switch {
	case cred.agentID != "":
		// An agent that may not act still gets a decision (and an audit
		// record) saying so.
		return cred, true
	case badKey:
		return unauthorized()
	}
	view, err := k.session(w, r)
	if err != nil {
		return unauthorized()
	}
	switch {
	case agentID == "" && (userID == "" || userID == view.User.ID):
		return decisionCaller{userID: view.User.ID}, true // a user asks for themselves
	case k.isAdmin(publicUser(view.User)):
		return decisionCaller{agentID: agentID, userID: userID}, true
	}
	httpx.WriteError(w, http.StatusForbidden, "FORBIDDEN", "Only server admins may ask for another principal.")
	return decisionCaller{}, false
}

// resourceServerCaller is the principal of a decision a resource server
// asks for about a token a client presented to it: the server
// authenticates with HTTP Basic as an operator-registered confidential
// client (authz.AuthenticateResourceServer), and the token must be a
// valid, unrevoked access token of Kavach's. The client's address and
// User-Agent, when the server passes them, are recorded instead of the
// server's own. Failed authentications count against the per-IP limit.
func (k *Kavach) resourceServerCaller(w http.ResponseWriter, r *http.Request, token, ipText, userAgent string) (decisionCaller, netip.Addr, string, bool) {
	fail := func() (decisionCaller, netip.Addr, string, bool) { return decisionCaller{}, netip.Addr{}, "", false }
	id, secret, hasBasic := r.BasicAuth()
	if hasBasic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !hasBasic {
		w.Header().Set("WWW-Authenticate", `Basic realm="kavach"`)
		httpx.WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "A resource server asking about a token authenticates with its client id and secret (HTTP Basic).")
		return fail()
	}
	if _, err := k.OAuth.AuthenticateResourceServer(r.Context(), id, secret); err != nil {
		if ok, retry := k.limits.perIP.Allow("authorize-rs|"+clientip.RateLimitKey(k.limits.ip.ClientIP(r)), k.cfg.Now()); !ok {
			tooMany(w, retry)
			return fail()
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="kavach"`)
		httpx.WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "The client is unknown, its secret is wrong, or it was not registered by an operator.")
		return fail()
	}
	var ip netip.Addr
	if ipText != "" {
		var err error
		if ip, err = netip.ParseAddr(ipText); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "ip: not an IP address.")
			return fail()
		}
	}
	c, err := k.OAuth.VerifyAccessToken(r.Context(), token)
	if err != nil {
		if !errors.Is(err, authz.ErrTokenInvalid) {
			k.fail(w, r, err)
			return fail()
		}
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_TOKEN", "token: not a valid, unrevoked access token of this server.")
		return fail()
	}
	agentID, actingFor, chain, err := k.tokenPrincipal(r.Context(), c.Subject, c.ClientID, c.Act.Chain())
	if err != nil {
		k.fail(w, r, err)
		return fail()
	}
	return decisionCaller{agentID: agentID, actingFor: actingFor, chain: chain, tokenID: c.JTI}, ip, userAgent, true
}

func agentUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer`)
	httpx.WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "An agent credential (API key or access token) is required.")
}

// handleAgentClient is POST /api/auth/agents/{id}/oauth-client: the agent
// gets an OAuth client (by default client_credentials and token exchange,
// client_secret_basic), so it can get access tokens as itself. The secret
// is shown once. An agent has at most one client.
func (k *Kavach) handleAgentClient(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	var m authz.ClientMetadata
	if !k.decodeOptional(w, r, &m) {
		return
	}
	if a.Status == storage.AgentRevoked {
		k.fail(w, r, agents.ErrAgentRevoked)
		return
	}
	reg, err := k.OAuth.RegisterAgentClient(r.Context(), a.ID, a.Name, m)
	var me *authz.MetadataError
	switch {
	case errors.As(err, &me):
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_CLIENT_METADATA", me.Description)
	case errors.Is(err, authz.ErrAgentHasClient):
		httpx.WriteError(w, http.StatusConflict, "AGENT_HAS_CLIENT", "The agent already has an OAuth client.")
	case err != nil:
		k.fail(w, r, err)
	default:
		httpx.WriteJSON(w, http.StatusCreated, toAdminClient(reg.Client, reg.Secret))
	}
}

type delegateRequest struct {
	Name        string          `json:"name"`
	Permissions []agents.Grant  `json:"permissions"`
	ExpiresAt   *time.Time      `json:"expiresAt"`
	Metadata    json.RawMessage `json:"metadata"`
}

// handleDelegate is POST /api/auth/agents/{id}/delegate: a sub-agent of
// agent {id}, asked for by the agent itself (its API key or an access
// token of its client) or by its owner or a server admin (session). The
// answer is the sub-agent and its API key, as for POST /api/auth/agents.
func (k *Kavach) handleDelegate(w http.ResponseWriter, r *http.Request) {
	parentID := r.PathValue("id")
	ctx, ok := k.agentSelfOrManager(w, r, parentID, true)
	if !ok {
		return
	}
	var req delegateRequest
	if !k.decode(w, r, &req) {
		return
	}
	child, grants, key, err := k.Agents.Delegate(ctx, parentID, agents.DelegateInput{
		Name: req.Name, Permissions: req.Permissions, ExpiresAt: req.ExpiresAt, Metadata: req.Metadata})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"agent": toAgentView(child, grants), "token": key})
}

// bearerAgent returns the agent whose credential the request bears: a
// kv_ API key, or an OAuth access token of an agent's client (with whom
// the token says it acts for). A valid credential of an agent that may not
// act (suspended, revoked, expired, or below such an agent) still names
// it, so that what it asks is answered (and audited) as such; callers that
// need an active agent check with Agents.ActiveAgent. badKey reports a kv_
// key that does not authenticate; a bearer that is no agent credential (a
// human session token, say) gives neither. Access tokens must name
// Kavach's own resource (BASE_URL/mcp) in their audience.
func (k *Kavach) bearerAgent(r *http.Request) (cred decisionCaller, badKey bool) {
	h := r.Header.Get("Authorization")
	if len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
		return decisionCaller{}, false
	}
	tok := strings.TrimSpace(h[7:])
	if strings.HasPrefix(tok, "kv_") {
		a, keyID, err := k.Agents.AuthenticateKeyID(r.Context(), tok)
		switch {
		case err == nil:
			return decisionCaller{agentID: a.ID, tokenID: keyID}, false
		case a.ID != "" && agents.MayNotAct(err):
			return decisionCaller{agentID: a.ID, tokenID: keyID}, false
		default:
			return decisionCaller{}, true
		}
	}
	// An access token counts only when it was issued for Kavach itself:
	// one meant for another resource server must not become a credential
	// here (that server could otherwise replay it to delegate or decide).
	if c, err := k.OAuth.VerifyAccessToken(r.Context(), tok); err == nil && slices.Contains(c.Audience, k.OAuth.DefaultResource()) {
		if id, actingFor, chain, err := k.tokenPrincipal(r.Context(), c.Subject, c.ClientID, c.Act.Chain()); err == nil {
			return decisionCaller{agentID: id, actingFor: actingFor, chain: chain, tokenID: c.JTI}, false
		}
	}
	return decisionCaller{}, false
}

// agentSelfOrManager authenticates a request about agent agentID made by
// the agent itself (its API key or an access token of its client) or by a
// user who manages it (session: owner, organization owner or admin, server
// admin); others get 404, as if the agent did not exist. With active, the
// agent acting for itself must be active (and every agent above it). The
// context it returns names the actor for audit records.
func (k *Kavach) agentSelfOrManager(w http.ResponseWriter, r *http.Request, agentID string, active bool) (context.Context, bool) {
	ctx := r.Context()
	cred, badKey := k.bearerAgent(r)
	switch {
	case cred.agentID != "":
		if cred.agentID != agentID {
			k.fail(w, r, agents.ErrAgentNotFound) // an agent speaks only for itself
			return nil, false
		}
		if active {
			if err := k.Agents.ActiveAgent(ctx, agentID); err != nil {
				k.fail(w, r, err)
				return nil, false
			}
		}
		return agents.WithActor(ctx, "agent", agentID), true
	case badKey:
		w.Header().Set("WWW-Authenticate", `Bearer`)
		httpx.WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "The agent credential is not valid.")
		return nil, false
	}
	view, err := k.session(w, r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		httpx.WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Use the agent's API key or access token, or sign in as a user who manages it.")
		return nil, false
	}
	if _, _, err := k.managedAgent(ctx, view, agentID); err != nil {
		k.fail(w, r, err)
		return nil, false
	}
	return agents.WithActor(ctx, "user", view.User.ID), true
}
