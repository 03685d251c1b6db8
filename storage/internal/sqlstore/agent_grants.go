package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

// grants stores grant rows of one kind of principal: agents in
// kavach_agent_grant, users in kavach_user_grant (same columns but the
// owner's, in the record's AgentID field).
type grants struct {
	s            *Store
	table, owner string // table name and owner column, constants below
}

func agentGrants(s *Store) grants { return grants{s, "kavach_agent_grant", "agent_id"} }
func userGrants(s *Store) grants  { return grants{s, "kavach_user_grant", "user_id"} }

type grantRow struct {
	storage.AgentGrant
	spec string
}

func grantFields(g *grantRow) []any {
	return []any{&g.ID, &g.AgentID, &g.spec, &g.CreatedAt}
}

// Replace deletes the principal's grants and inserts grants, in the
// caller's transaction or one of its own.
func (r grants) Replace(ctx context.Context, ownerID string, list []storage.AgentGrant) error {
	return r.s.InTx(ctx, func(tx storage.Store) error {
		st := tx.(*Store)
		if _, err := st.exec(ctx, r.table+".clear", `DELETE FROM `+r.table+` WHERE `+r.owner+` = ?`, ownerID); err != nil {
			return err
		}
		t := now()
		for i := range list {
			g := &list[i]
			g.AgentID = ownerID
			stamp(&g.CreatedAt, t.Add(time.Duration(i)*time.Millisecond)) // keep the given order
			if _, err := st.exec(ctx, r.table+".insert",
				`INSERT INTO `+r.table+` (id, `+r.owner+`, spec, created_at) VALUES (?, ?, ?, ?)`,
				g.ID, g.AgentID, string(g.Spec), g.CreatedAt); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r grants) List(ctx context.Context, ownerID string) ([]storage.AgentGrant, error) {
	rows, err := list(ctx, r.s, r.table+".list",
		`SELECT id, `+r.owner+`, spec, created_at FROM `+r.table+` WHERE `+r.owner+` = ? ORDER BY created_at, id`,
		[]any{ownerID}, grantFields)
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
