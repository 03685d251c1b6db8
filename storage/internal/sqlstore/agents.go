package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type agents struct{ s *Store }

const agentColumns = `id, type, name, owner_user_id, client_id, status, metadata, created_at, updated_at, last_active_at, expires_at, parent_id, delegation_depth, organization_id`

// agentRow scans the metadata as text and converts it afterwards.
type agentRow struct {
	storage.Agent
	metadata string
}

func agentFields(a *agentRow) []any {
	return []any{&a.ID, &a.Type, &a.Name, &a.OwnerUserID, &a.ClientID, &a.Status, &a.metadata,
		&a.CreatedAt, &a.UpdatedAt, &a.LastActiveAt, &a.ExpiresAt, &a.ParentID, &a.DelegationDepth, &a.OrganizationID}
}

func (a *agentRow) record() storage.Agent {
	out := a.Agent
	out.Metadata = []byte(a.metadata)
	return out
}

// Create inserts a, setting zero CreatedAt and UpdatedAt to now and empty
// metadata to {}.
func (r agents) Create(ctx context.Context, a *storage.Agent) error {
	t := now()
	stamp(&a.CreatedAt, t)
	stamp(&a.UpdatedAt, t)
	if len(a.Metadata) == 0 {
		a.Metadata = []byte("{}")
	}
	_, err := r.s.exec(ctx, "agents.create",
		`INSERT INTO kavach_agent (`+agentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Type, a.Name, a.OwnerUserID, a.ClientID, a.Status, string(a.Metadata),
		a.CreatedAt, a.UpdatedAt, a.LastActiveAt, a.ExpiresAt, a.ParentID, a.DelegationDepth, a.OrganizationID)
	return err
}

func (r agents) one(ctx context.Context, op, where string, arg string) (*storage.Agent, error) {
	var row agentRow
	if err := r.s.get(ctx, op, `SELECT `+agentColumns+` FROM kavach_agent WHERE `+where+` = ?`, []any{arg}, agentFields(&row)...); err != nil {
		return nil, err
	}
	a := row.record()
	return &a, nil
}

func (r agents) Get(ctx context.Context, id string) (*storage.Agent, error) {
	return r.one(ctx, "agents.get", "id", id)
}

func (r agents) GetByClientID(ctx context.Context, clientID string) (*storage.Agent, error) {
	return r.one(ctx, "agents.get_by_client", "client_id", clientID)
}

func (r agents) many(ctx context.Context, op, query string, args []any) ([]storage.Agent, error) {
	rows, err := list(ctx, r.s, op, query, args, agentFields)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Agent, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}

func (r agents) List(ctx context.Context, limit, offset int) ([]storage.Agent, error) {
	return r.many(ctx, "agents.list",
		`SELECT `+agentColumns+` FROM kavach_agent ORDER BY created_at, id LIMIT ? OFFSET ?`,
		[]any{limitOrAll(limit), max(offset, 0)})
}

func (r agents) ListByOwner(ctx context.Context, userID string) ([]storage.Agent, error) {
	return r.many(ctx, "agents.list_by_owner",
		`SELECT `+agentColumns+` FROM kavach_agent WHERE owner_user_id = ? ORDER BY created_at, id`, []any{userID})
}

func (r agents) ListChildren(ctx context.Context, parentID string) ([]storage.Agent, error) {
	return r.many(ctx, "agents.list_children",
		`SELECT `+agentColumns+` FROM kavach_agent WHERE parent_id = ? ORDER BY created_at, id`, []any{parentID})
}

func (r agents) Lock(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "agents.lock", `UPDATE kavach_agent SET updated_at = updated_at WHERE id = ?`, id)
}

// SetClientID binds the agent to a client only while it has none, so two
// concurrent bindings cannot both win.
func (r agents) SetClientID(ctx context.Context, id, clientID string, at time.Time) error {
	n, err := r.s.exec(ctx, "agents.set_client",
		`UPDATE kavach_agent SET client_id = ?, updated_at = ? WHERE id = ? AND client_id IS NULL`, clientID, at.UTC(), id)
	if err != nil || n == 1 {
		return err
	}
	if _, err := r.Get(ctx, id); err != nil {
		return err
	}
	return storage.ErrAlreadyExists
}

func (r agents) ListByOrganization(ctx context.Context, orgID string) ([]storage.Agent, error) {
	return r.many(ctx, "agents.list_by_organization",
		`SELECT `+agentColumns+` FROM kavach_agent WHERE organization_id = ? ORDER BY created_at, id`, []any{orgID})
}

func (r agents) Update(ctx context.Context, a *storage.Agent) error {
	md := a.Metadata
	if len(md) == 0 {
		md = []byte("{}")
	}
	return r.s.execOne(ctx, "agents.update",
		`UPDATE kavach_agent SET name = ?, metadata = ?, expires_at = ?, updated_at = ? WHERE id = ?`,
		a.Name, string(md), a.ExpiresAt, a.UpdatedAt.UTC(), a.ID)
}

func (r agents) SetStatus(ctx context.Context, id, status string, at time.Time) error {
	return r.s.execOne(ctx, "agents.set_status",
		`UPDATE kavach_agent SET status = ?, updated_at = ? WHERE id = ?`, status, at.UTC(), id)
}

func (r agents) Touch(ctx context.Context, id string, at time.Time) error {
	return r.s.execOne(ctx, "agents.touch", `UPDATE kavach_agent SET last_active_at = ? WHERE id = ?`, at.UTC(), id)
}

func (r agents) Delete(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "agents.delete", `DELETE FROM kavach_agent WHERE id = ?`, id)
}
