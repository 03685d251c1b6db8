package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type agentGrants struct{ s *Store }

type agentGrantRow struct {
	storage.AgentGrant
	spec string
}

func agentGrantFields(g *agentGrantRow) []any {
	return []any{&g.ID, &g.AgentID, &g.spec, &g.CreatedAt}
}

// Replace deletes the agent's grants and inserts grants, in the caller's
// transaction or one of its own.
func (r agentGrants) Replace(ctx context.Context, agentID string, grants []storage.AgentGrant) error {
	return r.s.InTx(ctx, func(tx storage.Store) error {
		st := tx.(*Store)
		if _, err := st.exec(ctx, "agent_grants.clear", `DELETE FROM kavach_agent_grant WHERE agent_id = ?`, agentID); err != nil {
			return err
		}
		t := now()
		for i := range grants {
			g := &grants[i]
			g.AgentID = agentID
			stamp(&g.CreatedAt, t.Add(time.Duration(i)*time.Millisecond)) // keep the given order
			if _, err := st.exec(ctx, "agent_grants.insert",
				`INSERT INTO kavach_agent_grant (id, agent_id, spec, created_at) VALUES (?, ?, ?, ?)`,
				g.ID, g.AgentID, string(g.Spec), g.CreatedAt); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r agentGrants) List(ctx context.Context, agentID string) ([]storage.AgentGrant, error) {
	rows, err := list(ctx, r.s, "agent_grants.list",
		`SELECT id, agent_id, spec, created_at FROM kavach_agent_grant WHERE agent_id = ? ORDER BY created_at, id`,
		[]any{agentID}, agentGrantFields)
	if err != nil {
		return nil, err
	}
	out := make([]storage.AgentGrant, len(rows))
	for i := range rows {
		out[i] = rows[i].AgentGrant
		out[i].Spec = []byte(rows[i].spec)
	}
	return out, nil
}

type agentKeys struct{ s *Store }

const agentKeyColumns = `id, agent_id, hash, prefix, created_at, expires_at, revoked_at`

func agentKeyFields(k *storage.AgentKey) []any {
	return []any{&k.ID, &k.AgentID, &k.Hash, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt}
}

func (r agentKeys) Create(ctx context.Context, k *storage.AgentKey) error {
	stamp(&k.CreatedAt, now())
	_, err := r.s.exec(ctx, "agent_keys.create",
		`INSERT INTO kavach_agent_key (`+agentKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.AgentID, k.Hash, k.Prefix, k.CreatedAt, k.ExpiresAt, k.RevokedAt)
	return err
}

func (r agentKeys) GetByHash(ctx context.Context, hash string) (*storage.AgentKey, error) {
	var k storage.AgentKey
	if err := r.s.get(ctx, "agent_keys.get_by_hash",
		`SELECT `+agentKeyColumns+` FROM kavach_agent_key WHERE hash = ?`, []any{hash}, agentKeyFields(&k)...); err != nil {
		return nil, err
	}
	return &k, nil
}

func (r agentKeys) ListByAgent(ctx context.Context, agentID string) ([]storage.AgentKey, error) {
	return list(ctx, r.s, "agent_keys.list",
		`SELECT `+agentKeyColumns+` FROM kavach_agent_key WHERE agent_id = ? ORDER BY created_at, id`,
		[]any{agentID}, agentKeyFields)
}

func (r agentKeys) RevokeAgentKeys(ctx context.Context, agentID, keepID string, at time.Time) (int, error) {
	n, err := r.s.exec(ctx, "agent_keys.revoke",
		`UPDATE kavach_agent_key SET revoked_at = ?
		WHERE agent_id = ? AND id <> ? AND (revoked_at IS NULL OR revoked_at > ?)`,
		at.UTC(), agentID, keepID, at.UTC())
	return int(n), err
}
