package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kavachos/kavach/storage"
)

type loginAttempts struct{ s *Store }

// claimAttempt counts one attempt in a single statement, so concurrent
// callers can neither lose an increment nor get past the threshold
// together. The VALUES row is the state after a first attempt: it is
// inserted for a new key, and a key whose lock has expired starts over as
// it. The WHERE skips the update while the key is locked, and then
// RETURNING yields no row. In SET, a.* is the row before the update. The
// excluded.locked_until branch also gives PostgreSQL the type of the lock
// parameter, which it cannot infer from a CASE of parameters and NULL.
//
// Parameters: key, first lock, now, threshold, lock, now.
const claimAttempt = `
INSERT INTO kavach_login_attempt AS a (key, failures, locked_until, updated_at)
VALUES (?, 1, ?, ?)
ON CONFLICT (key) DO UPDATE SET
	failures = CASE WHEN a.locked_until IS NULL THEN a.failures + 1 ELSE excluded.failures END,
	locked_until = CASE
		WHEN a.locked_until IS NOT NULL THEN excluded.locked_until
		WHEN a.failures + 1 >= ? THEN ?
		ELSE NULL
	END,
	updated_at = excluded.updated_at
WHERE a.locked_until IS NULL OR a.locked_until <= ?
RETURNING failures, locked_until`

// claimTries bounds how often Claim retries when a lock it was refused by
// is gone before it can read it (a Reset in between). Each retry needs
// another Reset to race it, so more than one is already rare.
const claimTries = 3

// Claim records one attempt; see storage.LoginAttempts. A threshold <= 0
// never locks.
func (r loginAttempts) Claim(ctx context.Context, key string, now time.Time, threshold int, lockFor time.Duration) (bool, int, *time.Time, error) {
	if threshold <= 0 {
		threshold = math.MaxInt32
	}
	lock := now.Add(lockFor)
	var first *time.Time // the lock after a first attempt
	if threshold <= 1 {
		first = &lock
	}
	for range claimTries {
		var (
			count       int
			lockedUntil *time.Time
		)
		err := r.s.get(ctx, "login_attempts.claim", claimAttempt,
			[]any{key, first, now, threshold, lock, now}, &count, &lockedUntil)
		if err == nil {
			return true, count, lockedUntil, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return false, 0, nil, err
		}
		// Refused: report the lock that refused it, compared in SQL as the
		// claim was, so both statements agree on the clock's precision.
		err = r.s.get(ctx, "login_attempts.claim: read lock",
			`SELECT failures, locked_until FROM kavach_login_attempt WHERE key = ? AND locked_until > ?`,
			[]any{key, now}, &count, &lockedUntil)
		if err == nil {
			return false, count, lockedUntil, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return false, 0, nil, err
		}
	}
	return false, 0, nil, fmt.Errorf("storage: login_attempts.claim: lock reset %d times during the claim", claimTries)
}

func (r loginAttempts) Get(ctx context.Context, key string) (int, *time.Time, error) {
	var (
		count       int
		lockedUntil *time.Time
	)
	err := r.s.get(ctx, "login_attempts.get",
		`SELECT failures, locked_until FROM kavach_login_attempt WHERE key = ?`,
		[]any{key}, &count, &lockedUntil)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return count, lockedUntil, nil
}

func (r loginAttempts) Reset(ctx context.Context, key string) error {
	_, err := r.s.exec(ctx, "login_attempts.reset", `DELETE FROM kavach_login_attempt WHERE key = ?`, key)
	return err
}

// DeleteStale keeps locked rows even when old, or garbage collection would
// lift a lock early.
func (r loginAttempts) DeleteStale(ctx context.Context, before time.Time) (int, error) {
	n, err := r.s.exec(ctx, "login_attempts.delete_stale",
		`DELETE FROM kavach_login_attempt WHERE updated_at < ? AND (locked_until IS NULL OR locked_until <= ?)`,
		before, before)
	return int(n), err
}
