package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type sessions struct{ s *Store }

const sessionColumns = `id, token_hash, user_id, expires_at, created_at, updated_at, ip_address, user_agent, persistent, method`

func sessionFields(x *storage.Session) []any {
	return []any{&x.ID, &x.TokenHash, &x.UserID, &x.ExpiresAt, &x.CreatedAt, &x.UpdatedAt,
		&x.IPAddress, &x.UserAgent, &x.Persistent, &x.Method}
}

// Create inserts x, setting zero CreatedAt and UpdatedAt to now.
func (r sessions) Create(ctx context.Context, x *storage.Session) error {
	t := now()
	stamp(&x.CreatedAt, t)
	stamp(&x.UpdatedAt, t)
	_, err := r.s.exec(ctx, "sessions.create",
		`INSERT INTO kavach_session (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		x.ID, x.TokenHash, x.UserID, x.ExpiresAt, x.CreatedAt, x.UpdatedAt,
		x.IPAddress, x.UserAgent, x.Persistent, x.Method)
	return err
}

func (r sessions) GetByTokenHash(ctx context.Context, tokenHash string) (*storage.Session, error) {
	var x storage.Session
	err := r.s.get(ctx, "sessions.get_by_token_hash",
		`SELECT `+sessionColumns+` FROM kavach_session WHERE token_hash = ?`, []any{tokenHash}, sessionFields(&x)...)
	if err != nil {
		return nil, err
	}
	return &x, nil
}

func (r sessions) Get(ctx context.Context, id string) (*storage.Session, error) {
	var x storage.Session
	err := r.s.get(ctx, "sessions.get",
		`SELECT `+sessionColumns+` FROM kavach_session WHERE id = ?`, []any{id}, sessionFields(&x)...)
	if err != nil {
		return nil, err
	}
	return &x, nil
}

func (r sessions) ListByUser(ctx context.Context, userID string) ([]storage.Session, error) {
	return list(ctx, r.s, "sessions.list_by_user",
		`SELECT `+sessionColumns+` FROM kavach_session WHERE user_id = ? ORDER BY created_at DESC, id DESC`,
		[]any{userID}, sessionFields)
}

func (r sessions) Touch(ctx context.Context, id string, expiresAt, now time.Time) error {
	return r.s.execOne(ctx, "sessions.touch",
		`UPDATE kavach_session SET expires_at = ?, updated_at = ? WHERE id = ?`, expiresAt, now, id)
}

func (r sessions) Delete(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "sessions.delete", `DELETE FROM kavach_session WHERE id = ?`, id)
}

// DeleteByUser returns the deleted token hashes so callers can evict them
// from the session cache.
func (r sessions) DeleteByUser(ctx context.Context, userID, exceptID string) ([]string, error) {
	hashes, err := list(ctx, r.s, "sessions.delete_by_user",
		`DELETE FROM kavach_session WHERE user_id = ? AND id <> ? RETURNING token_hash`,
		[]any{userID, exceptID}, func(h *string) []any { return []any{h} })
	if err != nil {
		return nil, err
	}
	return hashes, nil
}

func (r sessions) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := r.s.exec(ctx, "sessions.delete_expired", `DELETE FROM kavach_session WHERE expires_at <= ?`, now)
	return int(n), err
}
