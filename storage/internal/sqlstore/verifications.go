package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/kavachos/kavach/storage"
)

type verifications struct{ s *Store }

const verificationColumns = `id, purpose, token_hash, user_id, email, expires_at, created_at`

func verificationFields(v *storage.Verification) []any {
	return []any{&v.ID, &v.Purpose, &v.TokenHash, &v.UserID, &v.Email, &v.ExpiresAt, &v.CreatedAt}
}

// Create inserts v, setting a zero CreatedAt to now.
func (r verifications) Create(ctx context.Context, v *storage.Verification) error {
	stamp(&v.CreatedAt, now())
	_, err := r.s.exec(ctx, "verifications.create",
		`INSERT INTO kavach_verification (`+verificationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.Purpose, v.TokenHash, v.UserID, v.Email, v.ExpiresAt, v.CreatedAt)
	return err
}

// Consume deletes before it checks expiry: the DELETE is what makes the
// token single-use (only one concurrent caller gets the row back), and an
// expired row should go anyway.
func (r verifications) Consume(ctx context.Context, purpose, tokenHash string, now time.Time) (*storage.Verification, error) {
	var v storage.Verification
	err := r.s.get(ctx, "verifications.consume",
		`DELETE FROM kavach_verification WHERE purpose = ? AND token_hash = ? RETURNING `+verificationColumns,
		[]any{purpose, tokenHash}, verificationFields(&v)...)
	if err != nil {
		return nil, err
	}
	if !v.ExpiresAt.After(now) {
		return nil, fmt.Errorf("storage: verifications.consume: expired: %w", storage.ErrNotFound)
	}
	return &v, nil
}

func (r verifications) DeleteByUser(ctx context.Context, userID, purpose string) error {
	_, err := r.s.exec(ctx, "verifications.delete_by_user",
		`DELETE FROM kavach_verification WHERE user_id = ? AND purpose = ?`, userID, purpose)
	return err
}

func (r verifications) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := r.s.exec(ctx, "verifications.delete_expired",
		`DELETE FROM kavach_verification WHERE expires_at <= ?`, now)
	return int(n), err
}
