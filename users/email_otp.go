package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/kavachos/kavach/internal/mail"
	"github.com/kavachos/kavach/storage"
)

// Email one-time codes sign in the owner of an address, and sign up an
// address without an account (verified: the code proves it). See
// one_time_codes.go for how codes are kept and limited.

// SendEmailOTP mails a sign-in code to the address, replacing any code
// sent before. It answers the same whether or not an account exists: the
// code is issued and mailed off the request path.
func (s *Service) SendEmailOTP(ctx context.Context, email string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	s.mails.submit("email-otp", func(ctx context.Context, m mail.Mailer) error {
		code, err := s.issueCode(ctx, storage.PurposeEmailOTP, email)
		if err != nil {
			return err
		}
		return m.Send(ctx, mail.Message{
			To:      email,
			Subject: "Your sign-in code",
			Text: "Your sign-in code is\n\n    " + code +
				"\n\nIt works once and expires in " + minutes(s.cfg.OneTimeCodeTTL) +
				".\nIf you did not ask for it, ignore this message: no one can sign in without the code.\n",
		})
	})
	return nil
}

// EmailOTPInput is a code typed in to sign in.
type EmailOTPInput struct {
	Email         string
	Code          string
	Name          string // the name of a new account
	RememberMe    bool
	Client        ClientInfo
	TrustedDevice string
}

// SignInWithEmailOTP checks a mailed code and signs the address in,
// creating the user when there is none (AuthResult.NewUser). A wrong,
// expired, used or exhausted code is ErrInvalidCode; each guess counts
// toward the address's lockout as a wrong password would.
func (s *Service) SignInWithEmailOTP(ctx context.Context, in EmailOTPInput) (AuthResult, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return AuthResult{}, err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return AuthResult{}, err
	}
	now := s.now()
	att, err := s.claimSignInAttempt(ctx, email, "", MethodEmailOTP, in.Client, now)
	if err != nil {
		return AuthResult{}, err
	}
	ok, err := s.guessCode(ctx, storage.PurposeEmailOTP, email, in.Code, now)
	if err != nil {
		return AuthResult{}, err
	}
	if !ok {
		var userID string
		if u, err := s.store.Users().GetByEmail(ctx, email); err == nil {
			userID = u.ID
		} else if !errors.Is(err, storage.ErrNotFound) {
			return AuthResult{}, fmt.Errorf("load user: %w", err)
		}
		if err := s.attemptFailed(ctx, att, userID, in.Client, now); !errors.Is(err, ErrInvalidCredentials) {
			return AuthResult{}, err
		}
		return AuthResult{}, ErrInvalidCode
	}
	consume := func(tx storage.Store) error {
		return s.consumeCode(ctx, tx, storage.PurposeEmailOTP, email, in.Code, now)
	}
	res, err := s.signInWithProvenEmail(ctx, email, name, consume, FirstFactor{
		Method: MethodEmailOTP, RememberMe: in.RememberMe, Client: in.Client, TrustedDevice: in.TrustedDevice,
		lockChecked: true,
	}, now)
	if err != nil {
		return AuthResult{}, err
	}
	// As after a password: until the second factor is passed, the attempt
	// stays counted.
	if res.Session != nil {
		if err := s.store.LoginAttempts().Reset(ctx, att.key); err != nil {
			return AuthResult{}, fmt.Errorf("reset login attempts: %w", err)
		}
	}
	return res, nil
}
