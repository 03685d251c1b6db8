package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/kavachos/kavach/storage"
)

type challenges struct{ s *Store }

const challengeColumns = `id, purpose, lookup, user_id, secret_hash, data, attempts, expires_at, created_at`

// challengeRow scans a row; user_id is NULL for flows without a user.
type challengeRow struct {
	c      storage.Challenge
	userID *string
	data   string
}

func (r *challengeRow) fields() []any {
	return []any{&r.c.ID, &r.c.Purpose, &r.c.Lookup, &r.userID, &r.c.SecretHash, &r.data, &r.c.Attempts, &r.c.ExpiresAt, &r.c.CreatedAt}
}

func (r *challengeRow) challenge() *storage.Challenge {
	c := r.c
	if r.userID != nil {
		c.UserID = *r.userID
	}
	c.Data = []byte(r.data)
	return &c
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Put is an upsert on (purpose, lookup): the new row replaces the old one
// whole, attempts included.
func (r challenges) Put(ctx context.Context, c *storage.Challenge) error {
	stamp(&c.CreatedAt, now())
	data := string(c.Data)
	if data == "" {
		data = "{}"
	}
	_, err := r.s.exec(ctx, "challenges.put",
		`INSERT INTO kavach_challenge (`+challengeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (purpose, lookup) DO UPDATE SET id = excluded.id, user_id = excluded.user_id,
			secret_hash = excluded.secret_hash, data = excluded.data, attempts = excluded.attempts,
			expires_at = excluded.expires_at, created_at = excluded.created_at`,
		c.ID, c.Purpose, c.Lookup, nullIfEmpty(c.UserID), c.SecretHash, data, c.Attempts, c.ExpiresAt, c.CreatedAt)
	return err
}

func (r challenges) Get(ctx context.Context, purpose, lookup string, now time.Time) (*storage.Challenge, error) {
	var row challengeRow
	err := r.s.get(ctx, "challenges.get",
		`SELECT `+challengeColumns+` FROM kavach_challenge WHERE purpose = ? AND lookup = ? AND expires_at > ?`,
		[]any{purpose, lookup, now}, row.fields()...)
	if err != nil {
		return nil, err
	}
	return row.challenge(), nil
}

// Attempt is one UPDATE: the WHERE admits the row only while it has
// attempts left, so concurrent callers cannot pass max together.
func (r challenges) Attempt(ctx context.Context, purpose, lookup string, max int, now time.Time) (*storage.Challenge, error) {
	var row challengeRow
	err := r.s.get(ctx, "challenges.attempt",
		`UPDATE kavach_challenge SET attempts = attempts + 1
		WHERE purpose = ? AND lookup = ? AND expires_at > ? AND attempts < ?
		RETURNING `+challengeColumns,
		[]any{purpose, lookup, now, max}, row.fields()...)
	if err != nil {
		return nil, err
	}
	return row.challenge(), nil
}

func (r challenges) Consume(ctx context.Context, purpose, lookup string, now time.Time) (*storage.Challenge, error) {
	var row challengeRow
	err := r.s.get(ctx, "challenges.consume",
		`DELETE FROM kavach_challenge WHERE purpose = ? AND lookup = ? RETURNING `+challengeColumns,
		[]any{purpose, lookup}, row.fields()...)
	if err != nil {
		return nil, err
	}
	if !row.c.ExpiresAt.After(now) {
		return nil, fmt.Errorf("storage: challenges.consume: expired: %w", storage.ErrNotFound)
	}
	return row.challenge(), nil
}

func (r challenges) DeleteByUser(ctx context.Context, userID, purpose string) error {
	_, err := r.s.exec(ctx, "challenges.delete_by_user",
		`DELETE FROM kavach_challenge WHERE user_id = ? AND purpose = ?`, userID, purpose)
	return err
}

func (r challenges) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := r.s.exec(ctx, "challenges.delete_expired",
		`DELETE FROM kavach_challenge WHERE expires_at <= ?`, now)
	return int(n), err
}
