package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/sms"
	"github.com/kavachos/kavach/storage"
)

// Phone codes: a texted code verifies a number for a signed-in user, who
// can then sign in with codes sent to it. A verified number is a
// kavach_account row (ProviderPhone, the E.164 number), so a number
// belongs to at most one user. Phone numbers do not sign people up: an
// account needs an email address first.

// SMSSender sends text messages; SMSMessage is one of them.
type (
	SMSSender  = sms.Sender
	SMSMessage = sms.Message
)

// ProviderPhone is the kavach_account provider of verified phone numbers.
const ProviderPhone = "phone"

// EventPhoneVerified is emitted when a user verifies a phone number.
const EventPhoneVerified = "phone.verified"

func init() { auditedEvents[EventPhoneVerified] = EventPhoneVerified }

// Phone errors.
var (
	// ErrPhoneNotEnabled: no SMS sender is configured.
	ErrPhoneNotEnabled = errors.New("phone sign-in is not enabled")
	// ErrPhoneInUse: the number is another user's.
	ErrPhoneInUse = errors.New("the phone number belongs to another account")
)

// NormalizePhone returns the E.164 form of a number as people type it
// ("+1 (415) 555-0100" is "+14155550100"). The country code is required.
func NormalizePhone(raw string) (string, error) {
	n, ok := sms.Normalize(raw)
	if !ok {
		return "", &InputError{Field: "phoneNumber", Message: "phoneNumber must be an international number: + and country code, 8 to 15 digits"}
	}
	return n, nil
}

// SendPhoneCode texts a code to the number, replacing any code sent
// before. It answers the same whatever the number (the code goes to any
// valid number: a signed-in user verifies a new one with it), and sends
// off the request path, so a failing SMS gateway is logged, not returned.
func (s *Service) SendPhoneCode(ctx context.Context, phone string) error {
	if !s.texts.has {
		return ErrPhoneNotEnabled
	}
	number, err := NormalizePhone(phone)
	if err != nil {
		return err
	}
	// The node's hourly budget comes last, so that what is refused
	// before (a malformed number; the HTTP layer's per-IP and per-number
	// limits) does not spend it.
	if ok, retry := s.textBudget.Allow("all", s.cfg.Now()); !ok {
		s.cfg.Logger.Warn("text message budget used up: phone codes are refused", "perHour", s.cfg.SMSPerHour)
		return &TextBudgetError{RetryAfter: retry}
	}
	s.texts.submit("phone-code", func(ctx context.Context, sender SMSSender) error {
		code, err := s.issueCode(ctx, storage.PurposePhoneOTP, number)
		if err != nil {
			return err
		}
		return sender.Send(ctx, SMSMessage{
			To:   number,
			Text: "Your " + s.cfg.TwoFactorIssuer + " code is " + code + ". It expires in " + minutes(s.cfg.OneTimeCodeTTL) + ". Do not share it.",
		})
	})
	return nil
}

// PhoneCodeInput is a texted code typed in.
type PhoneCodeInput struct {
	PhoneNumber   string
	Code          string
	RememberMe    bool
	Client        ClientInfo
	TrustedDevice string
}

// SignInWithPhone checks a texted code and signs in the user the number
// belongs to. A number that is no one's is refused like a wrong code
// (ErrInvalidCode), so the route does not tell which numbers have
// accounts. Guesses count toward the owner's lockout (toward the
// number's own counter for numbers without an owner).
func (s *Service) SignInWithPhone(ctx context.Context, in PhoneCodeInput) (AuthResult, error) {
	if !s.texts.has {
		return AuthResult{}, ErrPhoneNotEnabled
	}
	number, err := NormalizePhone(in.PhoneNumber)
	if err != nil {
		return AuthResult{}, err
	}
	now := s.now()
	var user *storage.User
	acct, err := s.store.Accounts().GetByProvider(ctx, ProviderPhone, number)
	if err == nil {
		if user, err = s.store.Users().Get(ctx, acct.UserID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return AuthResult{}, fmt.Errorf("load user: %w", err)
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return AuthResult{}, fmt.Errorf("load phone account: %w", err)
	}
	// Guesses count against the number, whoever owns it: the answers to
	// wrong codes then never depend on the owner (a lock on the owner's
	// address is checked by finishSignIn after the right code), and a
	// number gets at most the lockout threshold of guesses per lock
	// period, whether they come through sign-in or verification.
	counter, userID := phoneCounter(number), ""
	if user != nil {
		userID = user.ID
	}
	att, err := s.claimSignInAttempt(ctx, counter, userID, MethodPhoneOTP, in.Client, now)
	if err != nil {
		return AuthResult{}, err
	}
	ok, err := s.guessCode(ctx, storage.PurposePhoneOTP, number, in.Code, now)
	if err != nil {
		return AuthResult{}, err
	}
	if !ok {
		if err := s.attemptFailed(ctx, att, userID, in.Client, now); !errors.Is(err, ErrInvalidCredentials) {
			return AuthResult{}, err
		}
		return AuthResult{}, ErrInvalidCode
	}
	if user == nil {
		// The right code for a number without an account: spent, and
		// refused as a wrong one would be.
		_ = s.store.InTx(ctx, func(tx storage.Store) error {
			return s.consumeCode(ctx, tx, storage.PurposePhoneOTP, number, in.Code, now)
		})
		return AuthResult{}, ErrInvalidCode
	}
	var res AuthResult
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		if err := s.consumeCode(ctx, tx, storage.PurposePhoneOTP, number, in.Code, now); err != nil {
			return err
		}
		var err error
		res, err = s.finishSignIn(ctx, tx, FirstFactor{
			User: *user, Method: MethodPhoneOTP, RememberMe: in.RememberMe, Client: in.Client,
			TrustedDevice: in.TrustedDevice,
			// The number may have moved to another account, or been
			// dropped by a takeover, since it was read.
			recheck: func(tx storage.Store) error {
				a, err := tx.Accounts().GetByProvider(ctx, ProviderPhone, number)
				if err != nil || a.UserID != user.ID {
					return ErrInvalidCode
				}
				return nil
			},
		}, now)
		return err
	})
	if err != nil {
		s.auditRefusal(ctx, err, MethodPhoneOTP, in.Client)
		return AuthResult{}, err
	}
	if res.Session != nil {
		if err := s.store.LoginAttempts().Reset(ctx, att.key); err != nil {
			return AuthResult{}, fmt.Errorf("reset login attempts: %w", err)
		}
	}
	return res, nil
}

// phoneCounter names the lockout counter of a phone number.
func phoneCounter(number string) string { return "phone:" + number }

// VerifyPhone checks a texted code for a signed-in user and makes the
// number theirs, replacing a number they verified before. Adding a way to
// sign in needs re-authentication (password, or a recent sign-in), so a
// stolen old session cannot give itself a fresh one. A number that is
// another user's is ErrPhoneInUse, told only after the right code, which
// is spent either way. Guesses count toward the number's lockout, as at
// sign-in.
func (s *Service) VerifyPhone(ctx context.Context, view SessionView, phone, code, password string) (string, error) {
	if !s.texts.has {
		return "", ErrPhoneNotEnabled
	}
	number, err := NormalizePhone(phone)
	if err != nil {
		return "", err
	}
	if err := s.Reauthenticate(ctx, view, password); err != nil {
		return "", err
	}
	now := s.now()
	att, err := s.claimAttempt(ctx, phoneCounter(number), now)
	if err != nil {
		return "", err
	}
	ok, err := s.guessCode(ctx, storage.PurposePhoneOTP, number, code, now)
	if err != nil {
		return "", err
	}
	if !ok {
		if err := s.attemptFailed(ctx, att, view.User.ID, ClientInfo{}, now); !errors.Is(err, ErrInvalidCredentials) {
			return "", err
		}
		return "", ErrInvalidCode
	}
	userID := view.User.ID
	// The code is spent on its own, so that no answer below (PHONE_IN_USE
	// above all) leaves a right code usable for a sign-in.
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		if err := s.consumeCode(ctx, tx, storage.PurposePhoneOTP, number, code, now); err != nil {
			return err
		}
		return tx.LoginAttempts().Reset(ctx, att.key)
	})
	if err != nil {
		return "", err
	}
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := tx.Accounts().GetByProvider(ctx, ProviderPhone, number)
		switch {
		case err == nil && a.UserID == userID:
			return nil // verified already
		case err == nil:
			return ErrPhoneInUse
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("load phone account: %w", err)
		}
		accounts, err := tx.Accounts().ListByUser(ctx, userID)
		if err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		for _, old := range accounts {
			if old.ProviderID == ProviderPhone {
				if err := tx.Accounts().Delete(ctx, old.ID); err != nil {
					return fmt.Errorf("replace phone number: %w", err)
				}
			}
		}
		err = tx.Accounts().Create(ctx, &storage.Account{
			ID: id.New("acc"), UserID: userID, ProviderID: ProviderPhone, ProviderAccountID: number,
			CreatedAt: now, UpdatedAt: now,
		})
		if errors.Is(err, storage.ErrAlreadyExists) {
			return ErrPhoneInUse
		}
		if err != nil {
			return fmt.Errorf("store phone number: %w", err)
		}
		return emit(ctx, tx, EventPhoneVerified, userID, map[string]any{"userId": userID, "phoneNumber": number}, now)
	})
	if err != nil {
		return "", err
	}
	return number, nil
}

// TextBudgetError refuses a text message once the node has sent
// Config.SMSPerHour in the current hour.
type TextBudgetError struct{ RetryAfter time.Duration }

func (e *TextBudgetError) Error() string { return "the text message budget is used up" }
