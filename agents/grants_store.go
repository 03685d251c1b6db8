package agents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// storedGrant is the JSON an agent's grant is stored as
// (storage.AgentGrant.Spec). The ID lives in the row, not in the spec;
// Position keeps the order the grants were given in, which storage does
// not (evaluation does not depend on it, but people reading the grants
// back expect their own order).
type storedGrant struct {
	Grant
	Position int `json:"position"`
}

// checkGrants validates each grant on its own, so the error can name the
// one at fault, and returns copies.
func checkGrants(in []Grant) ([]Grant, error) {
	if len(in) > MaxAgentGrants {
		return nil, invalid("permissions", "at most %d grants", MaxAgentGrants)
	}
	out := make([]Grant, len(in))
	for i := range in {
		g := cloneGrant(in[i])
		id := g.ID
		g.ID = "" // IDs are assigned by grantRows; a foreign one must not fail validation
		if err := g.Validate(); err != nil {
			msg := strings.TrimPrefix(err.Error(), ErrInvalidGrant.Error()+` "": `)
			return nil, &ValidationError{Field: fmt.Sprintf("permissions[%d]", i), Message: msg, Err: err}
		}
		g.ID = id
		out[i] = g
	}
	return out, nil
}

// grantRows gives each grant its ID — the one it names if that is one of
// the agent's current grants (and not already taken by an earlier grant
// of this list), else a new one — and returns the grants and their rows.
func grantRows(agentID string, grants []Grant, current []storage.AgentGrant, now time.Time) ([]Grant, []storage.AgentGrant, error) {
	created := make(map[string]time.Time, len(current))
	for _, r := range current {
		created[r.ID] = r.CreatedAt
	}
	out := make([]Grant, len(grants))
	rows := make([]storage.AgentGrant, len(grants))
	for i, g := range grants {
		at, keep := created[g.ID]
		if keep {
			delete(created, g.ID)
		} else {
			g.ID, at = id.New("grt"), now
		}
		spec := storedGrant{Grant: g, Position: i}
		spec.ID = ""
		b, err := json.Marshal(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("encode grant: %w", err)
		}
		out[i] = g
		rows[i] = storage.AgentGrant{ID: g.ID, AgentID: agentID, Spec: b, CreatedAt: at}
	}
	// The final set must compile as a whole too (CompileGrants also
	// checks what single grants cannot, such as the set's size).
	if _, err := CompileGrants(out); err != nil {
		return nil, nil, &ValidationError{Field: "permissions", Message: err.Error(), Err: err}
	}
	return out, rows, nil
}

// decodeGrants reads stored grants back, in the order they were given.
func decodeGrants(rows []storage.AgentGrant) ([]Grant, error) {
	specs := make([]storedGrant, len(rows))
	for i, r := range rows {
		// UseNumber keeps enum numbers exact (see ArgumentRule.Enum).
		dec := json.NewDecoder(bytes.NewReader(r.Spec))
		dec.UseNumber()
		if err := dec.Decode(&specs[i]); err != nil {
			return nil, fmt.Errorf("decode grant %s of agent %s: %w", r.ID, r.AgentID, err)
		}
		specs[i].ID = r.ID
	}
	slices.SortStableFunc(specs, func(a, b storedGrant) int { return a.Position - b.Position })
	out := make([]Grant, len(specs))
	for i := range specs {
		out[i] = specs[i].Grant
	}
	return out, nil
}
