package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// attempt is one claimed sign-in attempt (see storage.LoginAttempts).
type attempt struct {
	email       string
	key         string
	count       int
	lockedUntil *time.Time
	method      string // what was tried, for the audit record
}

// attemptKey names the lockout counter of an address. It is a hash so the
// table holds no addresses of people who never signed up.
func attemptKey(email string) string { return id.Hash("login-attempt:" + email) }

// claimAttempt counts an attempt before the password is checked, so that
// parallel guesses can never exceed the threshold: once the lock is set,
// every further attempt is refused without hashing, whether or not the
// account exists.
func (s *Service) claimAttempt(ctx context.Context, email string, now time.Time) (attempt, error) {
	key := attemptKey(email)
	allowed, count, locked, err := s.store.LoginAttempts().Claim(ctx, key, now, s.cfg.LockoutThreshold, s.cfg.LockoutDuration)
	if err != nil {
		return attempt{}, fmt.Errorf("claim login attempt: %w", err)
	}
	if !allowed {
		until := now.Add(s.cfg.LockoutDuration)
		if locked != nil {
			until = *locked
		}
		return attempt{}, &LockedError{Until: until}
	}
	return attempt{email: email, key: key, count: count, lockedUntil: locked}, nil
}

// claimSignInAttempt is claimAttempt for a sign-in by method: the attempt
// carries the method into its audit record, and a refusal because the
// counter is locked is audited (userID may be "").
func (s *Service) claimSignInAttempt(ctx context.Context, counter, userID, method string, client ClientInfo, now time.Time) (attempt, error) {
	att, err := s.claimAttempt(ctx, counter, now)
	var locked *LockedError
	if errors.As(err, &locked) {
		s.auditSignInFailure(ctx, counter, userID, "ACCOUNT_LOCKED", client, method, now)
	}
	att.method = method
	return att, err
}

// attemptFailed finishes a failed attempt: it was counted when claimed; it
// is recorded in the audit log, and if that claim set the lock, the lock
// is recorded too. It always returns ErrInvalidCredentials (or a storage
// error).
func (s *Service) attemptFailed(ctx context.Context, a attempt, userID string, client ClientInfo, now time.Time) error {
	s.auditSignInFailure(ctx, a.email, userID, "INVALID_CREDENTIALS", client, a.method, now)
	if a.lockedUntil == nil || a.count != s.cfg.LockoutThreshold {
		return ErrInvalidCredentials
	}
	if userID == "" {
		return ErrInvalidCredentials
	}
	s.cfg.Logger.Warn("account locked after repeated failed sign-ins", "user", userID, "until", a.lockedUntil.Format(time.RFC3339))
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		return emit(ctx, tx, EventAccountLocked, userID, map[string]any{"userId": userID, "until": a.lockedUntil}, now)
	})
	if err != nil {
		return err
	}
	return ErrInvalidCredentials
}
