package users

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Every primary sign-in method (password, magic link, email code, phone
// code, social account, passkey) ends in finishSignIn. It is the one place
// that decides whether the first factor is enough: it refuses banned and
// locked accounts, and for users with two-factor authentication it stores a
// pending second-factor challenge instead of a session. No method issues a
// session any other way, so none can skip the second factor.

// Sign-in methods, as recorded on session.created events and sign_in audit
// records.
const (
	MethodPassword  = "email-password"
	MethodMagicLink = "magic-link"
	MethodEmailOTP  = "email-otp"
	MethodPhoneOTP  = "phone-otp"
	MethodPasskey   = "passkey"
	// MethodSocialPrefix is followed by the provider id: "oauth:github".
	MethodSocialPrefix = "oauth:"
)

// FirstFactor is a proven first factor: who signed in, and how.
type FirstFactor struct {
	User       storage.User
	Method     string
	RememberMe bool
	Client     ClientInfo
	// TrustedDevice is the raw token of the browser's trusted-device
	// cookie, if it sent one.
	TrustedDevice string
	// MultiFactor is set when the factor alone is multi-factor: a passkey
	// whose authenticator verified the user (PIN or biometrics) is
	// something owned and something known or been.
	MultiFactor bool
	// Extra is recorded on the session.created event (provider, …).
	Extra map[string]any
	// lockChecked: the method claimed a lockout attempt itself (the
	// password), which already refused a locked account.
	lockChecked bool
	// recheck, when set, runs once the user's row is locked: the method
	// confirms that what it checked before the transaction (a password
	// hash, a phone number's owner, a linked account) still holds, since
	// a takeover or a reset may have committed meanwhile.
	recheck func(tx storage.Store) error
}

// TwoFactorChallenge is what a first factor yields when a second is
// needed: a short-lived token that only VerifyTwoFactor accepts.
type TwoFactorChallenge struct {
	Token     string
	ExpiresAt time.Time
	Methods   []string // "totp", "backup-code"
}

// TrustedDevice is a token that lets this browser skip the second factor
// until ExpiresAt.
type TrustedDevice struct {
	Token     string
	ExpiresAt time.Time
}

// pendingSignIn is the data of a PurposeTwoFactor challenge.
type pendingSignIn struct {
	Method     string         `json:"method"`
	RememberMe bool           `json:"rememberMe"`
	Extra      map[string]any `json:"extra,omitempty"`
}

// finishSignIn turns a first factor into a session, or into a pending
// second-factor challenge. It runs in the caller's transaction, so what
// the method stored on the way (a new user, a linked account) and the
// session commit together.
func (s *Service) finishSignIn(ctx context.Context, tx storage.Store, f FirstFactor, now time.Time) (AuthResult, error) {
	// The user's row lock orders this sign-in against takeovers, resets
	// and bans (which take it first): whichever comes second sees what the
	// first one committed.
	if err := tx.Users().Lock(ctx, f.User.ID); errors.Is(err, storage.ErrNotFound) {
		return AuthResult{}, ErrInvalidCredentials
	} else if err != nil {
		return AuthResult{}, fmt.Errorf("lock user: %w", err)
	}
	if f.recheck != nil {
		if err := f.recheck(tx); err != nil {
			return AuthResult{}, err
		}
	}
	if err := checkNotBanned(ctx, tx, f.User, now); err != nil {
		return AuthResult{}, err
	}
	if !f.lockChecked {
		if err := s.checkNotLocked(ctx, tx, f.User.Email, now); err != nil {
			return AuthResult{}, err
		}
	}
	need, err := s.needsSecondFactor(ctx, tx, f, now)
	if err != nil {
		return AuthResult{}, err
	}
	if need {
		ch, err := s.startTwoFactor(ctx, tx, f, now)
		if err != nil {
			return AuthResult{}, err
		}
		return AuthResult{User: f.User, TwoFactor: ch}, nil
	}
	is, err := s.createSessionExtra(ctx, tx, f.User.ID, f.RememberMe, f.Client, f.Method, f.Extra, now)
	if err != nil {
		return AuthResult{}, err
	}
	return AuthResult{User: f.User, Session: &is}, nil
}

// checkNotLocked refuses an account locked by failed attempts, whatever
// the method: a lock set by password guesses also holds against codes.
func (s *Service) checkNotLocked(ctx context.Context, tx storage.Store, email string, now time.Time) error {
	_, until, err := tx.LoginAttempts().Get(ctx, attemptKey(email))
	if err != nil {
		return fmt.Errorf("read lockout: %w", err)
	}
	if until != nil && until.After(now) {
		return &LockedError{Until: *until}
	}
	return nil
}

func (s *Service) needsSecondFactor(ctx context.Context, tx storage.Store, f FirstFactor, now time.Time) (bool, error) {
	tf, err := tx.TwoFactors().Get(ctx, f.User.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read two-factor: %w", err)
	}
	if !tf.Enabled {
		return false, nil
	}
	if f.MultiFactor && !s.cfg.TwoFactorAfterPasskey {
		return false, nil
	}
	if f.TrustedDevice != "" && len(f.TrustedDevice) <= 256 {
		c, err := tx.Challenges().Get(ctx, storage.PurposeTrustedDevice, id.Hash(f.TrustedDevice), now)
		if err == nil && c.UserID == f.User.ID {
			return false, nil
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return false, fmt.Errorf("read trusted device: %w", err)
		}
	}
	return true, nil
}

func (s *Service) startTwoFactor(ctx context.Context, tx storage.Store, f FirstFactor, now time.Time) (*TwoFactorChallenge, error) {
	token := id.Secret()
	data, err := json.Marshal(pendingSignIn{Method: f.Method, RememberMe: f.RememberMe, Extra: f.Extra})
	if err != nil {
		return nil, fmt.Errorf("encode pending sign-in: %w", err)
	}
	c := storage.Challenge{
		ID: id.New("chl"), Purpose: storage.PurposeTwoFactor, Lookup: id.Hash(token), UserID: f.User.ID,
		Data: data, ExpiresAt: now.Add(s.cfg.TwoFactorPendingTTL), CreatedAt: now,
	}
	if err := tx.Challenges().Put(ctx, &c); err != nil {
		return nil, fmt.Errorf("store pending sign-in: %w", err)
	}
	methods := []string{"totp"}
	if n, err := tx.TwoFactors().CountBackupCodes(ctx, f.User.ID); err == nil && n > 0 {
		methods = append(methods, "backup-code")
	}
	return &TwoFactorChallenge{Token: token, ExpiresAt: c.ExpiresAt, Methods: methods}, nil
}

// codeHash is the keyed hash of a short code (a one-time code, a backup
// code). Codes have little entropy, so a plain hash of one is reversed by
// trying them all; keyed with a server key, a stolen table does not give
// them away.
func (s *Service) codeHash(purpose, code string) string {
	m := hmac.New(sha256.New, s.cfg.CodeKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil))
}

// createSessionExtra is createSession with extra fields on the event.
func (s *Service) createSessionExtra(ctx context.Context, tx storage.Store, userID string, persistent bool, client ClientInfo, method string, extra map[string]any, now time.Time) (IssuedSession, error) {
	stored := method
	if f, ok := extra["secondFactor"].(string); ok {
		stored += "+" + f
	}
	is := s.newSession(userID, persistent, client, stored, now)
	if err := tx.Sessions().Create(ctx, &is.Session); err != nil {
		return IssuedSession{}, fmt.Errorf("create session: %w", err)
	}
	payload := map[string]any{"sessionId": is.Session.ID, "userId": userID, "method": method, "ip": client.IP}
	for k, v := range extra {
		if _, taken := payload[k]; !taken {
			payload[k] = v
		}
	}
	return is, emit(ctx, tx, EventSessionCreated, userID, payload, now)
}
