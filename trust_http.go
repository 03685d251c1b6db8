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
// contributed (for those who manage the agent), and the list of agents by
// score (server admins).

func (k *Kavach) trustRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/auth/trust/agents/{id}", k.signedIn(k.agentOwner(k.handleAgentTrust)))
	mux.HandleFunc("GET /api/auth/trust/agents", k.admin(k.handleListTrust))
}

type trustView struct {
	AgentID         string     `json:"agentId"`
	Events          int64      `json:"events"`
	FirstAt         *time.Time `json:"firstAt"`
	LastAt          *time.Time `json:"lastAt"`
	LastViolationAt *time.Time `json:"lastViolationAt"`
	trust.Breakdown
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
	httpx.WriteJSON(w, http.StatusOK, trustView{AgentID: a.ID, Events: st.Events, FirstAt: timeOrNil(st.FirstAt),
		LastAt: timeOrNil(st.LastAt), LastViolationAt: timeOrNil(st.LastViolationAt), Breakdown: b})
}

func (k *Kavach) handleListTrust(w http.ResponseWriter, r *http.Request, _ users.SessionView) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "limit must be between 1 and 1000.")
			return
		}
		limit = n
	}
	list, err := k.Store.TrustStates().List(r.Context(), limit)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	type row struct {
		AgentID   string    `json:"agentId"`
		Score     float64   `json:"score"`
		Level     string    `json:"level"`
		UpdatedAt time.Time `json:"updatedAt"`
	}
	out := make([]row, 0, len(list))
	for _, ts := range list {
		out = append(out, row{AgentID: ts.AgentID, Score: ts.Score, Level: ts.Level, UpdatedAt: ts.UpdatedAt})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
