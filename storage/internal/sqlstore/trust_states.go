package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kavachos/kavach/storage"
)

type trustStates struct{ s *Store }

const trustStateColumns = `agent_id, state, baseline, score, level, updated_at`

type trustStateRow struct {
	storage.TrustState
	state    string
	baseline sql.NullString
}

func trustStateFields(r *trustStateRow) []any {
	return []any{&r.AgentID, &r.state, &r.baseline, &r.Score, &r.Level, &r.UpdatedAt}
}

func (r *trustStateRow) record() storage.TrustState {
	out := r.TrustState
	out.State = []byte(r.state)
	if r.baseline.Valid {
		out.Baseline = []byte(r.baseline.String)
	}
	return out
}

func (r trustStates) Get(ctx context.Context, agentID string) (*storage.TrustState, error) {
	var row trustStateRow
	if err := r.s.get(ctx, "trust_states.get", `SELECT `+trustStateColumns+` FROM kavach_trust_state WHERE agent_id = ?`,
		[]any{agentID}, trustStateFields(&row)...); err != nil {
		return nil, err
	}
	out := row.record()
	return &out, nil
}

func (r trustStates) Update(ctx context.Context, agentID string, fn func(*storage.TrustState) error) error {
	return r.s.InTx(ctx, func(tx storage.Store) error {
		st := tx.(*Store)
		// The agent's row is locked first (it must exist), so that a state
		// row created here does not race another node's.
		if err := (agents{st}).Lock(ctx, agentID); err != nil {
			return fmt.Errorf("trust state of agent %s: %w", agentID, err)
		}
		cur, err := trustStates{st}.Get(ctx, agentID)
		exists := err == nil
		switch {
		case err == nil:
		case errors.Is(err, storage.ErrNotFound):
			cur = &storage.TrustState{AgentID: agentID}
		default:
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		cur.AgentID = agentID
		var baseline any
		if cur.Baseline != nil {
			baseline = string(cur.Baseline)
		}
		stamp(&cur.UpdatedAt, now())
		if exists {
			return st.execOne(ctx, "trust_states.update",
				`UPDATE kavach_trust_state SET state = ?, baseline = ?, score = ?, level = ?, updated_at = ? WHERE agent_id = ?`,
				string(cur.State), baseline, cur.Score, cur.Level, cur.UpdatedAt, agentID)
		}
		_, err = st.exec(ctx, "trust_states.insert",
			`INSERT INTO kavach_trust_state (`+trustStateColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			agentID, string(cur.State), baseline, cur.Score, cur.Level, cur.UpdatedAt)
		return err
	})
}

func (r trustStates) List(ctx context.Context, limit int) ([]storage.TrustState, error) {
	rows, err := list(ctx, r.s, "trust_states.list",
		`SELECT `+trustStateColumns+` FROM kavach_trust_state ORDER BY score, agent_id LIMIT ?`, []any{limitOrAll(limit)}, trustStateFields)
	if err != nil {
		return nil, err
	}
	out := make([]storage.TrustState, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}
