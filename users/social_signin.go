package users

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users/social"
)

// Social sign-in. A flow starts with a random state (stored hashed as a
// PurposeOAuthState challenge for 10 minutes, and set in a cookie of the
// browser that started it), a PKCE verifier (sealed in the challenge) and
// an OIDC nonce. The callback consumes the state once, exchanges the code
// and verifies the identity, then in one transaction finds or links or
// creates the account and ends in finishSignIn.
//
// Linking rules: an account already linked to (provider, provider
// account id) signs its user in; otherwise a user with the same address
// is linked only when both the provider and Kavach say the address is
// verified; otherwise, if such a user exists, the sign-in is refused
// (ErrAccountNotLinked) and the person must sign in and link explicitly;
// otherwise a new user is created.

// Social sign-in errors.
var (
	ErrUnknownProvider = social.ErrUnknownProvider
	ErrProviderFailed  = social.ErrProvider
	ErrInvalidIDToken  = social.ErrIDToken
	ErrProviderNoEmail = social.ErrNoEmail
	// ErrInvalidState is an unknown, expired or reused state, or one the
	// browser does not hold (its cookie is missing or different).
	ErrInvalidState = errors.New("the sign-in state is invalid, expired or already used")
	// ErrAccountNotLinked: a user with this address exists, but the
	// address is not verified on both sides, so the provider account is
	// not linked to it automatically.
	ErrAccountNotLinked = errors.New("an account with this email exists; sign in and link the provider to it")
	// ErrAccountAlreadyLinked: the provider account belongs to another user.
	ErrAccountAlreadyLinked = errors.New("the provider account is linked to another user")
	// ErrLastAccount refuses to remove a user's last way to sign in.
	ErrLastAccount     = errors.New("this is the last way to sign in to the account")
	ErrAccountNotFound = errors.New("account not found")
	// ErrLinkSessionChanged: a link flow's callback arrived in a browser
	// no longer signed in as the user who started it.
	ErrLinkSessionChanged = errors.New("the link was started by another sign-in; start it again")
	// ErrProviderDenied is the provider's error= answer (the person
	// declined, or the provider refused the request).
	ErrProviderDenied = errors.New("the provider did not authorize the sign-in")
)

// ProviderDeniedError carries the provider's error code (access_denied,
// …), reduced to lower-case letters, digits and underscores.
type ProviderDeniedError struct{ Code string }

func (e *ProviderDeniedError) Error() string        { return ErrProviderDenied.Error() + ": " + e.Code }
func (e *ProviderDeniedError) Is(target error) bool { return target == ErrProviderDenied }

// Account events.
const (
	EventAccountLinked   = "account.linked"
	EventAccountUnlinked = "account.unlinked"
)

const (
	socialStateTTL = 10 * time.Minute
	// SocialCallbackPath is the callback under the base URL; the
	// provider's id goes in the middle.
	socialCallbackPrefix = "/api/auth/oauth/"
	// clerkPrefix: accounts imported from Clerk keep Clerk's provider
	// names ("oauth_google").
	clerkPrefix = "oauth_"
)

// SocialStartInput starts a social sign-in (or, with LinkUserID, links a
// provider account to a signed-in user). The URLs are checked and
// absolute.
type SocialStartInput struct {
	Provider           string
	CallbackURL        string
	ErrorCallbackURL   string
	NewUserCallbackURL string
	LinkUserID         string
}

// SocialStart is where to send the browser, and the state to bind to it.
type SocialStart struct {
	URL       string
	State     string
	ExpiresAt time.Time
}

type oauthState struct {
	Provider           string `json:"provider"`
	Verifier           string `json:"verifier"` // sealed, base64url
	Nonce              string `json:"nonce,omitempty"`
	CallbackURL        string `json:"callbackURL,omitempty"`
	ErrorCallbackURL   string `json:"errorCallbackURL,omitempty"`
	NewUserCallbackURL string `json:"newUserCallbackURL,omitempty"`
}

func stateAD(lookup string) []byte { return []byte("oauth-state|" + lookup) }

// SocialRedirectURI is the callback URL registered at the provider.
func (s *Service) SocialRedirectURI(provider string) string {
	return s.cfg.BaseURL + socialCallbackPrefix + provider + "/callback"
}

// SocialProviders lists the configured providers.
func (s *Service) SocialProviders() []social.Info { return s.cfg.Social.Providers() }

// SocialFormPost reports whether the provider answers by cross-site POST.
func (s *Service) SocialFormPost(provider string) bool { return s.cfg.Social.FormPost(provider) }

// StartSocial stores the flow's state and returns the provider URL.
func (s *Service) StartSocial(ctx context.Context, in SocialStartInput) (SocialStart, error) {
	reg := s.cfg.Social
	if !reg.Has(in.Provider) {
		return SocialStart{}, ErrUnknownProvider
	}
	if s.cfg.Sealer == nil {
		return SocialStart{}, errors.New("social sign-in: no sealer configured")
	}
	now := s.now()
	state, verifier := id.Secret(), oauth2.GenerateVerifier()
	nonce := ""
	if reg.UsesNonce(in.Provider) {
		nonce = id.Secret()
	}
	target, err := reg.AuthCodeURL(ctx, in.Provider, social.Request{
		State: state, Verifier: verifier, Nonce: nonce, RedirectURI: s.SocialRedirectURI(in.Provider),
	})
	if err != nil {
		return SocialStart{}, err
	}
	lookup := id.Hash(state)
	data, err := json.Marshal(oauthState{
		Provider: in.Provider, Nonce: nonce,
		Verifier:    base64.RawURLEncoding.EncodeToString(s.cfg.Sealer.Seal([]byte(verifier), stateAD(lookup))),
		CallbackURL: in.CallbackURL, ErrorCallbackURL: in.ErrorCallbackURL, NewUserCallbackURL: in.NewUserCallbackURL,
	})
	if err != nil {
		return SocialStart{}, fmt.Errorf("encode oauth state: %w", err)
	}
	c := storage.Challenge{
		ID: id.New("chl"), Purpose: storage.PurposeOAuthState, Lookup: lookup, UserID: in.LinkUserID,
		Data: data, ExpiresAt: now.Add(socialStateTTL), CreatedAt: now,
	}
	if err := s.store.Challenges().Put(ctx, &c); err != nil {
		return SocialStart{}, fmt.Errorf("store oauth state: %w", err)
	}
	return SocialStart{URL: target, State: state, ExpiresAt: c.ExpiresAt}, nil
}

// SocialCallbackInput is what came back to the callback.
type SocialCallbackInput struct {
	Provider string
	// State is the callback's state parameter; BrowserState the value of
	// the cookie set when the flow started. They must be equal.
	State        string
	BrowserState string
	Code         string
	// Error is the provider's error parameter, if any.
	Error string
	// AppleUser is the "user" field Apple posts on the first sign-in.
	AppleUser     string
	Client        ClientInfo
	TrustedDevice string
	// SignedInUserID says whom the browser is signed in as now ("" for
	// no one): a link flow finishes only for the user who started it. It
	// is asked only for link flows.
	SignedInUserID func() string
}

// SocialOutcome is the end of a social flow. The URLs are those given at
// the start, known once the state was found (also when err is set).
type SocialOutcome struct {
	AuthResult
	// Linked: an explicit link finished; nobody was signed in.
	Linked             bool
	CallbackURL        string
	ErrorCallbackURL   string
	NewUserCallbackURL string
}

// FinishSocial completes a flow at the callback.
func (s *Service) FinishSocial(ctx context.Context, in SocialCallbackInput) (SocialOutcome, error) {
	var out SocialOutcome
	if in.State == "" || len(in.State) > 256 || subtle.ConstantTimeCompare([]byte(in.State), []byte(in.BrowserState)) != 1 {
		return out, ErrInvalidState
	}
	now := s.now()
	c, err := s.store.Challenges().Consume(ctx, storage.PurposeOAuthState, id.Hash(in.State), now)
	if errors.Is(err, storage.ErrNotFound) {
		return out, ErrInvalidState
	}
	if err != nil {
		return out, fmt.Errorf("consume oauth state: %w", err)
	}
	var st oauthState
	if err := json.Unmarshal(c.Data, &st); err != nil {
		return out, fmt.Errorf("decode oauth state: %w", err)
	}
	out.CallbackURL, out.ErrorCallbackURL, out.NewUserCallbackURL = st.CallbackURL, st.ErrorCallbackURL, st.NewUserCallbackURL
	if st.Provider != in.Provider {
		return out, ErrInvalidState
	}
	if in.Error != "" {
		return out, &ProviderDeniedError{Code: errorCode(in.Error)}
	}
	sealed, err := base64.RawURLEncoding.DecodeString(st.Verifier)
	if err != nil {
		return out, fmt.Errorf("decode pkce verifier: %w", err)
	}
	verifier, err := s.cfg.Sealer.Open(sealed, stateAD(c.Lookup))
	if err != nil {
		return out, fmt.Errorf("open pkce verifier: %w", err)
	}
	ident, toks, err := s.cfg.Social.Exchange(ctx, in.Provider, in.Code, social.Request{
		State: in.State, Verifier: string(verifier), Nonce: st.Nonce, RedirectURI: s.SocialRedirectURI(in.Provider),
	}, in.AppleUser)
	if err != nil {
		return out, err // package social's errors never hold tokens
	}
	email := ""
	if ident.Email != "" {
		if e, err := NormalizeEmail(ident.Email); err == nil {
			email = e
		}
	}
	if email == "" {
		ident.EmailVerified = false
	}

	var locked storage.User
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		acct, err := s.findSocialAccount(ctx, tx, in.Provider, ident.Subject)
		if err != nil {
			return err
		}
		if c.UserID != "" {
			// Whoever finishes the link must still be who started it: a
			// link left open at sign-out must not attach the next
			// person's provider account to the first person's account.
			if subtle.ConstantTimeCompare([]byte(c.UserID), []byte(in.SignedInUserID())) != 1 {
				return ErrLinkSessionChanged
			}
			return s.linkExplicitly(ctx, tx, c.UserID, acct, in.Provider, ident, toks, email, now, &out)
		}
		user, newUser, autoLink, err := s.socialUser(ctx, tx, acct, in.Provider, ident, toks, email, now)
		if err != nil {
			return err
		}
		if s.cfg.RequireVerifiedEmail && !user.EmailVerified {
			return ErrEmailNotVerified
		}
		locked = user
		f := FirstFactor{
			User: user, Method: MethodSocialPrefix + in.Provider, RememberMe: true, Client: in.Client,
			TrustedDevice: in.TrustedDevice, Extra: map[string]any{"provider": in.Provider},
		}
		if acct != nil {
			// A takeover may have dropped the account since it was read.
			f.recheck = func(tx storage.Store) error {
				a, err := tx.Accounts().GetByProvider(ctx, acct.ProviderID, acct.ProviderAccountID)
				if err != nil || a.UserID != user.ID {
					return ErrAccountNotFound
				}
				return nil
			}
		}
		res, err := s.finishSignIn(ctx, tx, f, now)
		if err != nil {
			return err
		}
		// An automatic link is stored only with a session: a sign-in
		// left at the second factor links nothing (a user with two-factor
		// authentication links explicitly to keep the link).
		if autoLink && res.Session != nil {
			if _, err := s.createSocialAccount(ctx, tx, user.ID, in.Provider, ident, toks, email, "automatic", now); err != nil {
				return err
			}
		}
		res.NewUser = newUser
		out.AuthResult = res
		return nil
	})
	var lk *LockedError
	if errors.As(err, &lk) {
		s.auditSignInFailure(ctx, locked.Email, locked.ID, "ACCOUNT_LOCKED", in.Client, MethodSocialPrefix+in.Provider, now)
	}
	s.auditRefusal(ctx, err, MethodSocialPrefix+in.Provider, in.Client)
	return out, err
}

// socialUser applies the linking rules (see the top of this file) and
// returns the user who signs in, whether it was created now, and whether
// the provider account is to be linked to it automatically (the caller
// stores that link once the sign-in has issued a session).
func (s *Service) socialUser(ctx context.Context, tx storage.Store, acct *storage.Account, provider string, ident social.Identity, toks social.Tokens, email string, now time.Time) (user storage.User, created, autoLink bool, err error) {
	if acct != nil {
		// The user's row first, as everywhere (see finishSignIn): the
		// account row is written below.
		if err := tx.Users().Lock(ctx, acct.UserID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return storage.User{}, false, false, fmt.Errorf("lock user: %w", err)
		}
		u, err := found(tx.Users().Get(ctx, acct.UserID))
		if err != nil {
			return storage.User{}, false, false, err
		}
		return u, false, false, s.refreshAccount(ctx, tx, acct, toks, email, now)
	}
	if email == "" {
		return storage.User{}, false, false, ErrProviderNoEmail
	}
	local, err := tx.Users().GetByEmail(ctx, email)
	switch {
	case err == nil && ident.EmailVerified && local.EmailVerified:
		return *local, false, true, nil
	case err == nil:
		return storage.User{}, false, false, ErrAccountNotLinked
	case errors.Is(err, storage.ErrNotFound):
		u, err := s.createSocialUser(ctx, tx, provider, ident, toks, email, now)
		return u, err == nil, false, err
	default:
		return storage.User{}, false, false, fmt.Errorf("load user by email: %w", err)
	}
}

// errorCode reduces a provider's error parameter to a safe token.
func errorCode(raw string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(raw) {
		if b.Len() >= 64 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "provider_error"
	}
	return b.String()
}

// findSocialAccount finds the account of (provider, subject), also under
// the provider name Clerk gave it ("oauth_github") when it was imported.
func (s *Service) findSocialAccount(ctx context.Context, tx storage.Store, provider, subject string) (*storage.Account, error) {
	for _, p := range []string{provider, clerkPrefix + provider} {
		a, err := tx.Accounts().GetByProvider(ctx, p, subject)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("load account: %w", err)
		}
	}
	return nil, nil
}

func (s *Service) linkExplicitly(ctx context.Context, tx storage.Store, userID string, acct *storage.Account, provider string, ident social.Identity, toks social.Tokens, email string, now time.Time, out *SocialOutcome) error {
	if acct != nil {
		if acct.UserID != userID {
			return ErrAccountAlreadyLinked
		}
		out.Linked = true
		return s.refreshAccount(ctx, tx, acct, toks, email, now)
	}
	user, err := found(tx.Users().Get(ctx, userID))
	if err != nil {
		return err
	}
	if _, err := s.createSocialAccount(ctx, tx, user.ID, provider, ident, toks, email, "explicit", now); err != nil {
		return err
	}
	out.User, out.Linked = user, true
	return nil
}

func (s *Service) createSocialUser(ctx context.Context, tx storage.Store, provider string, ident social.Identity, toks social.Tokens, email string, now time.Time) (storage.User, error) {
	name, err := checkName(cleanText(ident.Name, maxNameLength))
	if err != nil {
		name = ""
	}
	u := storage.User{ID: newUserID(), Email: email, Name: name, EmailVerified: ident.EmailVerified, CreatedAt: now, UpdatedAt: now}
	if img := ident.Image; img != "" && checkImage(&img) == nil {
		u.Image = &img
	}
	if err := s.insertUser(ctx, tx, &u, nil, now); err != nil {
		return storage.User{}, err
	}
	if _, err := s.createSocialAccount(ctx, tx, u.ID, provider, ident, toks, email, "sign-up", now); err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// createSocialAccount stores a provider account of the user, its tokens
// sealed, and records account.linked. how is "sign-up", "automatic" (same
// verified address) or "explicit".
func (s *Service) createSocialAccount(ctx context.Context, tx storage.Store, userID, provider string, ident social.Identity, toks social.Tokens, email, how string, now time.Time) (*storage.Account, error) {
	a := storage.Account{
		ID: id.New("acc"), UserID: userID, ProviderID: provider, ProviderAccountID: ident.Subject,
		Scope: cleanText(toks.Scope, 1024), Email: email, CreatedAt: now, UpdatedAt: now,
	}
	s.sealTokens(&a, toks)
	if err := tx.Accounts().Create(ctx, &a); errors.Is(err, storage.ErrAlreadyExists) {
		return nil, ErrAccountAlreadyLinked
	} else if err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	return &a, emit(ctx, tx, EventAccountLinked, userID, map[string]any{
		"userId": userID, "accountId": a.ID, "provider": provider, "providerAccountId": ident.Subject, "linkedBy": how,
	}, now)
}

// refreshAccount stores what the provider said at this sign-in. A
// refresh token is kept when the provider sent no new one.
func (s *Service) refreshAccount(ctx context.Context, tx storage.Store, a *storage.Account, toks social.Tokens, email string, now time.Time) error {
	old := a.RefreshToken
	s.sealTokens(a, toks)
	if a.RefreshToken == nil && old != nil {
		a.RefreshToken = old
	}
	a.Scope, a.UpdatedAt = cleanText(toks.Scope, 1024), now
	if email != "" {
		a.Email = email
	}
	if err := tx.Accounts().UpdateTokens(ctx, a); err != nil {
		return fmt.Errorf("update account tokens: %w", err)
	}
	return nil
}

// tokenAD binds a sealed token to its account row and field.
func tokenAD(accountID, field string) []byte {
	return []byte("social-token|" + accountID + "|" + field)
}

func (s *Service) sealTokens(a *storage.Account, toks social.Tokens) {
	seal := func(v, field string) *string {
		if v == "" {
			return nil
		}
		out := base64.RawURLEncoding.EncodeToString(s.cfg.Sealer.Seal([]byte(v), tokenAD(a.ID, field)))
		return &out
	}
	a.AccessToken = seal(toks.AccessToken, "access")
	a.RefreshToken = seal(toks.RefreshToken, "refresh")
	a.IDToken = seal(toks.IDToken, "id")
	a.AccessTokenExpiresAt = nil
	if !toks.Expiry.IsZero() {
		t := toks.Expiry.UTC().Truncate(time.Millisecond)
		a.AccessTokenExpiresAt = &t
	}
}

// SocialTokens returns the provider tokens of the user's account at the
// provider (to call the provider's API on the user's behalf). The
// refresh token survives sign-ins that did not send a new one.
func (s *Service) SocialTokens(ctx context.Context, userID, provider string) (social.Tokens, error) {
	list, err := s.store.Accounts().ListByUser(ctx, userID)
	if err != nil {
		return social.Tokens{}, fmt.Errorf("list accounts: %w", err)
	}
	for _, a := range list {
		if providerName(a.ProviderID) != provider || a.ProviderID == storage.ProviderCredential {
			continue
		}
		open := func(v *string, field string) (string, error) {
			if v == nil {
				return "", nil
			}
			raw, err := base64.RawURLEncoding.DecodeString(*v)
			if err != nil {
				return "", fmt.Errorf("decode %s token: %w", field, err)
			}
			pt, err := s.cfg.Sealer.Open(raw, tokenAD(a.ID, field))
			if err != nil {
				return "", fmt.Errorf("open %s token: %w", field, err)
			}
			return string(pt), nil
		}
		var t social.Tokens
		if t.AccessToken, err = open(a.AccessToken, "access"); err != nil {
			return social.Tokens{}, err
		}
		if t.RefreshToken, err = open(a.RefreshToken, "refresh"); err != nil {
			return social.Tokens{}, err
		}
		if t.IDToken, err = open(a.IDToken, "id"); err != nil {
			return social.Tokens{}, err
		}
		if a.AccessTokenExpiresAt != nil {
			t.Expiry = *a.AccessTokenExpiresAt
		}
		t.Scope = a.Scope
		return t, nil
	}
	return social.Tokens{}, ErrAccountNotFound
}

// providerName is the provider id as clients see it: Clerk's imported
// "oauth_github" is "github".
func providerName(id string) string { return strings.TrimPrefix(id, clerkPrefix) }

// LinkedAccount describes one of a user's accounts; never its tokens.
type LinkedAccount struct {
	ID        string
	Provider  string // "credential" for the password
	AccountID string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ListAccounts returns the user's accounts, oldest first.
func (s *Service) ListAccounts(ctx context.Context, userID string) ([]LinkedAccount, error) {
	list, err := s.store.Accounts().ListByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out := make([]LinkedAccount, 0, len(list))
	for _, a := range list {
		la := LinkedAccount{ID: a.ID, Provider: providerName(a.ProviderID), AccountID: a.ProviderAccountID,
			Scopes: strings.Fields(strings.ReplaceAll(a.Scope, ",", " ")), CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
		if la.Scopes == nil {
			la.Scopes = []string{}
		}
		out = append(out, la)
	}
	return out, nil
}

// UnlinkAccount removes the user's account at provider (the one with
// accountID, the provider's account id, when the user has several). It
// refuses to remove the last way to sign in: the password, another
// account at a configured provider, or a passkey must remain.
func (s *Service) UnlinkAccount(ctx context.Context, userID, provider, accountID string) error {
	if provider == "" {
		return &InputError{Field: "provider", Message: "provider is required"}
	}
	if provider == storage.ProviderCredential {
		return &InputError{Field: "provider", Message: "the password is not unlinked; change or reset it instead"}
	}
	now := s.now()
	return s.store.InTx(ctx, func(tx storage.Store) error {
		// The user's row lock serializes removals of one user's ways in
		// (unlinks, passkey deletions), so two cannot each remove the
		// other's "remaining" one.
		if err := tx.Users().Lock(ctx, userID); errors.Is(err, storage.ErrNotFound) {
			return ErrUserNotFound
		} else if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		list, err := tx.Accounts().ListByUser(ctx, userID)
		if err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		var match []storage.Account
		for _, a := range list {
			if a.ProviderID != storage.ProviderCredential && providerName(a.ProviderID) == provider && (accountID == "" || a.ProviderAccountID == accountID) {
				match = append(match, a)
			}
		}
		if len(match) == 0 {
			return ErrAccountNotFound
		}
		if len(match) > 1 {
			return &InputError{Field: "accountId", Message: "the user has several accounts at this provider; name one with accountId"}
		}
		if n, err := s.waysIn(ctx, tx, userID, match[0].ID, ""); err != nil {
			return err
		} else if n == 0 {
			return ErrLastAccount
		}
		a := match[0]
		if err := tx.Accounts().Delete(ctx, a.ID); err != nil {
			return fmt.Errorf("delete account: %w", err)
		}
		return emit(ctx, tx, EventAccountUnlinked, userID, map[string]any{
			"userId": userID, "accountId": a.ID, "provider": provider, "providerAccountId": a.ProviderAccountID,
		}, now)
	})
}
