package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/kavachos/kavach/storage"
)

type signingKeys struct{ s *Store }

const signingKeyColumns = `kid, algorithm, sealed, created_at, retired_at, expires_at`

func signingKeyFields(k *storage.SigningKey) []any {
	return []any{&k.KID, &k.Algorithm, &k.Sealed, &k.CreatedAt, &k.RetiredAt, &k.ExpiresAt}
}

// Create inserts k, setting a zero CreatedAt to now. Sealed is binary and
// stored byte for byte; an empty one is refused with
// storage.ErrInvalidValue, because the drivers disagree on it (SQLite
// binds an empty blob as NULL, PostgreSQL as an empty bytea) and no sealed
// key is empty.
func (r signingKeys) Create(ctx context.Context, k *storage.SigningKey) error {
	if len(k.Sealed) == 0 {
		return fmt.Errorf("storage: signing_keys.create: sealed key is empty: %w", storage.ErrInvalidValue)
	}
	stamp(&k.CreatedAt, now())
	_, err := r.s.exec(ctx, "signing_keys.create",
		`INSERT INTO kavach_signing_key (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		k.KID, k.Algorithm, k.Sealed, k.CreatedAt, k.RetiredAt, k.ExpiresAt)
	return err
}

func (r signingKeys) List(ctx context.Context, now time.Time) ([]storage.SigningKey, error) {
	return list(ctx, r.s, "signing_keys.list",
		`SELECT `+signingKeyColumns+` FROM kavach_signing_key
		WHERE expires_at IS NULL OR expires_at > ? ORDER BY created_at, kid`,
		[]any{now}, signingKeyFields)
}

// Retire changes only a key whose retired_at is still NULL, so of
// concurrent rotations one retires the key. An unknown kid reports false.
func (r signingKeys) Retire(ctx context.Context, kid string, retiredAt, expiresAt time.Time) (bool, error) {
	n, err := r.s.exec(ctx, "signing_keys.retire",
		`UPDATE kavach_signing_key SET retired_at = ?, expires_at = ? WHERE kid = ? AND retired_at IS NULL`,
		retiredAt, expiresAt, kid)
	return n > 0, err
}
