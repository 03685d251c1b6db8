package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type trustPolicies struct{ s *Store }

const trustPolicyColumns = `id, scope_type, scope_id, body, version, created_at, updated_at, created_by, updated_by`

type trustPolicyRow struct {
	storage.TrustPolicy
	body string
}

func trustPolicyFields(r *trustPolicyRow) []any {
	return []any{&r.ID, &r.ScopeType, &r.ScopeID, &r.body, &r.Version, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy}
}

func (r *trustPolicyRow) record() storage.TrustPolicy {
	out := r.TrustPolicy
	out.Body = []byte(r.body)
	return out
}

func (r trustPolicies) Epoch(ctx context.Context) (int64, error) {
	var n int64
	err := r.s.get(ctx, "trust_policies.epoch", `SELECT epoch FROM kavach_trust_policy_epoch WHERE id = 1`, nil, &n)
	return n, err
}

// bump moves the epoch, first thing in every change's transaction: the
// epoch row's lock makes policy changes take turns (so a count taken
// after it, as Create's caller does, sees every other change), and always
// in the same order, epoch then policy, so they cannot deadlock.
func (r trustPolicies) bump(ctx context.Context) error {
	return r.s.execOne(ctx, "trust_policies.epoch_bump", `UPDATE kavach_trust_policy_epoch SET epoch = epoch + 1 WHERE id = 1`)
}

// revision writes the revision of a change; the caller is in a
// transaction.
func (r trustPolicies) revision(ctx context.Context, p *storage.TrustPolicy, deleted bool, by string, at time.Time) error {
	_, err := r.s.exec(ctx, "trust_policies.revision",
		`INSERT INTO kavach_trust_policy_revision (policy_id, version, body, deleted, changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?)`,
		p.ID, p.Version, string(p.Body), deleted, by, at.UTC())
	return err
}

func (r trustPolicies) Count(ctx context.Context) (int, error) {
	var n int
	err := r.s.get(ctx, "trust_policies.count", `SELECT COUNT(*) FROM kavach_trust_policy`, nil, &n)
	return n, err
}

func (r trustPolicies) List(ctx context.Context) ([]storage.TrustPolicy, error) {
	rows, err := list(ctx, r.s, "trust_policies.list",
		`SELECT `+trustPolicyColumns+` FROM kavach_trust_policy ORDER BY created_at, id`, nil, trustPolicyFields)
	if err != nil {
		return nil, err
	}
	out := make([]storage.TrustPolicy, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}

func (r trustPolicies) Get(ctx context.Context, id string) (*storage.TrustPolicy, error) {
	var row trustPolicyRow
	if err := r.s.get(ctx, "trust_policies.get", `SELECT `+trustPolicyColumns+` FROM kavach_trust_policy WHERE id = ?`,
		[]any{id}, trustPolicyFields(&row)...); err != nil {
		return nil, err
	}
	out := row.record()
	return &out, nil
}

func (r trustPolicies) Create(ctx context.Context, p *storage.TrustPolicy) error {
	stamp(&p.CreatedAt, now())
	p.UpdatedAt, p.UpdatedBy, p.Version = p.CreatedAt, p.CreatedBy, 1
	return r.s.InTx(ctx, func(tx storage.Store) error {
		st := tx.(*Store)
		if err := (trustPolicies{st}).bump(ctx); err != nil {
			return err
		}
		if _, err := st.exec(ctx, "trust_policies.create",
			`INSERT INTO kavach_trust_policy (`+trustPolicyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.ScopeType, p.ScopeID, string(p.Body), p.Version, p.CreatedAt.UTC(), p.UpdatedAt.UTC(), p.CreatedBy, p.UpdatedBy); err != nil {
			return err
		}
		return trustPolicies{st}.revision(ctx, p, false, p.CreatedBy, p.CreatedAt)
	})
}

// lock reads a policy under its row lock; the caller is in a transaction.
func (r trustPolicies) lock(ctx context.Context, id string) (*storage.TrustPolicy, error) {
	if err := r.s.execOne(ctx, "trust_policies.lock", `UPDATE kavach_trust_policy SET version = version WHERE id = ?`, id); err != nil {
		return nil, err
	}
	return r.Get(ctx, id)
}

func (r trustPolicies) Update(ctx context.Context, id string, fn func(*storage.TrustPolicy) error) (*storage.TrustPolicy, error) {
	var out *storage.TrustPolicy
	err := r.s.InTx(ctx, func(tx storage.Store) error {
		st := tx.(*Store)
		if err := (trustPolicies{st}).bump(ctx); err != nil {
			return err
		}
		p, err := trustPolicies{st}.lock(ctx, id)
		if err != nil {
			return err
		}
		prev := p.UpdatedAt
		if err := fn(p); err != nil {
			return err
		}
		p.ID = id
		p.Version++
		if p.UpdatedAt.Equal(prev) {
			p.UpdatedAt = now()
		}
		if err := st.execOne(ctx, "trust_policies.update",
			`UPDATE kavach_trust_policy SET body = ?, version = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
			string(p.Body), p.Version, p.UpdatedAt.UTC(), p.UpdatedBy, id); err != nil {
			return err
		}
		out = p
		return trustPolicies{st}.revision(ctx, p, false, p.UpdatedBy, p.UpdatedAt)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (r trustPolicies) Delete(ctx context.Context, id, by string, at time.Time) (*storage.TrustPolicy, error) {
	var out *storage.TrustPolicy
	err := r.s.InTx(ctx, func(tx storage.Store) error {
		st := tx.(*Store)
		if err := (trustPolicies{st}).bump(ctx); err != nil {
			return err
		}
		p, err := trustPolicies{st}.lock(ctx, id)
		if err != nil {
			return err
		}
		if err := st.execOne(ctx, "trust_policies.delete", `DELETE FROM kavach_trust_policy WHERE id = ?`, id); err != nil {
			return err
		}
		out = p
		deleted := *p
		deleted.Version++
		return trustPolicies{st}.revision(ctx, &deleted, true, by, at)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type trustPolicyRevisionRow struct {
	storage.TrustPolicyRevision
	body string
}

func (r trustPolicies) Revisions(ctx context.Context, id string) ([]storage.TrustPolicyRevision, error) {
	rows, err := list(ctx, r.s, "trust_policies.revisions",
		`SELECT policy_id, version, body, deleted, changed_by, changed_at FROM kavach_trust_policy_revision WHERE policy_id = ? ORDER BY version`,
		[]any{id}, func(r *trustPolicyRevisionRow) []any {
			return []any{&r.PolicyID, &r.Version, &r.body, &r.Deleted, &r.ChangedBy, &r.ChangedAt}
		})
	if err != nil {
		return nil, err
	}
	out := make([]storage.TrustPolicyRevision, len(rows))
	for i := range rows {
		out[i] = rows[i].TrustPolicyRevision
		out[i].Body = []byte(rows[i].body)
	}
	return out, nil
}
