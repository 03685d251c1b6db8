package users

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// SignUpInput is a new account with a password.
type SignUpInput struct {
	Email      string
	Password   string
	Name       string
	Image      *string
	RememberMe bool
	Client     ClientInfo
	// CallbackURL, already checked against the trusted origins, is where
	// the verification link sends the browser after verifying.
	CallbackURL string
}

// SignInInput is an email/password sign-in attempt.
type SignInInput struct {
	Email         string
	Password      string
	RememberMe    bool
	Client        ClientInfo
	TrustedDevice string // the trusted-device cookie, if any
}

// AuthResult is what a successful sign-up or sign-in yields. Session is nil
// when sign-up succeeded but the email must be verified before sign-in, or
// when a second factor is needed: then TwoFactor is set.
type AuthResult struct {
	User      storage.User
	Session   *IssuedSession
	TwoFactor *TwoFactorChallenge
	// TrustedDevice is set when the second factor was passed with "trust
	// this device".
	TrustedDevice *TrustedDevice
	// NewUser is set when the sign-in created the account.
	NewUser bool
}

const (
	maxNameLength  = 200
	maxImageLength = 2048
)

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > maxNameLength {
		return "", &InputError{Field: "name", Message: fmt.Sprintf("name must be at most %d characters", maxNameLength)}
	}
	if !validText(name) {
		return "", &InputError{Field: "name", Message: "name must be text without control characters"}
	}
	return name, nil
}

func checkImage(image *string) error {
	if image == nil || *image == "" {
		return nil
	}
	v := *image
	if len(v) > maxImageLength || !validText(v) || strings.ContainsAny(v, " <>\"") ||
		!(strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://")) {
		return &InputError{Field: "image", Message: "image must be an http(s) URL of at most 2048 characters"}
	}
	return nil
}

// SignUp creates a user with a password. Unless verified email is required,
// it also signs the user in.
func (s *Service) SignUp(ctx context.Context, in SignUpInput) (AuthResult, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return AuthResult{}, err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return AuthResult{}, err
	}
	if err := checkImage(in.Image); err != nil {
		return AuthResult{}, err
	}
	if err := s.cfg.Policy.Check(in.Password, email); err != nil {
		return AuthResult{}, err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, in.Password)
	if err != nil {
		return AuthResult{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.now()
	user := storage.User{ID: newUserID(), Email: email, Name: name, Image: in.Image, CreatedAt: now, UpdatedAt: now}
	if in.Image != nil && *in.Image == "" {
		user.Image = nil
	}
	var res AuthResult
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		if err := s.insertUser(ctx, tx, &user, &hash, now); err != nil {
			return err
		}
		res.User = user
		if s.cfg.RequireVerifiedEmail {
			return nil
		}
		is, err := s.createSession(ctx, tx, user.ID, in.RememberMe, in.Client, MethodPassword, now)
		res.Session = &is
		return err
	})
	if err != nil {
		return AuthResult{}, err
	}
	s.sendVerification(user, in.CallbackURL)
	return res, nil
}

// insertUser stores a user, its password account (when hash is set) and the
// user.created event.
func (s *Service) insertUser(ctx context.Context, tx storage.Store, u *storage.User, hash *string, now time.Time) error {
	if err := tx.Users().Create(ctx, u); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return ErrUserExists
		}
		return fmt.Errorf("create user: %w", err)
	}
	if hash != nil {
		acct := storage.Account{
			ID: id.New("acc"), UserID: u.ID, ProviderID: storage.ProviderCredential,
			ProviderAccountID: u.ID, Password: hash, CreatedAt: now, UpdatedAt: now,
		}
		if err := tx.Accounts().Create(ctx, &acct); err != nil {
			return fmt.Errorf("create password account: %w", err)
		}
	}
	return emit(ctx, tx, EventUserCreated, u.ID, map[string]any{"userId": u.ID, "email": u.Email}, now)
}

// SignIn checks an email and password and opens a session. Unknown emails,
// wrong passwords and accounts without a password all return
// ErrInvalidCredentials after the same amount of hashing work, and all count
// toward the same lockout.
func (s *Service) SignIn(ctx context.Context, in SignInInput) (AuthResult, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		// A malformed address cannot have an account; answer as for any
		// unknown account.
		if err := s.cfg.Hasher.DummyVerify(ctx, in.Password); err != nil {
			return AuthResult{}, err
		}
		return AuthResult{}, ErrInvalidCredentials
	}
	now := s.now()
	att, err := s.claimSignInAttempt(ctx, email, "", MethodPassword, in.Client, now)
	if err != nil {
		return AuthResult{}, err
	}
	user, err := s.store.Users().GetByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		if err := s.cfg.Hasher.DummyVerify(ctx, in.Password); err != nil {
			return AuthResult{}, err
		}
		return AuthResult{}, s.attemptFailed(ctx, att, "", in.Client, now)
	}
	if err != nil {
		return AuthResult{}, fmt.Errorf("load user: %w", err)
	}
	ok, hash, err := s.verifyPassword(ctx, user.ID, in.Password)
	if err != nil {
		return AuthResult{}, err
	}
	if !ok {
		return AuthResult{}, s.attemptFailed(ctx, att, user.ID, in.Client, now)
	}
	var res AuthResult
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		if s.cfg.RequireVerifiedEmail && !user.EmailVerified {
			return ErrEmailNotVerified
		}
		res, err = s.finishSignIn(ctx, tx, FirstFactor{
			User: *user, Method: MethodPassword, RememberMe: in.RememberMe, Client: in.Client,
			TrustedDevice: in.TrustedDevice, lockChecked: true,
			recheck: func(tx storage.Store) error { return s.stillThePassword(ctx, tx, user.ID, hash, in.Password) },
		}, now)
		if err != nil || res.Session == nil {
			// Until the second factor is passed the attempt stays
			// counted, so that wrong codes after a right password add up
			// to the lockout instead of starting over with each sign-in.
			return err
		}
		if err := tx.LoginAttempts().Reset(ctx, att.key); err != nil {
			return fmt.Errorf("reset login attempts: %w", err)
		}
		return nil
	})
	if errors.Is(err, ErrEmailNotVerified) {
		// The password was right: forget the attempt even so.
		_ = s.store.LoginAttempts().Reset(ctx, att.key)
	}
	if err != nil {
		s.auditRefusal(ctx, err, MethodPassword, in.Client)
		return AuthResult{}, err
	}
	return res, nil
}

// usablePassword reports whether a credential account holds a password.
func usablePassword(a *storage.Account) bool { return a.Password != nil && *a.Password != "" }

// confirmPassword checks the signed-in user's password before a change
// (field names it in the error). Guesses count toward the lockout like
// sign-ins; a right one clears the count.
func (s *Service) confirmPassword(ctx context.Context, user storage.User, password, field, wrong string) error {
	now := s.now()
	att, err := s.claimAttempt(ctx, user.Email, now)
	if err != nil {
		return err
	}
	ok, err := s.checkPassword(ctx, user.ID, password)
	if err != nil {
		return err
	}
	if !ok {
		if err := s.attemptFailed(ctx, att, user.ID, ClientInfo{}, now); !errors.Is(err, ErrInvalidCredentials) {
			return err
		}
		return &InputError{Field: field, Message: wrong}
	}
	if err := s.store.LoginAttempts().Reset(ctx, att.key); err != nil {
		return fmt.Errorf("reset login attempts: %w", err)
	}
	return nil
}

// checkPassword verifies the user's password and, when the stored hash is
// weaker than today's parameters (or from another system), replaces it.
// Users without a password account get the same hashing work and false.
func (s *Service) checkPassword(ctx context.Context, userID, password string) (bool, error) {
	ok, _, err := s.verifyPassword(ctx, userID, password)
	return ok, err
}

// verifyPassword is checkPassword that also returns the stored hash the
// password matched (the new one after a rehash), for callers that check,
// inside their transaction, that it is still the stored one.
func (s *Service) verifyPassword(ctx context.Context, userID, password string) (bool, string, error) {
	acct, err := s.store.Accounts().GetCredential(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !usablePassword(acct)) {
		return false, "", s.cfg.Hasher.DummyVerify(ctx, password)
	}
	if err != nil {
		return false, "", fmt.Errorf("load password: %w", err)
	}
	ok, rehash, err := s.cfg.Hasher.Verify(ctx, *acct.Password, password)
	if err != nil {
		return false, "", fmt.Errorf("verify password: %w", err)
	}
	hash := *acct.Password
	if ok && rehash {
		hash = s.rehash(ctx, userID, hash, password)
	}
	return ok, hash, nil
}

// rehash upgrades a stored hash. It is compare-and-swap so that it can never
// overwrite a password changed meanwhile; failures only postpone the upgrade.
func (s *Service) rehash(ctx context.Context, userID, old, password string) (stored string) {
	h, err := s.cfg.Hasher.Hash(ctx, password)
	if err != nil {
		s.cfg.Logger.Warn("password rehash skipped", "user", userID, "err", err)
		return old
	}
	changed, err := s.store.Accounts().ReplacePassword(ctx, userID, old, h, s.now())
	if err != nil {
		s.cfg.Logger.Warn("password rehash not stored", "user", userID, "err", err)
	}
	if changed {
		return h
	}
	return old
}

// ChangePassword replaces a signed-in user's password after checking the
// current one. With revokeOthers, every other session ends.
func (s *Service) ChangePassword(ctx context.Context, view SessionView, current, next string, revokeOthers bool) error {
	user := view.User
	if err := s.confirmPassword(ctx, user, current, "currentPassword", "current password is incorrect"); err != nil {
		return err
	}
	now := s.now()
	if err := s.cfg.Policy.Check(next, user.Email); err != nil {
		return err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, next)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	var revoked []string
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		if err := tx.Accounts().UpdatePassword(ctx, user.ID, hash, now); err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		if revokeOthers {
			if revoked, err = s.revokeUserSessions(ctx, tx, user.ID, view.Session.ID, now); err != nil {
				return err
			}
			if err := tx.Challenges().DeleteByUser(ctx, user.ID, storage.PurposeTwoFactor); err != nil {
				return fmt.Errorf("drop pending sign-ins: %w", err)
			}
		}
		return emit(ctx, tx, EventPasswordChanged, user.ID, map[string]any{"userId": user.ID, "revokedSessions": len(revoked)}, now)
	})
	s.cache.invalidate(revoked...)
	return err
}

// stillThePassword confirms, under the user's row lock, that password is
// still the user's: the hash was checked before the transaction (it is
// slow), and a reset or a takeover may have committed since. A stored
// hash other than the one checked is checked again: another sign-in's
// upgrade of the same password changes the hash too.
func (s *Service) stillThePassword(ctx context.Context, tx storage.Store, userID, checked, password string) error {
	acct, err := tx.Accounts().GetCredential(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !usablePassword(acct)) {
		return ErrInvalidCredentials
	}
	if err != nil {
		return fmt.Errorf("load password: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(*acct.Password), []byte(checked)) == 1 {
		return nil
	}
	ok, _, err := s.cfg.Hasher.Verify(ctx, *acct.Password, password)
	if err != nil {
		return fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		return ErrInvalidCredentials
	}
	return nil
}
