package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type passkeys struct{ s *Store }

const passkeyColumns = `id, user_id, credential_id, name, credential, sign_count, clone_warning, created_at, last_used_at`

type passkeyRow struct {
	p          storage.Passkey
	credential string
	signCount  int64
}

func (r *passkeyRow) fields() []any {
	return []any{&r.p.ID, &r.p.UserID, &r.p.CredentialID, &r.p.Name, &r.credential, &r.signCount, &r.p.CloneWarning, &r.p.CreatedAt, &r.p.LastUsedAt}
}

func (r *passkeyRow) passkey() storage.Passkey {
	p := r.p
	p.Credential = []byte(r.credential)
	p.SignCount = uint32(r.signCount)
	return p
}

func (r passkeys) Create(ctx context.Context, p *storage.Passkey) error {
	stamp(&p.CreatedAt, now())
	_, err := r.s.exec(ctx, "passkeys.create",
		`INSERT INTO kavach_passkey (`+passkeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.UserID, p.CredentialID, p.Name, string(p.Credential), int64(p.SignCount), p.CloneWarning, p.CreatedAt, p.LastUsedAt)
	return err
}

func (r passkeys) getWhere(ctx context.Context, op, where string, arg any) (*storage.Passkey, error) {
	var row passkeyRow
	if err := r.s.get(ctx, op, `SELECT `+passkeyColumns+` FROM kavach_passkey WHERE `+where, []any{arg}, row.fields()...); err != nil {
		return nil, err
	}
	p := row.passkey()
	return &p, nil
}

func (r passkeys) Get(ctx context.Context, id string) (*storage.Passkey, error) {
	return r.getWhere(ctx, "passkeys.get", "id = ?", id)
}

func (r passkeys) GetByCredentialID(ctx context.Context, credentialID string) (*storage.Passkey, error) {
	return r.getWhere(ctx, "passkeys.get_by_credential", "credential_id = ?", credentialID)
}

func (r passkeys) ListByUser(ctx context.Context, userID string) ([]storage.Passkey, error) {
	rows, err := list(ctx, r.s, "passkeys.list_by_user",
		`SELECT `+passkeyColumns+` FROM kavach_passkey WHERE user_id = ? ORDER BY created_at, id`,
		[]any{userID}, (*passkeyRow).fields)
	out := make([]storage.Passkey, len(rows))
	for i := range rows {
		out[i] = rows[i].passkey()
	}
	return out, err
}

func (r passkeys) Rename(ctx context.Context, userID, id, name string) error {
	return r.s.execOne(ctx, "passkeys.rename",
		`UPDATE kavach_passkey SET name = ? WHERE id = ? AND user_id = ?`, name, id, userID)
}

func (r passkeys) RecordUse(ctx context.Context, id string, signCount uint32, cloneWarning bool, credential []byte, now time.Time) error {
	return r.s.execOne(ctx, "passkeys.record_use",
		`UPDATE kavach_passkey SET sign_count = ?, clone_warning = ?, credential = ?, last_used_at = ? WHERE id = ?`,
		int64(signCount), cloneWarning, string(credential), now, id)
}

func (r passkeys) Delete(ctx context.Context, userID, id string) error {
	return r.s.execOne(ctx, "passkeys.delete", `DELETE FROM kavach_passkey WHERE id = ? AND user_id = ?`, id, userID)
}
