package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/storage"
)

// Bans keep a person out: a ban ends every session at once, and every
// sign-in method refuses a banned user in finishSignIn (after the user
// proved the credential, so a ban tells a guesser nothing).

// Ban events.
const (
	EventUserBanned   = "user.banned"
	EventUserUnbanned = "user.unbanned"
)

const maxBanReasonLength = 500

// ErrUserBanned matches a BannedError; ErrNotBanned is an unban of a user
// who is not banned.
var (
	ErrUserBanned = errors.New("this account is banned")
	ErrNotBanned  = errors.New("the user is not banned")
)

// BannedError says until when (nil: until lifted) and why.
type BannedError struct {
	Reason string
	Until  *time.Time
	userID string // for the audit record of the refusal
	email  string
}

func (e *BannedError) Error() string        { return ErrUserBanned.Error() }
func (e *BannedError) Is(target error) bool { return target == ErrUserBanned }

// BanUser bans a user for d (0: until lifted), ends their sessions,
// pending sign-ins and OAuth grants, and suspends their agents
// (Config.SuspendAgents). by names who banned (an admin's user id, or
// "cli"). It returns when the ban ends (nil: until lifted).
func (s *Service) BanUser(ctx context.Context, userID, reason string, d time.Duration, by string) (*time.Time, error) {
	reason = cleanText(reason, maxBanReasonLength)
	now := s.now()
	if d < 0 {
		return nil, &InputError{Field: "expiresIn", Message: "a ban must end in the future"}
	}
	var until *time.Time
	if d > 0 {
		t := now.Add(d)
		until = &t
	}
	var revoked []string
	var after func()
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		// The user's row lock orders the ban against sign-ins (see
		// finishSignIn).
		if err := tx.Users().Lock(ctx, userID); errors.Is(err, storage.ErrNotFound) {
			return ErrUserNotFound
		} else if err != nil {
			return err
		}
		if err := tx.Bans().Put(ctx, &storage.Ban{UserID: userID, Reason: reason, Until: until, BannedBy: by, CreatedAt: now}); err != nil {
			return fmt.Errorf("store ban: %w", err)
		}
		var err error
		if revoked, err = s.revokeUserSessions(ctx, tx, userID, "", now); err != nil {
			return err
		}
		if err := tx.Challenges().DeleteByUser(ctx, userID, storage.PurposeTwoFactor); err != nil {
			return fmt.Errorf("drop pending sign-ins: %w", err)
		}
		// Apps the user connected lose their tokens, and the user's agents
		// stop.
		if _, err := tx.OAuthTokens().DeactivateSubject(ctx, userID); err != nil {
			return fmt.Errorf("revoke oauth grants: %w", err)
		}
		if after, err = s.suspendAgents(ctx, tx, userID, "owner_banned"); err != nil {
			return err
		}
		payload := map[string]any{"userId": userID, "reason": reason, "by": by}
		if until != nil {
			payload["until"] = *until
		}
		return emit(ctx, tx, EventUserBanned, userID, payload, now)
	})
	s.cache.invalidate(revoked...)
	if err != nil {
		return nil, err
	}
	if after != nil {
		after()
	}
	return until, nil
}

// UnbanUser lifts a ban; ErrNotBanned when there is none.
func (s *Service) UnbanUser(ctx context.Context, userID, by string) error {
	now := s.now()
	return s.store.InTx(ctx, func(tx storage.Store) error {
		if err := tx.Bans().Delete(ctx, userID); errors.Is(err, storage.ErrNotFound) {
			return ErrNotBanned
		} else if err != nil {
			return err
		}
		return emit(ctx, tx, EventUserUnbanned, userID, map[string]any{"userId": userID, "by": by}, now)
	})
}

// checkNotBanned refuses a user under a ban that has not ended.
func checkNotBanned(ctx context.Context, tx storage.Store, user storage.User, now time.Time) error {
	b, err := tx.Bans().Get(ctx, user.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read ban: %w", err)
	}
	if b.Until != nil && !b.Until.After(now) {
		return nil
	}
	return &BannedError{Reason: b.Reason, Until: b.Until, userID: user.ID, email: user.Email}
}

// suspendAgents runs Config.SuspendAgents when there is one.
func (s *Service) suspendAgents(ctx context.Context, tx storage.Store, userID, reason string) (func(), error) {
	if s.cfg.SuspendAgents == nil {
		return nil, nil
	}
	return s.cfg.SuspendAgents(ctx, tx, userID, reason)
}
