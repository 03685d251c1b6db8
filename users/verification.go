package users

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/mail"
	"github.com/kavachos/kavach/storage"
)

// issueToken stores a single-use token of purpose for user and returns the
// raw token (which is only ever mailed, never stored).
func (s *Service) issueToken(ctx context.Context, user storage.User, purpose string, ttl time.Duration) (string, error) {
	token := id.Secret()
	now := s.now()
	v := storage.Verification{
		ID: id.New("vrf"), Purpose: purpose, TokenHash: id.Hash(token), UserID: user.ID,
		Email: user.Email, ExpiresAt: now.Add(ttl), CreatedAt: now,
	}
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		// One live link per purpose: asking again invalidates the old one.
		if err := tx.Verifications().DeleteByUser(ctx, user.ID, purpose); err != nil {
			return fmt.Errorf("drop old %s tokens: %w", purpose, err)
		}
		if err := tx.Verifications().Create(ctx, &v); err != nil {
			return fmt.Errorf("store %s token: %w", purpose, err)
		}
		return nil
	})
	return token, err
}

// withQuery returns base with key=value added to its query.
func withQuery(base string, kv ...string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// sendVerification queues a verification mail; the token is issued in the
// job, off the request path.
func (s *Service) sendVerification(user storage.User, callbackURL string) {
	s.mails.submit("verification", func(ctx context.Context, m mail.Mailer) error {
		token, err := s.issueToken(ctx, user, storage.PurposeEmailVerification, s.cfg.VerificationTTL)
		if err != nil {
			return err
		}
		link := withQuery(s.cfg.BaseURL+"/api/auth/email/verify", "token", token, "callbackURL", callbackURL)
		return m.Send(ctx, mail.Message{
			To:      user.Email,
			Subject: "Verify your email address",
			Text: "Open this link to verify your email address:\n\n" + link +
				"\n\nThe link works once and expires in " + s.cfg.VerificationTTL.String() +
				".\nIf you did not create an account, ignore this message.\n",
		})
	})
}

// SendVerification mails a verification link to the account with this
// email, if there is one and it is not verified yet. It answers the same
// either way, so it cannot be used to find accounts. callbackURL must
// already be checked against the trusted origins by the caller.
func (s *Service) SendVerification(ctx context.Context, email, callbackURL string) error {
	user, err := s.FindUserByEmail(ctx, email)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if user.EmailVerified {
		return nil
	}
	s.sendVerification(user, callbackURL)
	return nil
}

// VerifyEmail consumes a verification token and marks the address verified.
func (s *Service) VerifyEmail(ctx context.Context, token string) (storage.User, error) {
	if token == "" || len(token) > 256 {
		return storage.User{}, ErrInvalidToken
	}
	now := s.now()
	var user storage.User
	stale := false
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		v, err := tx.Verifications().Consume(ctx, storage.PurposeEmailVerification, id.Hash(token), now)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidToken
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		u, err := tx.Users().Get(ctx, v.UserID)
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		// The link proves control of the address it was sent to; if the
		// account's address changed since, it proves nothing.
		if u.Email != v.Email {
			return ErrInvalidToken
		}
		if !u.EmailVerified {
			u.EmailVerified, u.UpdatedAt = true, now
			if err := tx.Users().Update(ctx, u); err != nil {
				return fmt.Errorf("mark verified: %w", err)
			}
			if err := emit(ctx, tx, EventEmailVerified, u.ID, map[string]any{"userId": u.ID, "email": u.Email}, now); err != nil {
				return err
			}
		}
		user = *u
		return nil
	})
	if err == nil && stale {
		return storage.User{}, ErrInvalidToken
	}
	if err == nil {
		s.cache.invalidateUser(user.ID)
	}
	return user, err
}

// RequestPasswordReset mails a reset link if an account has this email. It
// answers the same whether or not one does. redirectTo (already checked
// against the trusted origins) overrides the configured reset page.
func (s *Service) RequestPasswordReset(ctx context.Context, email, redirectTo string) error {
	user, err := s.FindUserByEmail(ctx, email)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	page := s.cfg.ResetPasswordURL
	if redirectTo != "" {
		page = redirectTo
	}
	// The token is issued in the job: a database write only for existing
	// accounts would show in the response time.
	s.mails.submit("password-reset", func(ctx context.Context, m mail.Mailer) error {
		token, err := s.issueToken(ctx, user, storage.PurposePasswordReset, s.cfg.PasswordResetTTL)
		if err != nil {
			return err
		}
		return m.Send(ctx, mail.Message{
			To:      user.Email,
			Subject: "Reset your password",
			Text: "Someone asked to reset the password of your account. Open this link to choose a new one:\n\n" +
				withQuery(page, "token", token) +
				"\n\nThe link works once and expires in " + s.cfg.PasswordResetTTL.String() +
				". Resetting signs you out everywhere.\nIf it was not you, ignore this message; your password is unchanged.\n",
		})
	})
	return nil
}

// ResetPassword sets a new password with a reset token, ends every session
// of the user and clears any lockout. The new password is checked before the
// token is spent, so a rejected password does not burn the link.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string) error {
	if token == "" || len(token) > 256 {
		return ErrInvalidToken
	}
	now := s.now()
	hashToken := id.Hash(token)
	// Length and common-password rules first, so the expensive hash is not
	// spent on a password that cannot pass; the similarity rule needs the
	// token's email and runs inside the transaction.
	if err := s.cfg.Policy.Check(newPassword, ""); err != nil {
		return err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	var userID string
	var revoked []string
	var after func()
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		v, err := tx.Verifications().Consume(ctx, storage.PurposePasswordReset, hashToken, now)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidToken
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		if err := s.cfg.Policy.Check(newPassword, v.Email); err != nil {
			return err
		}
		// Locked before anything changes, so a sign-in with the old
		// password either commits first (and its session is revoked
		// below) or waits and finds the new password.
		if err := tx.Users().Lock(ctx, v.UserID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		u, err := tx.Users().Get(ctx, v.UserID)
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		userID = u.ID
		if u.Email == v.Email && !u.EmailVerified {
			// The reset proves the address, which nobody had: the account
			// becomes its owner's alone (see dropUnprovenAccess).
			if after, err = s.dropUnprovenAccess(ctx, tx, u.ID, now); err != nil {
				return err
			}
		}
		if err := s.setPassword(ctx, tx, u.ID, hash, now); err != nil {
			return err
		}
		// A reset proves control of the mailbox: lift any lockout.
		for _, e := range []string{v.Email, u.Email} {
			if err := tx.LoginAttempts().Reset(ctx, attemptKey(e)); err != nil {
				return fmt.Errorf("clear lockout: %w", err)
			}
		}
		if u.Email == v.Email && !u.EmailVerified {
			u.EmailVerified, u.UpdatedAt = true, now
			if err := tx.Users().Update(ctx, u); err != nil {
				return fmt.Errorf("mark verified: %w", err)
			}
		}
		if revoked, err = s.revokeUserSessions(ctx, tx, u.ID, "", now); err != nil {
			return err
		}
		// Sign-ins that passed the old password and wait for their second
		// factor end too.
		if err := tx.Challenges().DeleteByUser(ctx, u.ID, storage.PurposeTwoFactor); err != nil {
			return fmt.Errorf("drop pending sign-ins: %w", err)
		}
		// A reset usually means the account may be compromised: apps the
		// user connected must ask again too.
		if _, err := tx.OAuthTokens().DeactivateSubject(ctx, u.ID); err != nil {
			return fmt.Errorf("revoke oauth grants: %w", err)
		}
		return emit(ctx, tx, EventPasswordReset, u.ID, map[string]any{"userId": u.ID, "revokedSessions": len(revoked)}, now)
	})
	s.cache.invalidate(revoked...)
	if userID != "" {
		s.cache.invalidateUser(userID)
	}
	if err == nil && after != nil {
		after()
	}
	return err
}

// setPassword stores a hash, creating the password account for users who
// had none (e.g. imported social-only users setting a password).
func (s *Service) setPassword(ctx context.Context, tx storage.Store, userID, hash string, now time.Time) error {
	err := tx.Accounts().UpdatePassword(ctx, userID, hash, now)
	if errors.Is(err, storage.ErrNotFound) {
		err = tx.Accounts().Create(ctx, &storage.Account{
			ID: id.New("acc"), UserID: userID, ProviderID: storage.ProviderCredential,
			ProviderAccountID: userID, Password: &hash, CreatedAt: now, UpdatedAt: now,
		})
	}
	if err != nil {
		return fmt.Errorf("store password: %w", err)
	}
	return nil
}

// Notify mails a notice to a user (an agent of theirs was suspended, say)
// off the request path. A user who no longer exists gets nothing.
func (s *Service) Notify(userID, subject, text string) {
	s.mails.submit("notice", func(ctx context.Context, m mail.Mailer) error {
		u, err := s.store.Users().Get(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return m.Send(ctx, mail.Message{To: u.Email, Subject: subject, Text: text})
	})
}
