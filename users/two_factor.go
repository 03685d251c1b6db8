package users

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Two-factor authentication: a TOTP authenticator (RFC 6238, 6 digits,
// 30 s, one step of clock skew either way), confirmed by a first code
// before it counts, and 10 single-use backup codes. A code is accepted
// once: the last accepted time step is stored, so a code seen over a
// shoulder cannot be replayed within its window.

const (
	totpPeriod          = 30
	backupCodeCount     = 10
	twoFactorMaxAttempt = 5 // wrong codes per pending sign-in
)

// Two-factor errors.
var (
	ErrTwoFactorEnabled    = errors.New("two-factor authentication is already enabled")
	ErrTwoFactorNotEnabled = errors.New("two-factor authentication is not enabled")
	// ErrInvalidCode is a wrong, expired or already used code.
	ErrInvalidCode = errors.New("the code is invalid or expired")
	// ErrTwoFactorExpired is a pending sign-in that is unknown, expired
	// or out of attempts: the first factor must be passed again.
	ErrTwoFactorExpired = errors.New("the sign-in expired; sign in again")
	// ErrReauthRequired asks for the password, or for a fresh sign-in
	// from users who have no password.
	ErrReauthRequired = errors.New("sign in again to change this")
)

// TwoFactorEnrolment is shown once, when enrolment starts.
type TwoFactorEnrolment struct {
	TOTPURI     string
	Secret      string
	BackupCodes []string
}

// TwoFactorStatus describes a user's second factor.
type TwoFactorStatus struct {
	Enabled         bool
	Pending         bool // enrolled but not confirmed yet
	BackupCodesLeft int
}

func totpAD(userID string) []byte { return []byte("totp:" + userID) }

// Reauthenticate checks that the signed-in person is the account holder
// right now, before a change to how the account is signed in to: a
// session younger than ReauthWindow from a strong sign-in (strongSignIn)
// is enough; otherwise the password (ErrReauthRequired for users who have
// none: they sign in again). A password given is always checked, and
// wrong ones count toward the lockout.
func (s *Service) Reauthenticate(ctx context.Context, view SessionView, password string) error {
	if password != "" {
		return s.confirmPassword(ctx, view.User, password, "password", "password is incorrect")
	}
	method := view.Session.Method
	fresh := s.now().Sub(view.Session.CreatedAt) <= s.cfg.ReauthWindow
	if fresh && strongSignIn(method) {
		return nil
	}
	acct, err := s.store.Accounts().GetCredential(ctx, view.User.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("load password: %w", err)
	}
	if err == nil && usablePassword(acct) {
		return &InputError{Field: "password", Message: "password is required (or sign in again)"}
	}
	// No password to ask for: a recent social sign-in stands in too (for
	// many such users their only way in), but never a texted code alone:
	// a SIM is no proof of the account holder.
	if fresh && strings.HasPrefix(method, MethodSocialPrefix) {
		return nil
	}
	return ErrReauthRequired
}

// strongSignIn reports whether a session's sign-in may stand in for the
// password when it is recent: the password itself, a passkey, proof of
// the mailbox (which could reset the password anyway) or any sign-in that
// passed a second factor. A texted code (a SIM can be taken over) and a
// social account (another company's account) may not, for users who have
// a password to ask for instead.
func strongSignIn(method string) bool {
	if strings.Contains(method, "+") {
		return true
	}
	switch method {
	case MethodPassword, MethodPasskey, MethodMagicLink, MethodEmailOTP:
		return true
	}
	return false
}

// EnableTwoFactor starts enrolment: it stores a new TOTP secret (sealed)
// and backup codes, and returns them for the user to save. Two-factor
// authentication is on once ConfirmTwoFactor accepts a first code.
func (s *Service) EnableTwoFactor(ctx context.Context, view SessionView, password string) (TwoFactorEnrolment, error) {
	if s.cfg.Sealer == nil {
		return TwoFactorEnrolment{}, errors.New("two-factor: no sealer configured")
	}
	if err := s.Reauthenticate(ctx, view, password); err != nil {
		return TwoFactorEnrolment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.TwoFactorIssuer, AccountName: view.User.Email, Period: totpPeriod})
	if err != nil {
		return TwoFactorEnrolment{}, fmt.Errorf("generate totp secret: %w", err)
	}
	codes, hashes := s.newBackupCodes(view.User.ID)
	now := s.now()
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		tf := storage.TwoFactor{UserID: view.User.ID, Secret: s.cfg.Sealer.Seal([]byte(key.Secret()), totpAD(view.User.ID)), CreatedAt: now, UpdatedAt: now}
		if err := tx.TwoFactors().Put(ctx, &tf); errors.Is(err, storage.ErrAlreadyExists) {
			return ErrTwoFactorEnabled
		} else if err != nil {
			return fmt.Errorf("store totp secret: %w", err)
		}
		return tx.TwoFactors().ReplaceBackupCodes(ctx, view.User.ID, hashes, now)
	})
	if err != nil {
		return TwoFactorEnrolment{}, err
	}
	return TwoFactorEnrolment{TOTPURI: key.URL(), Secret: key.Secret(), BackupCodes: codes}, nil
}

// ConfirmTwoFactor turns two-factor authentication on with a first code
// from the authenticator.
func (s *Service) ConfirmTwoFactor(ctx context.Context, view SessionView, code string) error {
	now := s.now()
	tf, err := s.store.TwoFactors().Get(ctx, view.User.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrTwoFactorNotEnabled
	}
	if err != nil {
		return fmt.Errorf("load two-factor: %w", err)
	}
	if tf.Enabled {
		return ErrTwoFactorEnabled
	}
	// Guessing the first code is limited like sign-in.
	att, err := s.claimAttempt(ctx, view.User.Email, now)
	if err != nil {
		return err
	}
	step, ok, err := s.matchTOTP(tf, code, now)
	if err != nil {
		return err
	}
	if !ok {
		if err := s.attemptFailed(ctx, att, view.User.ID, ClientInfo{}, now); !errors.Is(err, ErrInvalidCredentials) {
			return err
		}
		return ErrInvalidCode
	}
	return s.store.InTx(ctx, func(tx storage.Store) error {
		if err := tx.TwoFactors().Enable(ctx, view.User.ID, step, now); errors.Is(err, storage.ErrNotFound) {
			return ErrTwoFactorEnabled
		} else if err != nil {
			return fmt.Errorf("enable two-factor: %w", err)
		}
		if err := tx.LoginAttempts().Reset(ctx, att.key); err != nil {
			return err
		}
		return emit(ctx, tx, EventTwoFactorEnabled, view.User.ID, map[string]any{"userId": view.User.ID}, now)
	})
}

// DisableTwoFactor removes the authenticator, the backup codes and every
// trusted device, after re-authentication.
func (s *Service) DisableTwoFactor(ctx context.Context, view SessionView, password string) error {
	if err := s.Reauthenticate(ctx, view, password); err != nil {
		return err
	}
	now := s.now()
	return s.store.InTx(ctx, func(tx storage.Store) error {
		if _, err := tx.TwoFactors().Get(ctx, view.User.ID); errors.Is(err, storage.ErrNotFound) {
			return ErrTwoFactorNotEnabled
		} else if err != nil {
			return err
		}
		if err := tx.TwoFactors().Delete(ctx, view.User.ID); err != nil {
			return fmt.Errorf("delete two-factor: %w", err)
		}
		if err := tx.Challenges().DeleteByUser(ctx, view.User.ID, storage.PurposeTrustedDevice); err != nil {
			return fmt.Errorf("forget trusted devices: %w", err)
		}
		if err := tx.Challenges().DeleteByUser(ctx, view.User.ID, storage.PurposeTwoFactor); err != nil {
			return fmt.Errorf("drop pending sign-ins: %w", err)
		}
		return emit(ctx, tx, EventTwoFactorDisabled, view.User.ID, map[string]any{"userId": view.User.ID}, now)
	})
}

// RegenerateBackupCodes replaces the backup codes (the old ones stop
// working) after re-authentication.
func (s *Service) RegenerateBackupCodes(ctx context.Context, view SessionView, password string) ([]string, error) {
	if err := s.Reauthenticate(ctx, view, password); err != nil {
		return nil, err
	}
	codes, hashes := s.newBackupCodes(view.User.ID)
	now := s.now()
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		tf, err := tx.TwoFactors().Get(ctx, view.User.ID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && !tf.Enabled) {
			return ErrTwoFactorNotEnabled
		}
		if err != nil {
			return err
		}
		if err := tx.TwoFactors().ReplaceBackupCodes(ctx, view.User.ID, hashes, now); err != nil {
			return fmt.Errorf("store backup codes: %w", err)
		}
		return emit(ctx, tx, EventBackupCodesReset, view.User.ID, map[string]any{"userId": view.User.ID}, now)
	})
	return codes, err
}

// TwoFactorStatusOf reports the user's second factor.
func (s *Service) TwoFactorStatusOf(ctx context.Context, userID string) (TwoFactorStatus, error) {
	tf, err := s.store.TwoFactors().Get(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return TwoFactorStatus{}, nil
	}
	if err != nil {
		return TwoFactorStatus{}, err
	}
	n, err := s.store.TwoFactors().CountBackupCodes(ctx, userID)
	if err != nil {
		return TwoFactorStatus{}, err
	}
	return TwoFactorStatus{Enabled: tf.Enabled, Pending: !tf.Enabled, BackupCodesLeft: n}, nil
}

// VerifyTwoFactorInput is the second step of a sign-in.
type VerifyTwoFactorInput struct {
	Token       string // from the first step
	Code        string // a TOTP code
	BackupCode  string // or a backup code
	TrustDevice bool
	Client      ClientInfo
}

// VerifyTwoFactor checks the second factor of a pending sign-in and issues
// the session. Each pending sign-in allows 5 wrong codes, counted in one
// statement; wrong codes also count toward the account's lockout.
func (s *Service) VerifyTwoFactor(ctx context.Context, in VerifyTwoFactorInput) (AuthResult, error) {
	if in.Token == "" || len(in.Token) > 256 {
		return AuthResult{}, ErrTwoFactorExpired
	}
	if (in.Code == "") == (in.BackupCode == "") {
		return AuthResult{}, &InputError{Field: "code", Message: "give either code or backupCode"}
	}
	now := s.now()
	lookup := id.Hash(in.Token)
	c, err := s.store.Challenges().Attempt(ctx, storage.PurposeTwoFactor, lookup, twoFactorMaxAttempt, now)
	if errors.Is(err, storage.ErrNotFound) {
		return AuthResult{}, ErrTwoFactorExpired
	}
	if err != nil {
		return AuthResult{}, fmt.Errorf("count attempt: %w", err)
	}
	var pending pendingSignIn
	if err := json.Unmarshal(c.Data, &pending); err != nil {
		return AuthResult{}, fmt.Errorf("decode pending sign-in: %w", err)
	}
	user, err := s.store.Users().Get(ctx, c.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return AuthResult{}, ErrTwoFactorExpired
	}
	if err != nil {
		return AuthResult{}, fmt.Errorf("load user: %w", err)
	}
	att, err := s.claimAttempt(ctx, user.Email, now)
	att.method = "totp"
	if in.BackupCode != "" {
		att.method = "backup-code"
	}
	if err != nil {
		return AuthResult{}, err
	}
	tf, err := s.store.TwoFactors().Get(ctx, user.ID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !tf.Enabled) {
		// Disabled meanwhile: the first factor was enough after all, but
		// only a fresh sign-in can say so.
		return AuthResult{}, ErrTwoFactorExpired
	}
	if err != nil {
		return AuthResult{}, fmt.Errorf("load two-factor: %w", err)
	}
	factor := "totp"
	var ok bool
	if in.BackupCode != "" {
		factor = "backup-code"
		ok, err = s.store.TwoFactors().UseBackupCode(ctx, user.ID, s.codeHash("backup:"+user.ID, normalizeBackupCode(in.BackupCode)), now)
	} else {
		var step int64
		if step, ok, err = s.matchTOTP(tf, in.Code, now); err == nil && ok {
			ok, err = s.store.TwoFactors().UseStep(ctx, user.ID, step, now)
		}
	}
	if err != nil {
		return AuthResult{}, err
	}
	if !ok {
		if err := s.attemptFailed(ctx, att, user.ID, in.Client, now); !errors.Is(err, ErrInvalidCredentials) {
			return AuthResult{}, err
		}
		return AuthResult{}, ErrInvalidCode
	}
	extra := map[string]any{"secondFactor": factor}
	for k, v := range pending.Extra {
		extra[k] = v
	}
	var res AuthResult
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		// Consuming makes the pending sign-in single-use: of two right
		// codes sent at once, one session is issued.
		if _, err := tx.Challenges().Consume(ctx, storage.PurposeTwoFactor, lookup, now); errors.Is(err, storage.ErrNotFound) {
			return ErrTwoFactorExpired
		} else if err != nil {
			return err
		}
		if err := tx.LoginAttempts().Reset(ctx, att.key); err != nil {
			return fmt.Errorf("reset login attempts: %w", err)
		}
		if err := checkNotBanned(ctx, tx, *user, now); err != nil {
			return err
		}
		is, err := s.createSessionExtra(ctx, tx, user.ID, pending.RememberMe, in.Client, pending.Method, extra, now)
		if err != nil {
			return err
		}
		res = AuthResult{User: *user, Session: &is}
		if in.TrustDevice {
			td, err := s.trustDevice(ctx, tx, user.ID, now)
			if err != nil {
				return err
			}
			res.TrustedDevice = td
		}
		return nil
	})
	s.auditRefusal(ctx, err, pending.Method, in.Client)
	return res, err
}

func (s *Service) trustDevice(ctx context.Context, tx storage.Store, userID string, now time.Time) (*TrustedDevice, error) {
	token := id.Secret()
	c := storage.Challenge{
		ID: id.New("chl"), Purpose: storage.PurposeTrustedDevice, Lookup: id.Hash(token), UserID: userID,
		ExpiresAt: now.Add(s.cfg.TrustedDeviceTTL), CreatedAt: now,
	}
	if err := tx.Challenges().Put(ctx, &c); err != nil {
		return nil, fmt.Errorf("store trusted device: %w", err)
	}
	return &TrustedDevice{Token: token, ExpiresAt: c.ExpiresAt}, nil
}

// matchTOTP finds the time step (now, or one either side) whose code is
// code. It does not record the step.
func (s *Service) matchTOTP(tf *storage.TwoFactor, code string, now time.Time) (int64, bool, error) {
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return 0, false, nil
	}
	secret, err := s.cfg.Sealer.Open(tf.Secret, totpAD(tf.UserID))
	if err != nil {
		return 0, false, fmt.Errorf("open totp secret: %w", err)
	}
	step := now.Unix() / totpPeriod
	found, match := int64(0), false
	for _, st := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(string(secret), time.Unix(st*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return 0, false, fmt.Errorf("totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !match {
			found, match = st, true
		}
	}
	return found, match, nil
}

var backupEncoding = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

// newBackupCodes returns codes to show (xxxxx-xxxxx, 50 bits each) and
// their keyed hashes to store.
func (s *Service) newBackupCodes(userID string) (codes, hashes []string) {
	for range backupCodeCount {
		b := make([]byte, 7)
		_, _ = rand.Read(b)
		c := backupEncoding.EncodeToString(b)[:10]
		codes = append(codes, c[:5]+"-"+c[5:])
		hashes = append(hashes, s.codeHash("backup:"+userID, c))
	}
	return codes, hashes
}

func normalizeBackupCode(c string) string {
	c = strings.ToLower(strings.TrimSpace(c))
	return strings.NewReplacer("-", "", " ", "").Replace(c)
}
