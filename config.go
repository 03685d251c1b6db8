package kavach

import (
	"context"
	"errors"
	"fmt"
	"github.com/kavachos/kavach/agents"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/kavachos/kavach/internal/clientip"
	"github.com/kavachos/kavach/internal/sms"
	"github.com/kavachos/kavach/internal/webhook"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
	"github.com/kavachos/kavach/users/social"
)

// Environments.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Config is everything Kavach can be told. Zero values mean "use the
// default"; Defaults fills them in one place and Validate checks the
// result. docs/configuration.md lists every field with its environment
// variable.
type Config struct {
	// Env is "development" (default) or "production". Production refuses
	// to start without an explicit Secret and BaseURL.
	Env string
	// BaseURL is the public URL of this server (scheme, host, optional
	// port). Links in emails and cookie security derive from it.
	BaseURL string
	// DatabaseURL selects the store: "postgres://…" / "postgresql://…" for
	// PostgreSQL, "sqlite:PATH" or a plain file path for SQLite.
	DatabaseURL string
	// Secret is the server secret (at least 32 bytes). The keys that seal
	// data at rest (today the token signing keys) and the HMAC keys of
	// authorization codes and refresh tokens derive from it: changing it
	// invalidates them.
	Secret string
	// TrustedOrigins may make cookie-authenticated state-changing requests
	// and may be redirect targets. The BaseURL's origin is always trusted.
	TrustedOrigins []string
	// TrustedProxies (CIDRs or IPs) may set X-Forwarded-For.
	TrustedProxies []string
	// AdminEmails are server admins (once their address is verified): they
	// may manage OAuth clients through the admin API.
	AdminEmails []string
	// SkipMigrations turns off applying migrations in New.
	SkipMigrations bool
	// WebhookURL receives every outbox event as a signed POST (Standard
	// Webhooks: webhook-id, webhook-timestamp, webhook-signature), at
	// least once and in order, after OnEvent. https, or http in
	// development. WebhookSecret signs them: "whsec_<base64>" or at least
	// 24 bytes.
	WebhookURL    string
	WebhookSecret string
	// BudgetTimeZone is the IANA time zone (e.g. "America/Los_Angeles")
	// in which the days and months of agent budgets begin; default "UTC".
	// Changing it moves the current period's boundaries.
	BudgetTimeZone string

	Password PasswordConfig
	Session  SessionConfig
	Email    EmailConfig
	Limits   LimitsConfig
	OAuth    OAuthConfig
	Agents   AgentsConfig
	Audit    AuditConfig
	SignIn   SignInConfig

	// VerifyLegacyHash checks a password against a hash Kavach does not know
	// (imported from another system). On success the password is rehashed
	// with PBKDF2 and the legacy hash is gone. bcrypt ($2a$/$2b$/$2y$),
	// Django pbkdf2_sha256 and KavachOS pbkdf2 hashes are built in.
	VerifyLegacyHash func(ctx context.Context, storedHash, password string) (bool, error)
	// OnEvent receives every outbox event (user.created, session.created,
	// …) at least once, in order, after the change committed. An error
	// makes the event retry.
	OnEvent func(ctx context.Context, e storage.Event) error
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock (tests); defaults to time.Now.
	Now func() time.Time
}

// PasswordConfig controls hashing and the password policy.
type PasswordConfig struct {
	MinLength     int // default 8
	MaxLength     int // default 128
	Iterations    int // PBKDF2-SHA256 iterations; default 600,000
	MaxConcurrent int // hashes computed at once; default GOMAXPROCS
}

// AgentsConfig controls agent principals.
type AgentsConfig struct {
	// MaxDelegationDepth bounds delegation chains: an agent a user created
	// is depth 0, its sub-agents 1, and so on. Default 3, at most 10.
	MaxDelegationDepth int
}

// AuditConfig controls the audit log.
type AuditConfig struct {
	// Retention deletes records older than this (checked every 10
	// minutes); 0 keeps them forever. The chain stays verifiable: its
	// anchor moves to the last record deleted. At least 24 h when set.
	Retention time.Duration
}

// SignInConfig controls the sign-in methods beyond the password
// (docs/sign-in-methods.md).
type SignInConfig struct {
	// TwoFactorURL is your app's page for the second factor: browser
	// flows (social sign-in, magic links) redirect there when one is
	// needed, with callbackURL added. Default BaseURL + "/two-factor".
	TwoFactorURL string
	// TrustedDeviceTTL is how long "trust this device" skips the second
	// factor in that browser; default 30 days.
	TrustedDeviceTTL time.Duration
	// TwoFactorAfterPasskey asks for the second factor even after a
	// passkey that verified the user (PIN or biometrics); by default such
	// a passkey counts as both factors.
	TwoFactorAfterPasskey bool

	// MagicLinkTTL is how long a magic link works; default 10 min.
	MagicLinkTTL time.Duration
	// OneTimeCodeTTL is how long an emailed or texted sign-in code works;
	// default 5 min.
	OneTimeCodeTTL time.Duration
	// SMSWebhookURL receives phone sign-in codes as signed JSON posts
	// ({"to","text"}) to relay to an SMS provider; SMSWebhookSecret signs
	// them (whsec_<base64> or at least 24 bytes). Without a URL,
	// development writes texts to SMSDevDir; production without either
	// answers the phone routes with 404 PHONE_NOT_ENABLED.
	SMSWebhookURL    string
	SMSWebhookSecret string
	SMSDevDir        string // default "./kavach-sms" in development
	// SMSPerHour caps the text messages this node sends per hour, all
	// numbers together: a brake on SMS pumping (bots requesting codes to
	// numbers whose carriers pay the sender). Default 1000.
	SMSPerHour int
	// PasskeyRPID is the WebAuthn relying party id: the domain passkeys
	// are bound to (it cannot change later without losing them). Default
	// the BaseURL's host; "localhost" in development for a loopback IP.
	// Passkeys are off when the BaseURL is on an IP address and no RP ID
	// is given: browsers offer no passkeys there.
	PasskeyRPID string
	// PasskeyRPName is shown by the browser and authenticator; default
	// "Kavach".
	PasskeyRPName string
	// PasskeyOrigins may run passkey ceremonies: each is the RP ID or a
	// subdomain of it, over https (http only on localhost). Default the
	// BaseURL's origin and the trusted origins that qualify.
	PasskeyOrigins []string
	// Providers are the social sign-in providers (docs/sign-in-methods.md,
	// "Social sign-in"): built-ins by id (github, google, microsoft,
	// apple, gitlab, discord) and generic OIDC providers by issuer.
	Providers []SocialProvider
}

// SocialProvider configures one social sign-in provider.
type SocialProvider = social.Config

// SessionConfig controls human sessions.
type SessionConfig struct {
	TTL        time.Duration // default 7 days
	BrowserTTL time.Duration // rememberMe=false; default 1 day
	UpdateAge  time.Duration // slide expiry at most this often; default 1 day
	CacheTTL   time.Duration // in-memory session cache; default 30 s; negative disables
}

// EmailConfig controls mail and emailed links.
type EmailConfig struct {
	// SMTPHost enables SMTP delivery. Without it, development writes mail
	// to DevDir and logs it; production refuses to start without SMTP
	// unless DevDir is set explicitly.
	SMTPHost     string
	SMTPPort     int // default 587
	SMTPUsername string
	SMTPPassword string
	SMTPTLS      string // "starttls" (default), "tls", "none" (localhost only)
	From         string // default "Kavach <no-reply@HOST>"
	DevDir       string // default "./kavach-mail" in development

	RequireVerification bool          // refuse password sign-in until the address is verified
	VerificationTTL     time.Duration // default 24 h
	ResetTTL            time.Duration // default 1 h
	// ResetPasswordURL is the app page a reset link opens (the token is
	// appended as ?token=). Default BaseURL + "/reset-password".
	ResetPasswordURL string
}

// LimitsConfig bounds abuse.
type LimitsConfig struct {
	MaxBodyBytes int64 // default 64 KiB
	// PerIP requests per Window per client IP on each credential endpoint
	// (sign-in, sign-up, password and verification mail); default 10/min.
	PerIP int
	// PerAccount attempts per Window per email on sign-in and mail
	// endpoints; default 5/min.
	PerAccount int
	Window     time.Duration // default 1 min
	// LockoutThreshold consecutive failed sign-ins lock the account for
	// LockoutDuration; defaults 10 and 15 min.
	LockoutThreshold int
	LockoutDuration  time.Duration
}

// Defaults returns c with every unset field filled in.
func (c Config) Defaults() Config {
	if c.Env == "" {
		c.Env = EnvDevelopment
	}
	if c.BaseURL == "" && c.Env != EnvProduction {
		c.BaseURL = "http://localhost:8080"
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:kavach.db"
	}
	if c.BudgetTimeZone == "" {
		c.BudgetTimeZone = "UTC"
	}
	setInt(&c.Password.MinLength, 8)
	setInt(&c.Password.MaxLength, 128)
	setInt(&c.Password.Iterations, 600_000)
	setDur(&c.Session.TTL, 7*24*time.Hour)
	setDur(&c.Session.BrowserTTL, 24*time.Hour)
	setDur(&c.Session.UpdateAge, 24*time.Hour)
	if c.Session.CacheTTL == 0 {
		c.Session.CacheTTL = 30 * time.Second
	}
	setInt(&c.Email.SMTPPort, 587)
	if c.Email.SMTPTLS == "" {
		c.Email.SMTPTLS = "starttls"
	}
	if c.Email.From == "" {
		host := "localhost"
		if u, err := url.Parse(c.BaseURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		c.Email.From = "Kavach <no-reply@" + host + ">"
	}
	if c.Email.DevDir == "" && c.Email.SMTPHost == "" && c.Env != EnvProduction {
		c.Email.DevDir = "kavach-mail"
	}
	setDur(&c.Email.VerificationTTL, 24*time.Hour)
	setDur(&c.Email.ResetTTL, time.Hour)
	if c.Email.ResetPasswordURL == "" && c.BaseURL != "" {
		c.Email.ResetPasswordURL = c.BaseURL + "/reset-password"
	}
	if c.Limits.MaxBodyBytes <= 0 {
		c.Limits.MaxBodyBytes = 64 << 10
	}
	setInt(&c.Limits.PerIP, 10)
	setInt(&c.Limits.PerAccount, 5)
	setDur(&c.Limits.Window, time.Minute)
	setInt(&c.Limits.LockoutThreshold, 10)
	setDur(&c.Limits.LockoutDuration, 15*time.Minute)
	if c.SignIn.TwoFactorURL == "" && c.BaseURL != "" {
		c.SignIn.TwoFactorURL = c.BaseURL + "/two-factor"
	}
	setDur(&c.SignIn.TrustedDeviceTTL, 30*24*time.Hour)
	setDur(&c.SignIn.MagicLinkTTL, 10*time.Minute)
	setDur(&c.SignIn.OneTimeCodeTTL, 5*time.Minute)
	setInt(&c.SignIn.SMSPerHour, 1000)
	if c.SignIn.SMSDevDir == "" && c.SignIn.SMSWebhookURL == "" && c.Env != EnvProduction {
		c.SignIn.SMSDevDir = "kavach-sms"
	}
	c.SignIn = c.SignIn.passkeyDefaults(c.BaseURL, c.TrustedOrigins, c.Env == EnvDevelopment)
	setDur(&c.OAuth.AccessTokenTTL, time.Hour)
	setDur(&c.OAuth.RefreshTokenTTL, 30*24*time.Hour)
	if c.OAuth.AccessTokenAlg == "" {
		c.OAuth.AccessTokenAlg = "ES256"
	}
	admins := make([]string, 0, len(c.AdminEmails))
	for _, e := range c.AdminEmails {
		admins = append(admins, strings.ToLower(strings.TrimSpace(e)))
	}
	c.AdminEmails = admins
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func setInt(p *int, v int) {
	if *p <= 0 {
		*p = v
	}
}

func setDur(p *time.Duration, v time.Duration) {
	if *p <= 0 {
		*p = v
	}
}

// MinSecretLength is the shortest accepted Secret, in bytes.
const MinSecretLength = 32

// Validate reports every problem with a defaulted Config at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Env != EnvDevelopment && c.Env != EnvProduction {
		bad("env must be %q or %q, not %q", EnvDevelopment, EnvProduction, c.Env)
	}
	if c.Secret == "" {
		bad("secret is required (KAVACH_SECRET; at least %d bytes, e.g. `openssl rand -base64 48`)", MinSecretLength)
	} else if len(c.Secret) < MinSecretLength {
		bad("secret must be at least %d bytes, got %d", MinSecretLength, len(c.Secret))
	}
	if c.BaseURL == "" {
		bad("base URL is required in production (KAVACH_BASE_URL)")
	} else if err := checkOrigin(c.BaseURL, true); err != nil {
		bad("base URL: %v", err)
	}
	for _, o := range c.TrustedOrigins {
		if err := checkOrigin(o, false); err != nil {
			bad("trusted origin %q: %v", o, err)
		}
	}
	if _, err := clientip.ParsePrefixes(c.TrustedProxies); err != nil {
		bad("trusted proxies: %v", err)
	}
	if c.Password.MinLength < 8 {
		bad("password minimum length must be at least 8")
	}
	if c.Password.MaxLength < c.Password.MinLength || c.Password.MaxLength > 1024 {
		bad("password maximum length must be between the minimum and 1024")
	}
	if c.Password.Iterations < 100_000 {
		// Tests may go lower through the library, never through config.
		if c.Env == EnvProduction {
			bad("password iterations must be at least 100000 in production")
		}
	}
	if c.Agents.MaxDelegationDepth < 0 || c.Agents.MaxDelegationDepth > agents.HardMaxDelegationDepth {
		bad("agents max delegation depth must be between 1 and %d (0 means the default, %d)", agents.HardMaxDelegationDepth, agents.DefaultMaxDelegationDepth)
	}
	if c.Audit.Retention < 0 || c.Audit.Retention > 0 && c.Audit.Retention < 24*time.Hour {
		bad("audit retention must be 0 (keep forever) or at least 24h")
	}
	if _, err := budgetZone(c.BudgetTimeZone); err != nil {
		bad("budget time zone: %v", err)
	}
	if c.WebhookURL != "" || c.WebhookSecret != "" {
		if c.WebhookURL == "" || c.WebhookSecret == "" {
			bad("webhook URL and webhook secret go together")
		} else if _, err := webhook.New(c.WebhookURL, c.WebhookSecret, c.Env == EnvDevelopment, nil); err != nil {
			bad("%v", err)
		}
	}
	if c.SignIn.SMSWebhookURL != "" || c.SignIn.SMSWebhookSecret != "" {
		if c.SignIn.SMSWebhookURL == "" || c.SignIn.SMSWebhookSecret == "" {
			bad("SMS webhook URL and SMS webhook secret go together")
		} else if _, err := sms.NewWebhook(c.SignIn.SMSWebhookURL, c.SignIn.SMSWebhookSecret, c.Env == EnvDevelopment, nil); err != nil {
			bad("%v", err)
		}
	}
	if c.SignIn.MagicLinkTTL > 24*time.Hour || c.SignIn.OneTimeCodeTTL > time.Hour {
		bad("magic links may live at most 24h and one-time codes at most 1h")
	}
	if err := social.Validate(c.SignIn.Providers, c.Env == EnvDevelopment); err != nil {
		bad("%v", err)
	}
	if c.Session.UpdateAge > c.Session.TTL {
		bad("session update age must not exceed the session TTL")
	}
	if c.OAuth.AccessTokenAlg != "ES256" && c.OAuth.AccessTokenAlg != "EdDSA" {
		bad("OAuth access token algorithm must be ES256 or EdDSA")
	}
	if c.OAuth.AllowInsecureClientMetadata && c.Env == EnvProduction {
		bad("insecure client metadata fetching is for development only")
	}
	for _, r := range c.OAuth.Resources {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || strings.Contains(r, "#") {
			bad("OAuth resource %q must be an absolute http(s) URI without fragment", r)
		}
	}
	for name, page := range map[string]string{"login page": c.OAuth.LoginPage, "consent page": c.OAuth.ConsentPage} {
		if page != "" && checkOrigin(page, true) != nil {
			bad("OAuth %s must be an absolute http(s) URL", name)
		}
	}
	switch c.Email.SMTPTLS {
	case "starttls", "tls", "none":
	default:
		bad("SMTP TLS mode must be starttls, tls or none")
	}
	if c.SignIn.PasskeyRPID != "" {
		if _, err := users.PasskeyRelyingParty(c.SignIn.PasskeyRPID, c.SignIn.PasskeyRPName, c.SignIn.PasskeyOrigins); err != nil {
			bad("passkeys: %v", err)
		}
	} else if len(c.SignIn.PasskeyOrigins) > 0 {
		bad("passkey origins need a passkey RP ID")
	}
	if c.Env == EnvProduction && c.Email.SMTPHost == "" && c.Email.DevDir == "" {
		bad("production needs SMTP (KAVACH_SMTP_HOST) to send verification and reset mail")
	}
	return errors.Join(errs...)
}

// budgetZone loads the budget time zone. "Local" is refused: periods
// would depend on the machine the server runs on.
func budgetZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`"Local" is not allowed; name an IANA zone such as "Europe/Berlin" or "UTC"`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name (e.g. \"America/Los_Angeles\")", name)
	}
	return loc, nil
}

// checkOrigin accepts scheme://host[:port] (a base URL may have a path).
func checkOrigin(raw string, allowPath bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must be scheme://host[:port] without credentials, query or fragment")
	}
	if !allowPath && u.Path != "" && u.Path != "/" {
		return fmt.Errorf("an origin has no path")
	}
	return nil
}

// origin returns the normalized origin of a URL: scheme://host[:port],
// lower-cased, without the scheme's default port — the form browsers send
// in the Origin header. It returns "" for anything that is not an absolute
// http(s) URL.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// loopbackAliases returns the same origin under the other loopback names,
// so that in development a browser on http://127.0.0.1:8080 is as trusted
// as one on http://localhost:8080.
func loopbackAliases(o string) []string {
	u, err := url.Parse(o)
	if err != nil {
		return nil
	}
	names := []string{"localhost", "127.0.0.1", "[::1]"}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	isLoopback := false
	for _, n := range names {
		isLoopback = isLoopback || n == host
	}
	if !isLoopback {
		return nil
	}
	var out []string
	for _, n := range names {
		if n != host {
			a := u.Scheme + "://" + n
			if u.Port() != "" {
				a += ":" + u.Port()
			}
			out = append(out, a)
		}
	}
	return out
}

// passkeyDefaults fills in the passkey relying party from the base URL.
func (s SignInConfig) passkeyDefaults(baseURL string, trusted []string, development bool) SignInConfig {
	if s.PasskeyRPName == "" {
		s.PasskeyRPName = "Kavach"
	}
	base, err := url.Parse(baseURL)
	if err != nil {
		return s
	}
	host := strings.ToLower(base.Hostname())
	if s.PasskeyRPID == "" && host != "" {
		if ip := net.ParseIP(host); ip == nil {
			s.PasskeyRPID = host
		} else if development && ip.IsLoopback() {
			s.PasskeyRPID = "localhost"
		}
	}
	if len(s.PasskeyOrigins) > 0 || s.PasskeyRPID == "" {
		return s
	}
	candidates := []string{origin(baseURL)}
	if development {
		candidates = append(candidates, loopbackAliases(origin(baseURL))...)
	}
	for _, o := range trusted {
		candidates = append(candidates, origin(o))
	}
	seen := map[string]bool{}
	for _, o := range candidates {
		if o == "" || seen[o] {
			continue
		}
		seen[o] = true
		if users.CheckPasskeyOrigin(s.PasskeyRPID, o) == nil {
			s.PasskeyOrigins = append(s.PasskeyOrigins, o)
		}
	}
	return s
}
