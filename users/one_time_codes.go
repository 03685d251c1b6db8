package users

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// One-time codes (email and phone) are 6 random digits. A code lives in a
// kavach_challenge row found by the keyed hash of the address it went to,
// and is stored as a keyed hash too. Each code allows codeMaxAttempts
// guesses, counted in one statement before the comparison, so parallel
// guesses cannot pass the limit; a right code is consumed, so it works
// once. Sending a new code replaces the old one. Every guess also counts
// toward the account's lockout, so asking for new codes does not buy
// unlimited guesses.

const (
	codeDigits      = 6
	codeMaxAttempts = 3
)

// newCode returns a uniformly random 6-digit code.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// normalizeCode drops the spaces and dashes people type ("123 456").
func normalizeCode(code string) (string, bool) {
	code = strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(code))
	return code, len(code) == codeDigits && strings.Trim(code, "0123456789") == ""
}

// codeLookup names the challenge row of the code sent to address. It is
// keyed, so the table does not give away the addresses codes went to.
func (s *Service) codeLookup(purpose, address string) string {
	return s.codeHash(purpose+":lookup", address)
}

func (s *Service) codeSecret(purpose, address, code string) string {
	return s.codeHash(purpose+":"+address, code)
}

// issueCode stores a new code for address, replacing any earlier one
// (attempts and all), and returns it.
func (s *Service) issueCode(ctx context.Context, purpose, address string) (string, error) {
	code := newCode()
	now := s.now()
	c := storage.Challenge{
		ID: id.New("chl"), Purpose: purpose, Lookup: s.codeLookup(purpose, address),
		SecretHash: s.codeSecret(purpose, address, code), ExpiresAt: now.Add(s.cfg.OneTimeCodeTTL), CreatedAt: now,
	}
	if err := s.store.Challenges().Put(ctx, &c); err != nil {
		return "", fmt.Errorf("store %s code: %w", purpose, err)
	}
	return code, nil
}

// guessCode counts one guess at the code sent to address and reports
// whether code is it. A code that is unknown, expired or out of guesses
// is never right.
func (s *Service) guessCode(ctx context.Context, purpose, address, code string, now time.Time) (bool, error) {
	code, ok := normalizeCode(code)
	if !ok {
		return false, nil
	}
	c, err := s.store.Challenges().Attempt(ctx, purpose, s.codeLookup(purpose, address), codeMaxAttempts, now)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("count code attempt: %w", err)
	}
	return subtle.ConstantTimeCompare([]byte(c.SecretHash), []byte(s.codeSecret(purpose, address, code))) == 1, nil
}

// consumeCode spends the code that guessCode accepted, in tx. Of two
// right guesses at once, one gets it; and if a new code replaced the
// guessed one meanwhile, the new one is left alone (the transaction rolls
// back) and the guess fails.
func (s *Service) consumeCode(ctx context.Context, tx storage.Store, purpose, address, code string, now time.Time) error {
	code, _ = normalizeCode(code)
	c, err := tx.Challenges().Consume(ctx, purpose, s.codeLookup(purpose, address), now)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrInvalidCode
	}
	if err != nil {
		return fmt.Errorf("consume code: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(c.SecretHash), []byte(s.codeSecret(purpose, address, code))) != 1 {
		return ErrInvalidCode
	}
	return nil
}

// minutes says a duration the way a message to a person does.
func minutes(d time.Duration) string {
	if m := int(d.Round(time.Minute) / time.Minute); m > 1 {
		return fmt.Sprintf("%d minutes", m)
	}
	if d >= 59*time.Second && d <= 61*time.Second {
		return "1 minute"
	}
	return d.String()
}

// userForProvenEmail returns the user with this address, which the
// caller has just proven control of (a magic link, an emailed code): an
// unverified address becomes verified. Without such a user it creates one
// with the address verified. It runs in the caller's transaction;
// ErrUserExists means another request created the user meanwhile (retry).
// after, when not nil, runs once the transaction has committed.
func (s *Service) userForProvenEmail(ctx context.Context, tx storage.Store, email, name string, now time.Time) (_ storage.User, created bool, after func(), _ error) {
	u, err := tx.Users().GetByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		nu := storage.User{ID: newUserID(), Email: email, Name: name, EmailVerified: true, CreatedAt: now, UpdatedAt: now}
		if err := s.insertUser(ctx, tx, &nu, nil, now); err != nil {
			return storage.User{}, false, nil, err
		}
		return nu, true, nil, nil
	}
	if err != nil {
		return storage.User{}, false, nil, fmt.Errorf("load user: %w", err)
	}
	if !u.EmailVerified {
		// Whoever made an unverified account may not own the address
		// (account pre-hijacking): now that its owner has proven it,
		// every way in they set up ends. The owner can set a password
		// again with a reset.
		if after, err = s.dropUnprovenAccess(ctx, tx, u.ID, now); err != nil {
			return storage.User{}, false, nil, err
		}
		u.EmailVerified, u.UpdatedAt = true, now
		if err := tx.Users().Update(ctx, u); err != nil {
			return storage.User{}, false, nil, fmt.Errorf("mark verified: %w", err)
		}
		if err := emit(ctx, tx, EventEmailVerified, u.ID, map[string]any{"userId": u.ID, "email": u.Email}, now); err != nil {
			return storage.User{}, false, nil, err
		}
	}
	return *u, false, after, nil
}

// signInWithProvenEmail runs step (which consumes the proof) and signs
// in the user with email, creating it if need be, in one transaction. A
// concurrent sign-up of the same address makes it try once more, as the
// existing user.
func (s *Service) signInWithProvenEmail(ctx context.Context, email, name string, step func(tx storage.Store) error, f FirstFactor, now time.Time) (AuthResult, error) {
	var res AuthResult
	var err error
	var after func()
	for try := 0; try < 2; try++ {
		err = s.store.InTx(ctx, func(tx storage.Store) error {
			if err := step(tx); err != nil {
				return err
			}
			user, created, then, err := s.userForProvenEmail(ctx, tx, email, name, now)
			after = then
			if err != nil {
				return err
			}
			f.User = user
			res, err = s.finishSignIn(ctx, tx, f, now)
			res.NewUser = created
			return err
		})
		if !errors.Is(err, ErrUserExists) {
			break
		}
	}
	if err != nil {
		s.auditRefusal(ctx, err, f.Method, f.Client)
		return AuthResult{}, err
	}
	s.cache.invalidateUser(res.User.ID)
	if after != nil {
		after()
	}
	return res, nil
}

// dropUnprovenAccess hands an account whose address was unverified until
// now to the address's owner, who has just proven it: every way in that
// whoever created the account set up (password, social and phone
// accounts, passkeys, two-factor, trusted devices, pending sign-ins,
// sessions) ends. Otherwise a squatter who pre-registered the address
// would keep signing in, or lock the owner out with their own second
// factor. The caller invalidates the user's cached sessions.
func (s *Service) dropUnprovenAccess(ctx context.Context, tx storage.Store, userID string, now time.Time) (after func(), err error) {
	// Sign-ins take this lock before they issue a session: one that
	// checked a credential before this transaction waits, then finds it
	// gone.
	if err := tx.Users().Lock(ctx, userID); err != nil {
		return nil, fmt.Errorf("lock user: %w", err)
	}
	accts, err := tx.Accounts().ListByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	for _, a := range accts {
		if err := tx.Accounts().Delete(ctx, a.ID); err != nil {
			return nil, fmt.Errorf("drop unproven account: %w", err)
		}
	}
	keys, err := tx.Passkeys().ListByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	for _, k := range keys {
		if err := tx.Passkeys().Delete(ctx, userID, k.ID); err != nil {
			return nil, fmt.Errorf("drop unproven passkey: %w", err)
		}
	}
	if err := tx.TwoFactors().Delete(ctx, userID); err != nil {
		return nil, fmt.Errorf("drop unproven two-factor: %w", err)
	}
	for _, purpose := range []string{storage.PurposeTrustedDevice, storage.PurposeTwoFactor} {
		if err := tx.Challenges().DeleteByUser(ctx, userID, purpose); err != nil {
			return nil, fmt.Errorf("drop %s: %w", purpose, err)
		}
	}
	if _, err := s.revokeUserSessions(ctx, tx, userID, "", now); err != nil {
		return nil, err
	}
	// Apps and agents the squatter set up act for the account too: their
	// tokens end and the agents are suspended for the owner to review.
	if _, err := tx.OAuthTokens().DeactivateSubject(ctx, userID); err != nil {
		return nil, fmt.Errorf("revoke oauth grants: %w", err)
	}
	return s.suspendAgents(ctx, tx, userID, "account_reclaimed")
}
