package users

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/kavachos/kavach/internal/mail"
	"github.com/kavachos/kavach/internal/ratelimit"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users/social"
)

// Config holds the knobs of the users service. The root package fills it
// from kavach.Config; zero values take the defaults below.
type Config struct {
	// BaseURL is the public URL of the server; emailed links point here.
	BaseURL string
	// ResetPasswordURL is the app page a reset link opens; the token is
	// added as ?token=. Default: BaseURL + "/reset-password".
	ResetPasswordURL string

	SessionTTL           time.Duration // persistent sessions; default 7 days
	BrowserSessionTTL    time.Duration // rememberMe=false; default 1 day
	SessionUpdateAge     time.Duration // slide expiry at most this often; default 1 day
	SessionCacheTTL      time.Duration // how long a node trusts a cached session; default 30 s
	SessionCacheSize     int           // entries; default 100,000
	VerificationTTL      time.Duration // email verification links; default 24 h
	PasswordResetTTL     time.Duration // reset links; default 1 h
	LockoutThreshold     int           // consecutive failures that lock; default 10
	LockoutDuration      time.Duration // default 15 min
	RequireVerifiedEmail bool          // refuse password sign-in until verified
	MaxOrgMembers        int           // members of one organization; default 100
	MaxOrgsPerUser       int           // organizations one user belongs to (not exact under races); default 100

	// TwoFactorIssuer names the service in authenticator apps; default
	// the BaseURL's host.
	TwoFactorIssuer string
	// TwoFactorPendingTTL is how long a passed first factor waits for the
	// second; default 10 min.
	TwoFactorPendingTTL time.Duration
	// TrustedDeviceTTL is how long "trust this device" skips the second
	// factor; default 30 days.
	TrustedDeviceTTL time.Duration
	// TwoFactorAfterPasskey asks users with two-factor authentication for
	// a code even after a passkey that verified them; by default such a
	// passkey counts as both factors.
	TwoFactorAfterPasskey bool
	// Social holds the social sign-in providers (nil: none).
	Social *social.Registry
	// SuspendAgents suspends the user's agents, in tx, with reason
	// ("owner_banned", "account_reclaimed"); package kavach points it at
	// the agents service. after, if not nil, runs once tx has committed.
	SuspendAgents func(ctx context.Context, tx storage.Store, userID, reason string) (after func(), err error)
	// ReauthWindow is how recent a session must be to change two-factor
	// settings without a password (users who have none); default 10 min.
	ReauthWindow time.Duration
	// MagicLinkTTL is how long a magic link works; default 10 min.
	MagicLinkTTL time.Duration
	// OneTimeCodeTTL is how long an emailed or texted code works; default
	// 5 min.
	OneTimeCodeTTL time.Duration
	// SMS sends phone sign-in codes; without it the phone routes answer
	// ErrPhoneNotEnabled.
	SMS SMSSender
	// SMSPerHour caps the texts this service sends per hour (a brake on
	// SMS pumping); default 1000.
	SMSPerHour int
	// PasskeyRPID, PasskeyRPName and PasskeyOrigins describe the WebAuthn
	// relying party (see PasskeyRelyingParty); without an RP ID passkeys
	// are off.
	PasskeyRPID    string
	PasskeyRPName  string
	PasskeyOrigins []string

	Policy PasswordPolicy
	// Sealer encrypts secrets at rest (TOTP secrets, provider tokens).
	Sealer Sealer
	// CodeKey keys the hashes of short codes (one-time codes, backup
	// codes). Derived from the server secret by package kavach.
	CodeKey []byte
	Hasher  *PasswordHasher
	Mailer  mail.Mailer
	Logger  *slog.Logger
	// AuditKey keys the HMAC that names an address in failed sign-in
	// audit records (the log keeps records long, and a plain hash of an
	// address is reversed with a list of addresses). Derived from the
	// server secret by package kavach; without it, records name the
	// lockout counter's hash.
	AuditKey []byte
	Now      func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SessionTTL, 7*24*time.Hour)
	def(&c.BrowserSessionTTL, 24*time.Hour)
	def(&c.SessionUpdateAge, 24*time.Hour)
	if c.SessionCacheTTL == 0 {
		c.SessionCacheTTL = 30 * time.Second
	}
	def(&c.VerificationTTL, 24*time.Hour)
	def(&c.PasswordResetTTL, time.Hour)
	def(&c.LockoutDuration, 15*time.Minute)
	def(&c.TwoFactorPendingTTL, 10*time.Minute)
	def(&c.TrustedDeviceTTL, 30*24*time.Hour)
	def(&c.ReauthWindow, 10*time.Minute)
	def(&c.MagicLinkTTL, 10*time.Minute)
	def(&c.OneTimeCodeTTL, 5*time.Minute)
	if c.TwoFactorIssuer == "" {
		c.TwoFactorIssuer = "Kavach"
		if u, err := url.Parse(c.BaseURL); err == nil && u.Hostname() != "" {
			c.TwoFactorIssuer = u.Hostname()
		}
	}
	if c.PasskeyRPName == "" {
		c.PasskeyRPName = "Kavach"
	}
	if c.SessionCacheSize <= 0 {
		c.SessionCacheSize = 100_000
	}
	if c.SMSPerHour <= 0 {
		c.SMSPerHour = 1000
	}
	if c.MaxOrgMembers <= 0 {
		c.MaxOrgMembers = 100
	}
	if c.MaxOrgsPerUser <= 0 {
		c.MaxOrgsPerUser = 100
	}
	if c.LockoutThreshold <= 0 {
		c.LockoutThreshold = 10
	}
	if c.ResetPasswordURL == "" {
		c.ResetPasswordURL = c.BaseURL + "/reset-password"
	}
	if c.Hasher == nil {
		c.Hasher = NewPasswordHasher(0, 0, nil)
	}
	if len(c.CodeKey) == 0 {
		// Codes then survive only this process; package kavach always
		// derives a key from the server secret.
		c.CodeKey = make([]byte, 32)
		_, _ = rand.Read(c.CodeKey)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Sealer encrypts and authenticates secrets at rest; additionalData binds
// a sealed value to its owner, so it cannot be moved to another row.
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Service implements human identity over a storage.Store.
type Service struct {
	cfg   Config
	store storage.Store
	cache *sessionCache
	mails mailQueue
	texts smsQueue
	// textBudget counts the texts of the current hour (SMSPerHour).
	textBudget *ratelimit.Limiter
	// webauthn is the passkey relying party; nil when passkeys are off.
	webauthn *webauthn.WebAuthn
}

// NewService builds the service. Call Close to wait for queued mail.
func NewService(store storage.Store, cfg Config) *Service {
	cfg.setDefaults()
	s := &Service{
		cfg:   cfg,
		store: store,
		cache: newSessionCache(cfg.SessionCacheTTL, cfg.SessionCacheSize),

		textBudget: ratelimit.New(cfg.SMSPerHour, time.Hour),
	}
	s.mails.start(cfg.Mailer, cfg.Mailer != nil, "email", cfg.Logger)
	s.texts.start(cfg.SMS, cfg.SMS != nil, "text message", cfg.Logger)
	if cfg.PasskeyRPID != "" {
		rp, err := PasskeyRelyingParty(cfg.PasskeyRPID, cfg.PasskeyRPName, cfg.PasskeyOrigins)
		if err != nil {
			cfg.Logger.Error("passkeys are off: invalid relying party", "err", err)
		}
		s.webauthn = rp
	}
	return s
}

// Close waits for emails and text messages that are still queued or being
// sent, at most MailDrainTimeout.
func (s *Service) Close() {
	var wg sync.WaitGroup
	wg.Go(func() { s.texts.close(MailDrainTimeout) })
	s.mails.close(MailDrainTimeout)
	wg.Wait()
}

// now is the service clock, at the millisecond precision both stores keep,
// so what an API call returns equals what a later read returns.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// Event types written by this package.
const (
	EventUserCreated     = "user.created"
	EventUserUpdated     = "user.updated"
	EventUserDeleted     = "user.deleted"
	EventSessionCreated  = "session.created"
	EventSessionRevoked  = "session.revoked"
	EventPasswordChanged = "password.changed"
	EventPasswordReset   = "password.reset"
	EventEmailVerified   = "email.verified"
	EventSignInFailed    = "auth.sign_in_failed"
	EventAccountLocked   = "auth.account_locked"

	EventTwoFactorEnabled  = "two_factor.enabled"
	EventTwoFactorDisabled = "two_factor.disabled"
	EventBackupCodesReset  = "two_factor.backup_codes_generated"
)
