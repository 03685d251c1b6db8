package kavach

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

// The approvals API: a call that a grant sends to a human opens an
// approval request (POST /api/auth/authorize answers APPROVAL_REQUIRED
// with its approvalId); the agent's owner or an admin approves or denies
// it; the agent polls it with its own credential.

type approvalView struct {
	ID              string  `json:"id"`
	AgentID         string  `json:"agentId"`
	OwnerID         *string `json:"ownerId"`
	ActingFor       string  `json:"actingFor,omitempty"`
	Action          string  `json:"action"`
	Resource        string  `json:"resource"`
	ArgumentsDigest string  `json:"argumentsDigest,omitempty"`
	// Arguments are the call's arguments when they were kept whole and are
	// JSON; otherwise ArgumentsPreview holds the kept text.
	Arguments          json.RawMessage `json:"arguments,omitempty"`
	ArgumentsPreview   string          `json:"argumentsPreview,omitempty"`
	ArgumentsTruncated bool            `json:"argumentsTruncated,omitempty"`
	Status             string          `json:"status"`
	Mode               string          `json:"mode,omitempty"`
	RequestedAt        time.Time       `json:"requestedAt"`
	ExpiresAt          time.Time       `json:"expiresAt"`
	DecidedAt          *time.Time      `json:"decidedAt,omitempty"`
	DecidedBy          string          `json:"decidedBy,omitempty"`
	Reason             string          `json:"reason,omitempty"`
	ApprovedUntil      *time.Time      `json:"approvedUntil,omitempty"`
	ConsumedAt         *time.Time      `json:"consumedAt,omitempty"`
}

func toApprovalView(a storage.Approval) approvalView {
	v := approvalView{ID: a.ID, AgentID: a.AgentID, OwnerID: a.OwnerUserID, ActingFor: a.ActingFor, Action: a.Action,
		Resource: a.Resource, ArgumentsDigest: a.ArgsDigest, ArgumentsTruncated: a.ArgumentsTruncated, Status: a.Status,
		Mode: a.Mode, RequestedAt: a.RequestedAt, ExpiresAt: a.ExpiresAt, DecidedAt: a.DecidedAt, DecidedBy: a.DecidedBy,
		Reason: a.Reason, ApprovedUntil: a.ApprovedUntil, ConsumedAt: a.ConsumedAt}
	switch {
	case a.Arguments == nil:
	case !a.ArgumentsTruncated && json.Valid(a.Arguments):
		v.Arguments = json.RawMessage(a.Arguments)
	default:
		v.ArgumentsPreview = string(a.Arguments)
	}
	return v
}

func (k *Kavach) approvalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/approvals", k.signedIn(k.handleListApprovals))
	mux.HandleFunc("GET /api/auth/approvals/{id}", k.handleGetApproval)
	mux.HandleFunc("POST /api/auth/approvals/{id}/approve", k.signedIn(k.approvalDecider(k.handleApprove)))
	mux.HandleFunc("POST /api/auth/approvals/{id}/deny", k.signedIn(k.approvalDecider(k.handleDeny)))
}

// mayDecideApproval is the rule for who may see and decide an approval
// request: the owner of its agent, or a server admin. (approvalScope is
// the same rule as a list filter; change both together.)
func (k *Kavach) mayDecideApproval(ctx context.Context, view users.SessionView, a storage.Approval) bool {
	if a.OwnerUserID != nil && *a.OwnerUserID == view.User.ID || k.isAdmin(publicUser(view.User)) {
		return true
	}
	return k.managesAgent(ctx, view, a.AgentID) // an owner or admin of the agent's organization
}

// managesAgent reports whether the user may manage the agent (see
// canManageAgent); false when it does not exist or cannot be read.
func (k *Kavach) managesAgent(ctx context.Context, view users.SessionView, agentID string) bool {
	_, _, err := k.managedAgent(ctx, view, agentID)
	return err == nil
}

// approvalScope is mayDecideApproval as a list filter: the owner whose
// approvals the user may list, "" for all of them (a server admin, or the
// manager of the one agent the list is filtered to).
func (k *Kavach) approvalScope(ctx context.Context, view users.SessionView, agentID string) string {
	if k.isAdmin(publicUser(view.User)) || agentID != "" && k.managesAgent(ctx, view, agentID) {
		return ""
	}
	return view.User.ID
}

// handleListApprovals is GET /api/auth/approvals?status=&agentId=&limit=&cursor=:
// the approvals of the caller's agents (all of them for a server admin),
// newest first. status defaults to pending; "all" lists every status.
func (k *Kavach) handleListApprovals(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	q := r.URL.Query()
	query := agents.ApprovalQuery{OwnerUserID: k.approvalScope(r.Context(), view, q.Get("agentId")), AgentID: q.Get("agentId"),
		Status: q.Get("status"), Cursor: q.Get("cursor")}
	switch query.Status {
	case "":
		query.Status = storage.ApprovalPending
	case "all":
		query.Status = ""
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > storage.ApprovalListMax {
			httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "limit must be between 1 and "+strconv.Itoa(storage.ApprovalListMax))
			return
		}
		query.Limit = n
	}
	list, next, err := k.Agents.ListApprovals(r.Context(), query)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]approvalView, 0, len(list))
	for _, a := range list {
		out = append(out, toApprovalView(a))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"approvals": out, "nextCursor": next})
}

// handleGetApproval is GET /api/auth/approvals/{id}, for the agent that
// asked (its API key or access token, as for POST /api/auth/authorize) to
// poll, and for its owner or an admin (session). Anyone else gets 404.
func (k *Kavach) handleGetApproval(w http.ResponseWriter, r *http.Request) {
	cred, rejected := k.bearerAgent(r)
	agentID := cred.agentID
	if rejected {
		agentUnauthorized(w)
		return
	}
	var allowed func(storage.Approval) bool
	if agentID != "" {
		allowed = func(a storage.Approval) bool { return a.AgentID == agentID }
	} else {
		view, err := k.session(w, r)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		allowed = func(a storage.Approval) bool { return k.mayDecideApproval(r.Context(), view, a) }
	}
	a, err := k.Agents.GetApproval(r.Context(), r.PathValue("id"))
	if err == nil && !allowed(a) {
		err = agents.ErrApprovalNotFound
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toApprovalView(a))
}

// approvalDecider loads the approval of the path and lets only those who
// may decide it through; others get 404, so ids cannot be probed.
func (k *Kavach) approvalDecider(h func(http.ResponseWriter, *http.Request, users.SessionView, storage.Approval)) func(http.ResponseWriter, *http.Request, users.SessionView) {
	return func(w http.ResponseWriter, r *http.Request, view users.SessionView) {
		a, err := k.Agents.GetApproval(r.Context(), r.PathValue("id"))
		if err == nil && !k.mayDecideApproval(r.Context(), view, a) {
			err = agents.ErrApprovalNotFound
		}
		if err != nil {
			k.fail(w, r, err)
			return
		}
		h(w, r, view, a)
	}
}

func (k *Kavach) handleApprove(w http.ResponseWriter, r *http.Request, view users.SessionView, a storage.Approval) {
	var req struct {
		Mode            string `json:"mode"`
		DurationSeconds *int64 `json:"durationSeconds"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	var d time.Duration
	if n := req.DurationSeconds; n != nil {
		if max := int64(agents.MaxApprovalWindow / time.Second); *n < 1 || *n > max {
			httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "durationSeconds must be between 1 and "+strconv.FormatInt(max, 10)+".")
			return
		}
		d = time.Duration(*n) * time.Second
	}
	out, err := k.Agents.ApproveRequest(r.Context(), a.ID, view.User.ID, agents.ApproveInput{Mode: req.Mode, Duration: d})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toApprovalView(out))
}

func (k *Kavach) handleDeny(w http.ResponseWriter, r *http.Request, view users.SessionView, a storage.Approval) {
	var req struct {
		Reason string `json:"reason"`
	}
	if !k.decodeOptional(w, r, &req) {
		return
	}
	out, err := k.Agents.DenyRequest(r.Context(), a.ID, view.User.ID, req.Reason)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toApprovalView(out))
}
