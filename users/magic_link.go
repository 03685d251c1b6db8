package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/mail"
	"github.com/kavachos/kavach/storage"
)

// Magic links: a single-use link mailed to an address signs its owner in,
// and signs up an address that has no account yet (with the address
// verified: the link proves it). The token is 256 random bits, stored as
// its hash in a PurposeMagicLink challenge.

// MagicLinkInput asks for a magic link. The URLs, already checked against
// the trusted origins, are carried in the link for the verify route.
type MagicLinkInput struct {
	Email              string
	Name               string // the name of a new account
	CallbackURL        string
	NewUserCallbackURL string
	ErrorCallbackURL   string
}

// magicLinkData is the data of a PurposeMagicLink challenge.
type magicLinkData struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// SendMagicLink mails a sign-in link to the address. It answers the same
// whether or not an account exists (one that does not is created when the
// link is opened): the token is issued and the mail sent off the request
// path.
func (s *Service) SendMagicLink(ctx context.Context, in MagicLinkInput) error {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return err
	}
	data, err := json.Marshal(magicLinkData{Email: email, Name: name})
	if err != nil {
		return fmt.Errorf("encode magic link: %w", err)
	}
	s.mails.submit("magic-link", func(ctx context.Context, m mail.Mailer) error {
		token := id.Secret()
		now := s.now()
		c := storage.Challenge{
			ID: id.New("chl"), Purpose: storage.PurposeMagicLink, Lookup: id.Hash(token), Data: data,
			ExpiresAt: now.Add(s.cfg.MagicLinkTTL), CreatedAt: now,
		}
		if err := s.store.Challenges().Put(ctx, &c); err != nil {
			return fmt.Errorf("store magic link: %w", err)
		}
		link := withQuery(s.cfg.BaseURL+"/api/auth/magic-link/verify", "token", token, "callbackURL", in.CallbackURL,
			"newUserCallbackURL", in.NewUserCallbackURL, "errorCallbackURL", in.ErrorCallbackURL)
		return m.Send(ctx, mail.Message{
			To:      email,
			Subject: "Your sign-in link",
			Text: "Open this link to sign in:\n\n" + link +
				"\n\nThe link works once and expires in " + minutes(s.cfg.MagicLinkTTL) +
				".\nIf you did not ask for it, ignore this message.\n",
		})
	})
	return nil
}

// VerifyMagicLinkInput is an opened magic link.
type VerifyMagicLinkInput struct {
	Token         string
	Client        ClientInfo
	TrustedDevice string
}

// VerifyMagicLink spends a magic link and signs its address in, creating
// the user when there is none (AuthResult.NewUser). A link that is
// unknown, expired or used is ErrInvalidToken. Locked accounts and
// two-factor authentication are handled by finishSignIn; a refused
// sign-in leaves the link unspent.
func (s *Service) VerifyMagicLink(ctx context.Context, in VerifyMagicLinkInput) (AuthResult, error) {
	if in.Token == "" || len(in.Token) > 256 {
		return AuthResult{}, ErrInvalidToken
	}
	now := s.now()
	lookup := id.Hash(in.Token)
	// The address comes from the row; read it first (the row is consumed
	// in the transaction, which is what makes the link single-use).
	c, err := s.store.Challenges().Get(ctx, storage.PurposeMagicLink, lookup, now)
	if errors.Is(err, storage.ErrNotFound) {
		return AuthResult{}, ErrInvalidToken
	}
	if err != nil {
		return AuthResult{}, fmt.Errorf("load magic link: %w", err)
	}
	var data magicLinkData
	if err := json.Unmarshal(c.Data, &data); err != nil || data.Email == "" {
		return AuthResult{}, fmt.Errorf("decode magic link: %w", err)
	}
	consume := func(tx storage.Store) error {
		got, err := tx.Challenges().Consume(ctx, storage.PurposeMagicLink, lookup, now)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidToken
		}
		if err != nil {
			return fmt.Errorf("consume magic link: %w", err)
		}
		if got.ID != c.ID {
			return ErrInvalidToken
		}
		return nil
	}
	return s.signInWithProvenEmail(ctx, data.Email, data.Name, consume, FirstFactor{
		Method: MethodMagicLink, RememberMe: true, Client: in.Client, TrustedDevice: in.TrustedDevice,
	}, now)
}
