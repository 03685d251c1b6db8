package users

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Passkeys (WebAuthn). A signed-in user registers a passkey; anyone signs
// in with one, naming their address (the browser offers that account's
// passkeys) or not (the browser offers every passkey it has for this
// site). Each ceremony's state is a PurposePasskey challenge found by the
// hash of its WebAuthn challenge, which the browser signs over: one row
// per ceremony, single use, 5 minutes. A passkey assertion is a first
// factor; with the user-verified flag (PIN or biometrics on the
// authenticator) it is also multi-factor, and finishSignIn decides.

const (
	passkeyChallengeTTL = 5 * time.Minute
	maxPasskeysPerUser  = 25
	maxPasskeyName      = 64
	passkeyIDPrefix     = "pk"
)

// Passkey events; all are audited.
const (
	EventPasskeyRegistered   = "passkey.registered"
	EventPasskeyDeleted      = "passkey.deleted"
	EventPasskeyCloneWarning = "passkey.clone_warning"
)

// Passkey errors.
var (
	// ErrPasskeyInvalid is a response that failed verification: a wrong
	// origin or relying party, a bad signature, an unknown credential, a
	// challenge of another user or ceremony.
	ErrPasskeyInvalid = errors.New("the passkey response is invalid")
	// ErrPasskeyChallenge is a ceremony that is unknown, expired or
	// already finished (a replayed response).
	ErrPasskeyChallenge = errors.New("the passkey request expired or was already used")
	ErrPasskeyNotFound  = errors.New("passkey not found")
	// ErrPasskeyCloned refuses a passkey whose signature counter went
	// backwards: two copies of its private key may exist.
	ErrPasskeyCloned = errors.New("the passkey may have been cloned")
	ErrPasskeyExists = errors.New("this passkey is already registered")
	ErrPasskeyLimit  = errors.New("too many passkeys")
	// ErrPasskeysDisabled: no relying party could be configured (a base
	// URL on an IP address, without an explicit RP ID).
	ErrPasskeysDisabled = errors.New("passkeys are not configured on this server")
)

// passkeyCeremony is the data of a PurposePasskey challenge.
type passkeyCeremony struct {
	Kind    string               `json:"kind"` // "register" or "login"
	Session webauthn.SessionData `json:"session"`
}

// PasskeyRelyingParty builds the WebAuthn relying party the service uses;
// package kavach calls it to validate its configuration.
func PasskeyRelyingParty(rpID, rpName string, origins []string) (*webauthn.WebAuthn, error) {
	if rpID == "" {
		return nil, ErrPasskeysDisabled
	}
	if err := protocol.ValidateRPID(rpID); err != nil {
		return nil, fmt.Errorf("RP ID %q: %w", rpID, err)
	}
	if len(origins) == 0 {
		return nil, errors.New("no passkey origins")
	}
	for _, o := range origins {
		if err := CheckPasskeyOrigin(rpID, o); err != nil {
			return nil, fmt.Errorf("passkey origin %q: %w", o, err)
		}
	}
	timeout := webauthn.TimeoutConfig{Timeout: passkeyChallengeTTL, TimeoutUVD: passkeyChallengeTTL}
	return webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpName,
		RPOrigins:     origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts:              webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
}

// CheckPasskeyOrigin accepts an http(s) origin whose host is the RP ID or
// under it (what browsers allow), over https unless on localhost. Package
// kavach picks the default origins with it.
func CheckPasskeyOrigin(rpID, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return errors.New("must be an origin: scheme://host[:port]")
	}
	host := strings.ToLower(u.Hostname())
	localhost := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if u.Scheme != "https" && !localhost {
		return errors.New("must be https (browsers allow http only on localhost)")
	}
	if net.ParseIP(host) != nil {
		return errors.New("browsers do not offer passkeys on IP addresses")
	}
	rp := strings.ToLower(rpID)
	if host != rp && !strings.HasSuffix(host, "."+rp) {
		return fmt.Errorf("the host must be %s or a subdomain of it", rpID)
	}
	return nil
}

// passkeyUser adapts a user and their passkeys to webauthn.User. The user
// handle is the user id: stable, not personal, at most 64 bytes.
type passkeyUser struct {
	user  storage.User
	rows  []storage.Passkey
	creds []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return []byte(u.user.ID) }
func (u *passkeyUser) WebAuthnName() string                       { return u.user.Email }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }
func (u *passkeyUser) WebAuthnDisplayName() string {
	if u.user.Name != "" {
		return u.user.Name
	}
	return u.user.Email
}

// row returns the stored passkey of a credential id.
func (u *passkeyUser) row(credentialID []byte) (storage.Passkey, webauthn.Credential, bool) {
	enc := base64.RawURLEncoding.EncodeToString(credentialID)
	for i, r := range u.rows {
		if r.CredentialID == enc {
			return r, u.creds[i], true
		}
	}
	return storage.Passkey{}, webauthn.Credential{}, false
}

func (s *Service) loadPasskeyUser(ctx context.Context, tx storage.Store, user storage.User) (*passkeyUser, error) {
	rows, err := tx.Passkeys().ListByUser(ctx, user.ID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	pu := &passkeyUser{user: user, rows: rows, creds: make([]webauthn.Credential, len(rows))}
	for i, r := range rows {
		if err := json.Unmarshal(r.Credential, &pu.creds[i]); err != nil {
			return nil, fmt.Errorf("decode passkey %s: %w", r.ID, err)
		}
	}
	return pu, nil
}

func (s *Service) relyingParty() (*webauthn.WebAuthn, error) {
	if s.webauthn == nil {
		return nil, ErrPasskeysDisabled
	}
	return s.webauthn, nil
}

// storeCeremony keeps the session data of a ceremony server side, found
// by the hash of its challenge.
func (s *Service) storeCeremony(ctx context.Context, kind, userID string, sd *webauthn.SessionData, now time.Time) error {
	// The row's expiry on the service clock is the one that counts.
	sd.Expires = time.Time{}
	data, err := json.Marshal(passkeyCeremony{Kind: kind, Session: *sd})
	if err != nil {
		return fmt.Errorf("encode passkey ceremony: %w", err)
	}
	c := storage.Challenge{
		ID: id.New("chl"), Purpose: storage.PurposePasskey, Lookup: id.Hash(sd.Challenge), UserID: userID,
		Data: data, ExpiresAt: now.Add(passkeyChallengeTTL), CreatedAt: now,
	}
	if err := s.store.Challenges().Put(ctx, &c); err != nil {
		return fmt.Errorf("store passkey ceremony: %w", err)
	}
	return nil
}

// BeginPasskeyRegistration returns the options for
// navigator.credentials.create for the signed-in user. Adding a way to
// sign in needs re-authentication (password, or a sign-in in the last
// ReauthWindow), so a stolen old session cannot give itself a lasting way
// back in.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, view SessionView, password string) (*protocol.CredentialCreation, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	if err := s.Reauthenticate(ctx, view, password); err != nil {
		return nil, err
	}
	pu, err := s.loadPasskeyUser(ctx, s.store, view.User)
	if err != nil {
		return nil, err
	}
	if len(pu.rows) >= maxPasskeysPerUser {
		return nil, ErrPasskeyLimit
	}
	exclude := make([]protocol.CredentialDescriptor, len(pu.creds))
	for i := range pu.creds {
		exclude[i] = pu.creds[i].Descriptor()
	}
	// credProps asks the browser whether the credential is discoverable;
	// some return it unasked, which would otherwise fail the ceremony.
	opts, sd, err := rp.BeginRegistration(pu, webauthn.WithExclusions(exclude), webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return nil, fmt.Errorf("begin passkey registration: %w", err)
	}
	if err := s.storeCeremony(ctx, "register", view.User.ID, sd, s.now()); err != nil {
		return nil, err
	}
	return opts, nil
}

// PasskeyInfo describes a registered passkey (never its key).
type PasskeyInfo struct {
	ID           string
	Name         string
	CreatedAt    time.Time
	LastUsedAt   *time.Time
	BackedUp     bool
	Transports   []string
	CloneWarning bool
}

func passkeyInfo(p storage.Passkey) PasskeyInfo {
	info := PasskeyInfo{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt, CloneWarning: p.CloneWarning, Transports: []string{}}
	var c webauthn.Credential
	if json.Unmarshal(p.Credential, &c) == nil {
		info.BackedUp = c.Flags.BackupState
		for _, t := range c.Transport {
			info.Transports = append(info.Transports, string(t))
		}
	}
	return info
}

// ceremony finds the challenge a response was made for, by the challenge
// inside its client data.
func (s *Service) ceremony(ctx context.Context, challenge, kind string, now time.Time) (*storage.Challenge, passkeyCeremony, error) {
	var pc passkeyCeremony
	if challenge == "" || len(challenge) > 256 {
		return nil, pc, ErrPasskeyChallenge
	}
	c, err := s.store.Challenges().Get(ctx, storage.PurposePasskey, id.Hash(challenge), now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, pc, ErrPasskeyChallenge
	}
	if err != nil {
		return nil, pc, fmt.Errorf("load passkey ceremony: %w", err)
	}
	if err := json.Unmarshal(c.Data, &pc); err != nil {
		return nil, pc, fmt.Errorf("decode passkey ceremony: %w", err)
	}
	if pc.Kind != kind {
		return nil, pc, ErrPasskeyInvalid
	}
	return c, pc, nil
}

// consumeCeremony makes a ceremony single-use: of two responses to one
// challenge, one goes on.
func consumeCeremony(ctx context.Context, tx storage.Store, c *storage.Challenge, now time.Time) error {
	if _, err := tx.Challenges().Consume(ctx, storage.PurposePasskey, c.Lookup, now); errors.Is(err, storage.ErrNotFound) {
		return ErrPasskeyChallenge
	} else if err != nil {
		return fmt.Errorf("consume passkey ceremony: %w", err)
	}
	return nil
}

// FinishPasskeyRegistration verifies the browser's response to the
// signed-in user's registration options and stores the passkey.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, view SessionView, response []byte, name string, client ClientInfo) (PasskeyInfo, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return PasskeyInfo{}, err
	}
	name, err = checkPasskeyName(name)
	if err != nil {
		return PasskeyInfo{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		s.passkeyRefused("registration", view.User.ID, err)
		return PasskeyInfo{}, ErrPasskeyInvalid
	}
	now := s.now()
	c, pc, err := s.ceremony(ctx, parsed.Response.CollectedClientData.Challenge, "register", now)
	if err != nil {
		return PasskeyInfo{}, err
	}
	if c.UserID != view.User.ID {
		// Another user's ceremony: theirs stays usable.
		s.passkeyRefused("registration", view.User.ID, errors.New("the challenge belongs to another user"))
		return PasskeyInfo{}, ErrPasskeyInvalid
	}
	// Single use: whatever the outcome, this ceremony is over.
	if err := consumeCeremony(ctx, s.store, c, now); err != nil {
		return PasskeyInfo{}, err
	}
	var info PasskeyInfo
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		pu, err := s.loadPasskeyUser(ctx, tx, view.User)
		if err != nil {
			return err
		}
		if len(pu.rows) >= maxPasskeysPerUser {
			return ErrPasskeyLimit
		}
		cred, err := rp.CreateCredential(pu, pc.Session, parsed)
		if err != nil {
			s.passkeyRefused("registration", view.User.ID, err)
			return ErrPasskeyInvalid
		}
		blob, err := json.Marshal(cred)
		if err != nil {
			return fmt.Errorf("encode passkey: %w", err)
		}
		if name == "" {
			name = fmt.Sprintf("Passkey %d", len(pu.rows)+1)
		}
		p := storage.Passkey{
			ID: id.New(passkeyIDPrefix), UserID: view.User.ID, CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID),
			Name: name, Credential: blob, SignCount: cred.Authenticator.SignCount, CreatedAt: now,
		}
		if err := tx.Passkeys().Create(ctx, &p); errors.Is(err, storage.ErrAlreadyExists) {
			return ErrPasskeyExists
		} else if err != nil {
			return fmt.Errorf("store passkey: %w", err)
		}
		info = passkeyInfo(p)
		return emit(ctx, tx, EventPasskeyRegistered, view.User.ID, map[string]any{
			"userId": view.User.ID, "passkeyId": p.ID, "name": p.Name, "ip": client.IP,
		}, now)
	})
	return info, err
}

func checkPasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > maxPasskeyName {
		return "", &InputError{Field: "name", Message: fmt.Sprintf("name must be at most %d characters", maxPasskeyName)}
	}
	if !validText(name) {
		return "", &InputError{Field: "name", Message: "name must be text without control characters"}
	}
	return name, nil
}

// passkeyRefused logs why a ceremony failed; the client hears only
// PASSKEY_INVALID. The library's messages name the failed check, never
// key material.
func (s *Service) passkeyRefused(ceremony, userID string, err error) {
	s.cfg.Logger.Info("passkey "+ceremony+" refused", "user", userID, "reason", err.Error())
}

// BeginPasskeyLogin returns the options for navigator.credentials.get.
// With an email, the options list that account's passkeys; for an
// address without an account or without passkeys they list a stand-in
// credential derived from the address, so that the answer has the same
// shape and stays the same: it does not tell whether the account exists.
// Without an email the options let the browser offer any passkey it has
// for this site (discoverable credentials).
func (s *Service) BeginPasskeyLogin(ctx context.Context, email string) (*protocol.CredentialAssertion, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	uv := webauthn.WithUserVerification(protocol.VerificationPreferred)
	now := s.now()
	if strings.TrimSpace(email) == "" {
		opts, sd, err := rp.BeginDiscoverableLogin(uv)
		if err != nil {
			return nil, fmt.Errorf("begin passkey login: %w", err)
		}
		return opts, s.storeCeremony(ctx, "login", "", sd, now)
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return nil, &InputError{Field: "email", Message: "email is not a valid address"}
	}
	var pu *passkeyUser
	user, err := s.store.Users().GetByEmail(ctx, addr)
	switch {
	case err == nil:
		if pu, err = s.loadPasskeyUser(ctx, s.store, *user); err != nil {
			return nil, err
		}
	case !errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("load user: %w", err)
	}
	ownerID := ""
	if pu != nil && len(pu.creds) > 0 {
		ownerID = pu.user.ID
	} else {
		pu = s.standInPasskeyUser(addr)
	}
	opts, sd, err := rp.BeginLogin(pu, uv)
	if err != nil {
		return nil, fmt.Errorf("begin passkey login: %w", err)
	}
	return opts, s.storeCeremony(ctx, "login", ownerID, sd, now)
}

// standInPasskeyUser has one credential id that no authenticator holds,
// the same for an address every time.
func (s *Service) standInPasskeyUser(email string) *passkeyUser {
	m := hmac.New(sha256.New, s.cfg.CodeKey)
	m.Write([]byte("passkey-stand-in\x00" + email))
	sum := m.Sum(nil)
	return &passkeyUser{
		user: storage.User{ID: "usr_" + base64.RawURLEncoding.EncodeToString(sum[:12]), Email: email},
		// With the transports of the usual synced passkey.
		creds: []webauthn.Credential{{ID: sum, Transport: []protocol.AuthenticatorTransport{protocol.Hybrid, protocol.Internal}}},
	}
}

// PasskeySignInInput is the browser's assertion.
type PasskeySignInInput struct {
	Response      []byte
	RememberMe    bool
	Client        ClientInfo
	TrustedDevice string
}

// SignInWithPasskey verifies an assertion and signs its owner in through
// finishSignIn. The assertion counts as multi-factor only when the
// authenticator verified the user (the UV flag). A passkey whose signature
// counter did not advance is refused and marked.
func (s *Service) SignInWithPasskey(ctx context.Context, in PasskeySignInInput) (AuthResult, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return AuthResult{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(in.Response)
	if err != nil {
		s.passkeyRefused("sign-in", "", err)
		return AuthResult{}, ErrPasskeyInvalid
	}
	now := s.now()
	c, pc, err := s.ceremony(ctx, parsed.Response.CollectedClientData.Challenge, "login", now)
	if err != nil {
		return AuthResult{}, err
	}
	// Single use before anything else: a replayed assertion, or two sent
	// at once, finds the ceremony gone.
	if err := consumeCeremony(ctx, s.store, c, now); err != nil {
		return AuthResult{}, err
	}
	if len(pc.Session.UserID) > 0 && c.UserID == "" {
		// Options for an address without passkeys: nothing can match.
		s.passkeyRefused("sign-in", "", errors.New("no passkeys for the address"))
		return AuthResult{}, ErrPasskeyInvalid
	}
	var pu *passkeyUser
	lookup := func(userID string) (*passkeyUser, error) {
		u, err := s.store.Users().Get(ctx, userID)
		if err != nil {
			return nil, err
		}
		return s.loadPasskeyUser(ctx, s.store, *u)
	}
	var cred *webauthn.Credential
	if c.UserID != "" {
		if pu, err = lookup(c.UserID); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return AuthResult{}, ErrPasskeyInvalid
			}
			return AuthResult{}, err
		}
		cred, err = rp.ValidateLogin(pu, pc.Session, parsed)
	} else {
		var loadErr error
		_, cred, err = rp.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if len(userHandle) == 0 || len(userHandle) > 64 || !utf8.Valid(userHandle) {
				return nil, errors.New("bad user handle")
			}
			pu, loadErr = lookup(string(userHandle))
			if loadErr != nil {
				return nil, loadErr
			}
			return pu, nil
		}, pc.Session, parsed)
		if loadErr != nil && !errors.Is(loadErr, storage.ErrNotFound) {
			return AuthResult{}, loadErr
		}
	}
	if err != nil {
		uid := ""
		if pu != nil {
			uid = pu.user.ID
		}
		s.passkeyRefused("sign-in", uid, err)
		return AuthResult{}, ErrPasskeyInvalid
	}
	row, before, ok := pu.row(cred.ID)
	if !ok {
		return AuthResult{}, ErrPasskeyInvalid
	}
	blob, err := json.Marshal(cred)
	if err != nil {
		return AuthResult{}, fmt.Errorf("encode passkey: %w", err)
	}
	if cred.Authenticator.CloneWarning {
		return AuthResult{}, s.refuseClonedPasskey(ctx, pu.user, row, &before, blob, in.Client, now)
	}
	uv := parsed.Response.AuthenticatorData.Flags.HasUserVerified()
	var res AuthResult
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		// The user's row first, as everywhere (see finishSignIn), so a
		// takeover deleting this passkey cannot wait on us while we wait
		// on it.
		if err := tx.Users().Lock(ctx, pu.user.ID); errors.Is(err, storage.ErrNotFound) {
			return ErrPasskeyInvalid
		} else if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if err := tx.Passkeys().RecordUse(ctx, row.ID, cred.Authenticator.SignCount, false, blob, now); errors.Is(err, storage.ErrNotFound) {
			return ErrPasskeyInvalid // deleted meanwhile
		} else if err != nil {
			return fmt.Errorf("record passkey use: %w", err)
		}
		res, err = s.finishSignIn(ctx, tx, FirstFactor{
			User: pu.user, Method: MethodPasskey, RememberMe: in.RememberMe, Client: in.Client,
			TrustedDevice: in.TrustedDevice, MultiFactor: uv,
			Extra: map[string]any{"passkeyId": row.ID, "userVerified": uv},
		}, now)
		return err
	})
	if err != nil {
		var locked *LockedError
		if errors.As(err, &locked) {
			s.auditSignInFailure(ctx, pu.user.Email, pu.user.ID, "ACCOUNT_LOCKED", in.Client, MethodPasskey, now)
		}
		s.auditRefusal(ctx, err, MethodPasskey, in.Client)
		return AuthResult{}, err
	}
	return res, nil
}

// refuseClonedPasskey marks the passkey, records the event and refuses
// the sign-in. A marked passkey stays refused: its owner deletes it and
// registers the authenticator again.
func (s *Service) refuseClonedPasskey(ctx context.Context, user storage.User, row storage.Passkey, before *webauthn.Credential, blob []byte, client ClientInfo, now time.Time) error {
	if !row.CloneWarning {
		s.cfg.Logger.Warn("passkey signature counter did not advance: possibly cloned; sign-in refused",
			"user", user.ID, "passkey", row.ID, "stored", before.Authenticator.SignCount)
		err := s.store.InTx(ctx, func(tx storage.Store) error {
			if err := tx.Passkeys().RecordUse(ctx, row.ID, row.SignCount, true, blob, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("mark passkey: %w", err)
			}
			return emit(ctx, tx, EventPasskeyCloneWarning, user.ID, map[string]any{
				"userId": user.ID, "passkeyId": row.ID, "ip": client.IP,
			}, now)
		})
		if err != nil {
			return err
		}
	}
	s.auditSignInFailure(ctx, user.Email, user.ID, "PASSKEY_CLONED", client, MethodPasskey, now)
	return ErrPasskeyCloned
}

// ListPasskeys returns the user's passkeys, oldest first.
func (s *Service) ListPasskeys(ctx context.Context, userID string) ([]PasskeyInfo, error) {
	rows, err := s.store.Passkeys().ListByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	out := make([]PasskeyInfo, len(rows))
	for i, r := range rows {
		out[i] = passkeyInfo(r)
	}
	return out, nil
}

// RenamePasskey names one of the user's passkeys.
func (s *Service) RenamePasskey(ctx context.Context, userID, passkeyID, name string) (PasskeyInfo, error) {
	name, err := checkPasskeyName(name)
	if err != nil {
		return PasskeyInfo{}, err
	}
	if name == "" {
		return PasskeyInfo{}, &InputError{Field: "name", Message: "name is required"}
	}
	if !validID(passkeyID, passkeyIDPrefix) {
		return PasskeyInfo{}, ErrPasskeyNotFound
	}
	if err := s.store.Passkeys().Rename(ctx, userID, passkeyID, name); errors.Is(err, storage.ErrNotFound) {
		return PasskeyInfo{}, ErrPasskeyNotFound
	} else if err != nil {
		return PasskeyInfo{}, fmt.Errorf("rename passkey: %w", err)
	}
	p, err := s.store.Passkeys().Get(ctx, passkeyID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && p.UserID != userID) {
		return PasskeyInfo{}, ErrPasskeyNotFound
	}
	if err != nil {
		return PasskeyInfo{}, fmt.Errorf("load passkey: %w", err)
	}
	return passkeyInfo(*p), nil
}

// DeletePasskey removes one of the user's passkeys.
func (s *Service) DeletePasskey(ctx context.Context, userID, passkeyID string, client ClientInfo) error {
	if !validID(passkeyID, passkeyIDPrefix) {
		return ErrPasskeyNotFound
	}
	now := s.now()
	return s.store.InTx(ctx, func(tx storage.Store) error {
		// As UnlinkAccount: one removal of a way in at a time per user.
		if err := tx.Users().Lock(ctx, userID); errors.Is(err, storage.ErrNotFound) {
			return ErrPasskeyNotFound
		} else if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if n, err := s.waysIn(ctx, tx, userID, "", passkeyID); err != nil {
			return err
		} else if n == 0 {
			if p, err := tx.Passkeys().Get(ctx, passkeyID); err != nil || p.UserID != userID {
				return ErrPasskeyNotFound
			}
			return ErrLastAccount
		}
		if err := tx.Passkeys().Delete(ctx, userID, passkeyID); errors.Is(err, storage.ErrNotFound) {
			return ErrPasskeyNotFound
		} else if err != nil {
			return fmt.Errorf("delete passkey: %w", err)
		}
		return emit(ctx, tx, EventPasskeyDeleted, userID, map[string]any{"userId": userID, "passkeyId": passkeyID, "ip": client.IP}, now)
	})
}
