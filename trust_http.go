package kavach

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
	"github.com/kavachos/kavach/users"
)

// Trust scores over HTTP: an agent's score with what each signal
// contributed and its anomaly findings (for those who manage the agent),
// and the list of agents by score (server admins).

func (k *Kavach) trustRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/trust/agents/{id}", k.signedIn(k.agentOwner(k.handleAgentTrust)))
	mux.HandleFunc("GET /api/auth/trust/agents/{id}/findings", k.signedIn(k.agentOwner(k.handleAgentFindings)))
	mux.HandleFunc("GET /api/auth/trust/agents", k.admin(k.handleListTrust))
}

// latestFindings is how many findings the score views carry; the findings
// route has them all.
const latestFindings = 3

type trustView struct {
	AgentID         string        `json:"agentId"`
	Events          int64         `json:"events"`
	FirstAt         *time.Time    `json:"firstAt"`
	LastAt          *time.Time    `json:"lastAt"`
	LastViolationAt *time.Time    `json:"lastViolationAt"`
	LatestFindings  []findingView `json:"latestFindings"`
	trust.Breakdown
}

type findingView struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	At        time.Time `json:"at"`
	Severity  float64   `json:"severity"`
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"createdAt"`
}

func toFindingViews(fs []storage.TrustFinding) []findingView {
	out := make([]findingView, 0, len(fs))
	for _, f := range fs {
		out = append(out, findingView{ID: f.ID, Kind: f.Kind, At: f.At, Severity: f.Severity, Detail: f.Detail, CreatedAt: f.CreatedAt})
	}
	return out
}

// limitParam reads ?limit=, between 1 and max, def when absent; it
// answers 400 itself when the value is out of range.
func limitParam(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "limit must be between 1 and "+strconv.Itoa(max)+".")
		return 0, false
	}
	return n, true
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (k *Kavach) handleAgentTrust(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	b, st, err := k.Trust.Explain(r.Context(), a.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	fs, err := k.Store.TrustFindings().ListByAgent(r.Context(), a.ID, latestFindings)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, trustView{AgentID: a.ID, Events: st.Events, FirstAt: timeOrNil(st.FirstAt),
		LastAt: timeOrNil(st.LastAt), LastViolationAt: timeOrNil(st.LastViolationAt), LatestFindings: toFindingViews(fs), Breakdown: b})
}

// handleAgentFindings is GET /api/auth/trust/agents/{id}/findings: the
// agent's anomaly findings, newest first.
func (k *Kavach) handleAgentFindings(w http.ResponseWriter, r *http.Request, _ users.SessionView, a storage.Agent, _ []agents.Grant) {
	limit, ok := limitParam(w, r, 50, 1000)
	if !ok {
		return
	}
	fs, err := k.Store.TrustFindings().ListByAgent(r.Context(), a.ID, limit)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"agentId": a.ID, "findings": toFindingViews(fs)})
}

func (k *Kavach) handleListTrust(w http.ResponseWriter, r *http.Request, _ users.SessionView) {
	limit, ok := limitParam(w, r, 100, 1000)
	if !ok {
		return
	}
	list, err := k.Store.TrustStates().List(r.Context(), limit)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	ids := make([]string, len(list))
	for i, ts := range list {
		ids[i] = ts.AgentID
	}
	latest, err := k.Store.TrustFindings().LatestByAgents(r.Context(), ids, latestFindings)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	type row struct {
		AgentID        string        `json:"agentId"`
		Score          float64       `json:"score"`
		Level          string        `json:"level"`
		UpdatedAt      time.Time     `json:"updatedAt"`
		LatestFindings []findingView `json:"latestFindings"`
	}
	out := make([]row, 0, len(list))
	for _, ts := range list {
		out = append(out, row{AgentID: ts.AgentID, Score: ts.Score, Level: ts.Level, UpdatedAt: ts.UpdatedAt,
			LatestFindings: toFindingViews(latest[ts.AgentID])})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
