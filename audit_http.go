package kavach

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

// The audit API: query with filters and cursor pagination, and streaming
// export with no row cap. Server admins see everything; other users see
// the records of agents they manage (canManageAgent: agents they own, and
// those of organizations where they are an owner or admin); they must name
// the agent.

type auditView struct {
	Seq           int64     `json:"seq"`
	ID            string    `json:"id"`
	At            time.Time `json:"at"`
	Kind          string    `json:"kind"`
	Event         string    `json:"event"`
	PrincipalType string    `json:"principalType,omitempty"`
	PrincipalID   string    `json:"principalId,omitempty"`
	AgentID       string    `json:"agentId,omitempty"`
	ActingFor     string    `json:"actingFor,omitempty"`
	Chain         []string  `json:"chain,omitempty"`
	Action        string    `json:"action,omitempty"`
	Resource      string    `json:"resource,omitempty"`
	ArgsDigest    string    `json:"argsDigest,omitempty"`
	Result        string    `json:"result"`
	Reason        string    `json:"reason,omitempty"`
	LatencyMicros int64     `json:"latencyMicros"`
	IP            string    `json:"ip,omitempty"`
	UserAgent     string    `json:"userAgent,omitempty"`
	Hash          string    `json:"hash"`
}

func toAuditView(r storage.AuditRecord) auditView {
	return auditView{Seq: r.Seq, ID: r.ID, At: r.At, Kind: r.Kind, Event: r.Event, PrincipalType: r.PrincipalType,
		PrincipalID: r.PrincipalID, AgentID: r.AgentID, ActingFor: r.ActingFor, Chain: r.Chain, Action: r.Action,
		Resource: r.Resource, ArgsDigest: r.ArgsDigest, Result: r.Result, Reason: r.Reason, LatencyMicros: r.LatencyMicros,
		IP: r.IP, UserAgent: r.UserAgent, Hash: hex.EncodeToString(r.Hash)}
}

func (k *Kavach) auditRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/audit", k.signedIn(k.handleAuditQuery))
	mux.HandleFunc("GET /api/auth/audit/export", k.signedIn(k.handleAuditExport))
}

// auditFilter reads the query string and checks the caller may see it.
func (k *Kavach) auditFilter(r *http.Request, view users.SessionView) (storage.AuditFilter, int, string) {
	q := r.URL.Query()
	f := storage.AuditFilter{PrincipalID: q.Get("principalId"), AgentID: q.Get("agentId"), Kind: q.Get("kind"),
		Event: q.Get("event"), Action: q.Get("action"), Result: q.Get("result"), Cursor: q.Get("cursor")}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, http.StatusBadRequest, name + " must be an RFC 3339 time"
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > storage.AuditQueryMax {
			return f, http.StatusBadRequest, "limit must be between 1 and " + strconv.Itoa(storage.AuditQueryMax)
		}
		f.Limit = n
	}
	if k.isAdmin(publicUser(view.User)) {
		return f, 0, ""
	}
	if f.AgentID == "" {
		return f, http.StatusForbidden, "Name one of your agents with agentId (only server admins see the whole log)."
	}
	if !k.managesAgent(r.Context(), view, f.AgentID) {
		return f, http.StatusForbidden, "You can only read the audit records of agents you manage."
	}
	return f, 0, ""
}

func (k *Kavach) handleAuditQuery(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	f, status, msg := k.auditFilter(r, view)
	if status != 0 {
		httpx.WriteError(w, status, map[int]string{400: "INVALID_REQUEST", 403: "FORBIDDEN"}[status], msg)
		return
	}
	recs, next, err := k.Store.Audit().Query(r.Context(), f)
	if errors.Is(err, storage.ErrInvalidValue) {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "The cursor or a filter value is not valid.")
		return
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]auditView, 0, len(recs))
	for _, rec := range recs {
		out = append(out, toAuditView(rec))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"records": out, "nextCursor": next})
}

// matches applies a filter to a scanned record (export streams the whole
// log in sequence order and filters as it goes).
func matches(f storage.AuditFilter, r storage.AuditRecord) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	return eq(f.PrincipalID, r.PrincipalID) && eq(f.AgentID, r.AgentID) && eq(f.Kind, r.Kind) && eq(f.Event, r.Event) &&
		eq(f.Action, r.Action) && eq(f.Result, r.Result) &&
		(f.From.IsZero() || !r.At.Before(f.From)) && (f.To.IsZero() || r.At.Before(f.To))
}

var csvHeader = []string{"seq", "id", "at", "kind", "event", "principal_type", "principal_id", "agent_id", "acting_for",
	"chain", "action", "resource", "args_digest", "result", "reason", "latency_us", "ip", "user_agent", "hash"}

// handleAuditExport streams every matching record, oldest first, as JSON
// (an array), NDJSON or CSV, without a row cap and in constant memory.
func (k *Kavach) handleAuditExport(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	f, status, msg := k.auditFilter(r, view)
	if status != 0 {
		httpx.WriteError(w, status, map[int]string{400: "INVALID_REQUEST", 403: "FORBIDDEN"}[status], msg)
		return
	}
	format := r.URL.Query().Get("format")
	var write func(storage.AuditRecord) error
	var finish func() error
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch format {
	case "", "json":
		h.Set("Content-Type", "application/json")
		first := true
		_, _ = w.Write([]byte("["))
		enc := json.NewEncoder(w)
		write = func(rec storage.AuditRecord) error {
			if !first {
				if _, err := w.Write([]byte(",")); err != nil {
					return err
				}
			}
			first = false
			return enc.Encode(toAuditView(rec))
		}
		finish = func() error { _, err := w.Write([]byte("]\n")); return err }
	case "ndjson":
		h.Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		write = func(rec storage.AuditRecord) error { return enc.Encode(toAuditView(rec)) }
		finish = func() error { return nil }
	case "csv":
		h.Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.Write(csvHeader)
		write = func(rec storage.AuditRecord) error {
			v := toAuditView(rec)
			return cw.Write([]string{strconv.FormatInt(v.Seq, 10), v.ID, v.At.Format(time.RFC3339Nano), v.Kind, v.Event,
				v.PrincipalType, v.PrincipalID, v.AgentID, v.ActingFor, strings.Join(v.Chain, " "), v.Action, v.Resource,
				v.ArgsDigest, v.Result, v.Reason, strconv.FormatInt(v.LatencyMicros, 10), v.IP, v.UserAgent, v.Hash})
		}
		finish = func() error { cw.Flush(); return cw.Error() }
	default:
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "format must be json, ndjson or csv.")
		return
	}
	h.Set("Content-Disposition", `attachment; filename="kavach-audit.`+map[string]string{"": "json", "json": "json", "ndjson": "ndjson", "csv": "csv"}[format]+`"`)
	err := k.Store.Audit().Scan(r.Context(), 1, func(rec storage.AuditRecord) error {
		if !matches(f, rec) {
			return nil
		}
		return write(rec)
	})
	if err == nil {
		err = finish()
	}
	if err != nil {
		// Headers are gone; all that can be done is to cut the stream
		// short, which clients see as a truncated body.
		k.cfg.Logger.Warn("audit export stopped", "err", err)
	}
}
