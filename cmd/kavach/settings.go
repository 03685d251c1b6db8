package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
)

// options is what the binary adds around kavach.Config.
type options struct {
	cfg             kavach.Config
	listen          string
	secretFile      string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
}

// setting is one configurable value: its flag, its environment variable
// and how it lands in options. The table below is the single source for
// flags, environment variables and docs/configuration.md.
type setting struct {
	flag, env, def, help string
	apply                func(o *options, v string) error
}

func str(p func(*options) *string) func(*options, string) error {
	return func(o *options, v string) error { *p(o) = v; return nil }
}

func list(p func(*options) *[]string) func(*options, string) error {
	return func(o *options, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*p(o) = out
		return nil
	}
}

func integer(p func(*options) *int) func(*options, string) error {
	return func(o *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p(o) = n
		return nil
	}
}

func duration(p func(*options) *time.Duration) func(*options, string) error {
	return func(o *options, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 90s, 15m, 168h): %q", v)
		}
		*p(o) = d
		return nil
	}
}

func boolean(p func(*options) *bool) func(*options, string) error {
	return func(o *options, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", v)
		}
		*p(o) = b
		return nil
	}
}

var settings = []setting{
	{"env", "KAVACH_ENV", "development", "development or production; production refuses to start without an explicit secret and base URL", str(func(o *options) *string { return &o.cfg.Env })},
	{"listen", "KAVACH_LISTEN", "127.0.0.1:8080 (development), :8080 (production)", "address to listen on", str(func(o *options) *string { return &o.listen })},
	{"base-url", "KAVACH_BASE_URL", "http://localhost:8080 (development)", "public URL of the server; https turns on Secure, __Host- cookies and HSTS", str(func(o *options) *string { return &o.cfg.BaseURL })},
	{"database-url", "KAVACH_DATABASE_URL", "sqlite:kavach.db", "postgres://… for PostgreSQL, sqlite:PATH for the embedded store", str(func(o *options) *string { return &o.cfg.DatabaseURL })},
	{"secret", "KAVACH_SECRET", "(generated into kavach.secret in development)", "server secret, at least 32 bytes; prefer the environment or a file to the flag, which other users can see in ps", str(func(o *options) *string { return &o.cfg.Secret })},
	{"secret-file", "KAVACH_SECRET_FILE", "kavach.secret (development)", "file holding the secret (e.g. a container secret)", str(func(o *options) *string { return &o.secretFile })},
	{"trusted-origins", "KAVACH_TRUSTED_ORIGINS", "", "comma-separated origins (https://app.example.com) allowed to make cookie requests and be redirect targets; the base URL's origin is always trusted", list(func(o *options) *[]string { return &o.cfg.TrustedOrigins })},
	{"trusted-proxies", "KAVACH_TRUSTED_PROXIES", "", "comma-separated CIDRs or IPs of reverse proxies whose X-Forwarded-For is believed", list(func(o *options) *[]string { return &o.cfg.TrustedProxies })},
	{"admin-emails", "KAVACH_ADMIN_EMAILS", "", "comma-separated emails of server admins (effective once verified): they may manage OAuth clients through the admin API", list(func(o *options) *[]string { return &o.cfg.AdminEmails })},
	{"log-level", "KAVACH_LOG_LEVEL", "info", "debug, info, warn or error", str(func(o *options) *string { return &o.logLevel })},
	{"log-format", "KAVACH_LOG_FORMAT", "text", "text or json", str(func(o *options) *string { return &o.logFormat })},
	{"shutdown-timeout", "KAVACH_SHUTDOWN_TIMEOUT", "30s", "how long SIGTERM waits for in-flight requests", duration(func(o *options) *time.Duration { return &o.shutdownTimeout })},
	{"budget-time-zone", "KAVACH_BUDGET_TIME_ZONE", "UTC", "IANA time zone (e.g. America/Los_Angeles) in which the days and months of agent budgets begin", str(func(o *options) *string { return &o.cfg.BudgetTimeZone })},
	{"password-min-length", "KAVACH_PASSWORD_MIN_LENGTH", "8", "shortest accepted password (code points, at least 8)", integer(func(o *options) *int { return &o.cfg.Password.MinLength })},
	{"password-max-length", "KAVACH_PASSWORD_MAX_LENGTH", "128", "longest accepted password (at most 1024)", integer(func(o *options) *int { return &o.cfg.Password.MaxLength })},
	{"password-iterations", "KAVACH_PASSWORD_ITERATIONS", "600000", "PBKDF2-SHA256 iterations for new hashes; weaker stored hashes are upgraded at sign-in", integer(func(o *options) *int { return &o.cfg.Password.Iterations })},
	{"password-max-concurrent", "KAVACH_PASSWORD_MAX_CONCURRENT", "GOMAXPROCS", "password hashes computed at once; the rest wait", integer(func(o *options) *int { return &o.cfg.Password.MaxConcurrent })},
	{"session-ttl", "KAVACH_SESSION_TTL", "168h", "lifetime of a remembered session, sliding", duration(func(o *options) *time.Duration { return &o.cfg.Session.TTL })},
	{"session-browser-ttl", "KAVACH_SESSION_BROWSER_TTL", "24h", "server-side lifetime of a rememberMe=false session", duration(func(o *options) *time.Duration { return &o.cfg.Session.BrowserTTL })},
	{"session-update-age", "KAVACH_SESSION_UPDATE_AGE", "24h", "a session's expiry slides at most this often", duration(func(o *options) *time.Duration { return &o.cfg.Session.UpdateAge })},
	{"session-cache-ttl", "KAVACH_SESSION_CACHE_TTL", "30s", "how long a node trusts its in-memory copy of a session; revocations on other nodes show within this time; negative turns the cache off", duration(func(o *options) *time.Duration { return &o.cfg.Session.CacheTTL })},
	{"smtp-host", "KAVACH_SMTP_HOST", "", "SMTP server; without it mail goes to the development mail folder", str(func(o *options) *string { return &o.cfg.Email.SMTPHost })},
	{"smtp-port", "KAVACH_SMTP_PORT", "587", "SMTP port", integer(func(o *options) *int { return &o.cfg.Email.SMTPPort })},
	{"smtp-username", "KAVACH_SMTP_USERNAME", "", "SMTP user (PLAIN auth over TLS)", str(func(o *options) *string { return &o.cfg.Email.SMTPUsername })},
	{"smtp-password", "KAVACH_SMTP_PASSWORD", "", "SMTP password", str(func(o *options) *string { return &o.cfg.Email.SMTPPassword })},
	{"smtp-tls", "KAVACH_SMTP_TLS", "starttls", "starttls, tls (implicit, port 465) or none (localhost only)", str(func(o *options) *string { return &o.cfg.Email.SMTPTLS })},
	{"mail-from", "KAVACH_MAIL_FROM", "Kavach <no-reply@HOST>", "From address of emails", str(func(o *options) *string { return &o.cfg.Email.From })},
	{"mail-dir", "KAVACH_MAIL_DIR", "kavach-mail (development)", "development mailer: write each email to this folder and log it", str(func(o *options) *string { return &o.cfg.Email.DevDir })},
	{"require-email-verification", "KAVACH_REQUIRE_EMAIL_VERIFICATION", "false", "refuse password sign-in until the address is verified", boolean(func(o *options) *bool { return &o.cfg.Email.RequireVerification })},
	{"verification-ttl", "KAVACH_VERIFICATION_TTL", "24h", "lifetime of email verification links", duration(func(o *options) *time.Duration { return &o.cfg.Email.VerificationTTL })},
	{"reset-ttl", "KAVACH_RESET_TTL", "1h", "lifetime of password reset links", duration(func(o *options) *time.Duration { return &o.cfg.Email.ResetTTL })},
	{"reset-password-url", "KAVACH_RESET_PASSWORD_URL", "BASE_URL/reset-password", "your app's reset page; the link adds ?token=", str(func(o *options) *string { return &o.cfg.Email.ResetPasswordURL })},
	{"two-factor-url", "KAVACH_TWO_FACTOR_URL", "BASE_URL/two-factor", "your app's second-factor page; browser sign-ins that need a code redirect there with callbackURL", str(func(o *options) *string { return &o.cfg.SignIn.TwoFactorURL })},
	{"trusted-device-ttl", "KAVACH_TRUSTED_DEVICE_TTL", "720h", "how long \"trust this device\" skips the second factor in that browser", duration(func(o *options) *time.Duration { return &o.cfg.SignIn.TrustedDeviceTTL })},
	{"two-factor-after-passkey", "KAVACH_TWO_FACTOR_AFTER_PASSKEY", "false", "ask for the second factor even after a passkey that verified the user", boolean(func(o *options) *bool { return &o.cfg.SignIn.TwoFactorAfterPasskey })},
	{"magic-link-ttl", "KAVACH_MAGIC_LINK_TTL", "10m", "lifetime of magic links (at most 24h)", duration(func(o *options) *time.Duration { return &o.cfg.SignIn.MagicLinkTTL })},
	{"one-time-code-ttl", "KAVACH_ONE_TIME_CODE_TTL", "5m", "lifetime of emailed and texted sign-in codes (at most 1h)", duration(func(o *options) *time.Duration { return &o.cfg.SignIn.OneTimeCodeTTL })},
	{"sms-webhook-url", "KAVACH_SMS_WEBHOOK_URL", "", "phone codes are posted here as signed JSON {to, text} for your SMS provider (https; http in development)", str(func(o *options) *string { return &o.cfg.SignIn.SMSWebhookURL })},
	{"sms-webhook-secret", "KAVACH_SMS_WEBHOOK_SECRET", "", "signs SMS webhook requests: whsec_<base64> or at least 24 bytes (prefer the variable to the flag)", str(func(o *options) *string { return &o.cfg.SignIn.SMSWebhookSecret })},
	{"sms-per-hour", "KAVACH_SMS_PER_HOUR", "1000", "text messages this node sends per hour, all numbers together (a brake on SMS pumping); past it, send-code answers 429", integer(func(o *options) *int { return &o.cfg.SignIn.SMSPerHour })},
	{"sms-dir", "KAVACH_SMS_DIR", "kavach-sms (development)", "development SMS sender: write each text message to this folder; without it or a webhook, production turns phone sign-in off", str(func(o *options) *string { return &o.cfg.SignIn.SMSDevDir })},
	{"passkey-rp-id", "KAVACH_PASSKEY_RP_ID", "BASE_URL host", "WebAuthn relying party id: the domain passkeys are bound to (changing it loses them); off for a base URL on an IP address unless set", str(func(o *options) *string { return &o.cfg.SignIn.PasskeyRPID })},
	{"passkey-rp-name", "KAVACH_PASSKEY_RP_NAME", "Kavach", "name the browser shows for passkeys of this server", str(func(o *options) *string { return &o.cfg.SignIn.PasskeyRPName })},
	{"passkey-origins", "KAVACH_PASSKEY_ORIGINS", "BASE_URL origin + qualifying trusted origins", "comma-separated origins that may use passkeys: the RP ID or its subdomains, https (http only on localhost)", list(func(o *options) *[]string { return &o.cfg.SignIn.PasskeyOrigins })},
	{"oauth-github-client-id", "KAVACH_OAUTH_GITHUB_CLIENT_ID", "", "turns on sign-in with GitHub: the OAuth client id (callback BASE_URL/api/auth/oauth/github/callback)", providerField("github", func(p *kavach.SocialProvider) *string { return &p.ClientID })},
	{"oauth-github-client-secret", "KAVACH_OAUTH_GITHUB_CLIENT_SECRET", "", "GitHub OAuth client secret", providerField("github", func(p *kavach.SocialProvider) *string { return &p.ClientSecret })},
	{"oauth-google-client-id", "KAVACH_OAUTH_GOOGLE_CLIENT_ID", "", "turns on sign-in with Google: the OAuth client id (callback BASE_URL/api/auth/oauth/google/callback)", providerField("google", func(p *kavach.SocialProvider) *string { return &p.ClientID })},
	{"oauth-google-client-secret", "KAVACH_OAUTH_GOOGLE_CLIENT_SECRET", "", "Google OAuth client secret", providerField("google", func(p *kavach.SocialProvider) *string { return &p.ClientSecret })},
	{"oauth-microsoft-client-id", "KAVACH_OAUTH_MICROSOFT_CLIENT_ID", "", "turns on sign-in with Microsoft: the OAuth client id (callback BASE_URL/api/auth/oauth/microsoft/callback)", providerField("microsoft", func(p *kavach.SocialProvider) *string { return &p.ClientID })},
	{"oauth-microsoft-client-secret", "KAVACH_OAUTH_MICROSOFT_CLIENT_SECRET", "", "Microsoft OAuth client secret", providerField("microsoft", func(p *kavach.SocialProvider) *string { return &p.ClientSecret })},
	{"oauth-microsoft-tenant", "KAVACH_OAUTH_MICROSOFT_TENANT", "common", "Microsoft Entra tenant: common, organizations, consumers, or a tenant id or domain", providerField("microsoft", func(p *kavach.SocialProvider) *string { return &p.Tenant })},
	{"oauth-apple-client-id", "KAVACH_OAUTH_APPLE_CLIENT_ID", "", "turns on sign-in with Apple: the OAuth client id (callback BASE_URL/api/auth/oauth/apple/callback)", providerField("apple", func(p *kavach.SocialProvider) *string { return &p.ClientID })},
	{"oauth-apple-client-secret", "KAVACH_OAUTH_APPLE_CLIENT_SECRET", "", "a client secret JWT you generated; instead, give team id, key id and key file and Kavach makes one per sign-in", providerField("apple", func(p *kavach.SocialProvider) *string { return &p.ClientSecret })},
	{"oauth-apple-team-id", "KAVACH_OAUTH_APPLE_TEAM_ID", "", "Apple developer team id (iss of the client secret)", providerField("apple", func(p *kavach.SocialProvider) *string { return &p.TeamID })},
	{"oauth-apple-key-id", "KAVACH_OAUTH_APPLE_KEY_ID", "", "id of the Sign in with Apple key", providerField("apple", func(p *kavach.SocialProvider) *string { return &p.KeyID })},
	{"oauth-apple-private-key-file", "KAVACH_OAUTH_APPLE_PRIVATE_KEY_FILE", "", "the .p8 file of that key (ES256, PEM)", appleKeyFile},
	{"oauth-gitlab-client-id", "KAVACH_OAUTH_GITLAB_CLIENT_ID", "", "turns on sign-in with GitLab: the OAuth client id (callback BASE_URL/api/auth/oauth/gitlab/callback)", providerField("gitlab", func(p *kavach.SocialProvider) *string { return &p.ClientID })},
	{"oauth-gitlab-client-secret", "KAVACH_OAUTH_GITLAB_CLIENT_SECRET", "", "GitLab OAuth client secret", providerField("gitlab", func(p *kavach.SocialProvider) *string { return &p.ClientSecret })},
	{"oauth-gitlab-issuer", "KAVACH_OAUTH_GITLAB_ISSUER", "https://gitlab.com", "issuer of a self-hosted GitLab (https://gitlab.example.com)", providerField("gitlab", func(p *kavach.SocialProvider) *string { return &p.Issuer })},
	{"oauth-discord-client-id", "KAVACH_OAUTH_DISCORD_CLIENT_ID", "", "turns on sign-in with Discord: the OAuth client id (callback BASE_URL/api/auth/oauth/discord/callback)", providerField("discord", func(p *kavach.SocialProvider) *string { return &p.ClientID })},
	{"oauth-discord-client-secret", "KAVACH_OAUTH_DISCORD_CLIENT_SECRET", "", "Discord OAuth client secret", providerField("discord", func(p *kavach.SocialProvider) *string { return &p.ClientSecret })},
	{"oauth-providers-file", "KAVACH_OAUTH_PROVIDERS_FILE", "", "JSON file of further social providers, e.g. generic OIDC: [{\"id\", \"issuer\", \"clientId\", \"clientSecret\", \"scopes\", \"name\"}] (see docs/sign-in-methods.md)", providersFile},
	{"rate-limit-per-ip", "KAVACH_RATE_LIMIT_PER_IP", "10", "requests per window per client IP (IPv6 per /64) on each credential endpoint", integer(func(o *options) *int { return &o.cfg.Limits.PerIP })},
	{"rate-limit-per-account", "KAVACH_RATE_LIMIT_PER_ACCOUNT", "5", "sign-in and mail requests per window per email address", integer(func(o *options) *int { return &o.cfg.Limits.PerAccount })},
	{"rate-limit-window", "KAVACH_RATE_LIMIT_WINDOW", "1m", "rate limit window", duration(func(o *options) *time.Duration { return &o.cfg.Limits.Window })},
	{"lockout-threshold", "KAVACH_LOCKOUT_THRESHOLD", "10", "consecutive failed sign-ins that lock an account", integer(func(o *options) *int { return &o.cfg.Limits.LockoutThreshold })},
	{"lockout-duration", "KAVACH_LOCKOUT_DURATION", "15m", "how long a locked account stays locked", duration(func(o *options) *time.Duration { return &o.cfg.Limits.LockoutDuration })},
	{"oauth-access-token-ttl", "KAVACH_OAUTH_ACCESS_TOKEN_TTL", "1h", "lifetime of OAuth access tokens (JWTs)", duration(func(o *options) *time.Duration { return &o.cfg.OAuth.AccessTokenTTL })},
	{"oauth-refresh-token-ttl", "KAVACH_OAUTH_REFRESH_TOKEN_TTL", "720h", "lifetime of OAuth refresh tokens (rotated on every use)", duration(func(o *options) *time.Duration { return &o.cfg.OAuth.RefreshTokenTTL })},
	{"oauth-access-token-alg", "KAVACH_OAUTH_ACCESS_TOKEN_ALG", "ES256", "signature algorithm of access tokens: ES256 or EdDSA", str(func(o *options) *string { return &o.cfg.OAuth.AccessTokenAlg })},
	{"oauth-login-page", "KAVACH_OAUTH_LOGIN_PAGE", "BASE_URL/oauth/sign-in", "your app's sign-in page for the OAuth flow; return_to is appended", str(func(o *options) *string { return &o.cfg.OAuth.LoginPage })},
	{"oauth-consent-page", "KAVACH_OAUTH_CONSENT_PAGE", "BASE_URL/oauth/consent", "your app's consent page; it approves with POST /api/auth/oauth2/consent", str(func(o *options) *string { return &o.cfg.OAuth.ConsentPage })},
	{"oauth-resources", "KAVACH_OAUTH_RESOURCES", "", "comma-separated URIs of further protected resources (your MCP servers) tokens may be issued for; BASE_URL/mcp is always one", list(func(o *options) *[]string { return &o.cfg.OAuth.Resources })},
	{"oauth-trusted-issuers-file", "KAVACH_OAUTH_TRUSTED_ISSUERS_FILE", "", "JSON file listing issuers whose signed assertions the jwt-bearer grant accepts: [{\"issuer\", \"jwks\", \"subjects\", \"scopes\"}]", trustedIssuersFile},
	{"oauth-disable-client-metadata-documents", "KAVACH_OAUTH_DISABLE_CLIENT_METADATA_DOCUMENTS", "false", "stop accepting https client ids as client ID metadata documents", boolean(func(o *options) *bool { return &o.cfg.OAuth.DisableClientMetadataDocuments })},
	{"oauth-allow-insecure-client-metadata", "KAVACH_OAUTH_ALLOW_INSECURE_CLIENT_METADATA", "false", "development only: fetch metadata documents and jwks_uri over http and from loopback/private addresses", boolean(func(o *options) *bool { return &o.cfg.OAuth.AllowInsecureClientMetadata })},
	{"oauth-allow-dynamic-machine-clients", "KAVACH_OAUTH_ALLOW_DYNAMIC_MACHINE_CLIENTS", "false", "let open registration create client_credentials clients (otherwise operators register them)", boolean(func(o *options) *bool { return &o.cfg.OAuth.AllowDynamicMachineClients })},
	{"oauth-disable-dynamic-registration", "KAVACH_OAUTH_DISABLE_DYNAMIC_REGISTRATION", "false", "turn off RFC 7591 dynamic client registration", boolean(func(o *options) *bool { return &o.cfg.OAuth.DisableDynamicRegistration })},
	{"agents-max-delegation-depth", "KAVACH_AGENTS_MAX_DELEGATION_DEPTH", "3", "how deep delegation chains may go (agent → sub-agent → …), at most 10", integer(func(o *options) *int { return &o.cfg.Agents.MaxDelegationDepth })},
	{"webhook-url", "KAVACH_WEBHOOK_URL", "", "receives every event (user.created, approval.requested, …) as a signed POST, Standard Webhooks format; https (http in development)", str(func(o *options) *string { return &o.cfg.WebhookURL })},
	{"webhook-secret", "KAVACH_WEBHOOK_SECRET", "", "signs webhook deliveries: whsec_<base64> or at least 24 bytes (prefer the variable to the flag)", str(func(o *options) *string { return &o.cfg.WebhookSecret })},
	{"audit-retention", "KAVACH_AUDIT_RETENTION", "0", "delete audit records older than this (e.g. 2160h for 90 days); 0 keeps them forever", duration(func(o *options) *time.Duration { return &o.cfg.Audit.Retention })},
}

// parseSettings fills options from the environment, then from flags (flags
// win). Flags that were not given leave the environment's value alone.
func parseSettings(fs *flag.FlagSet, args []string, getenv func(string) string) (*options, error) {
	o := &options{logLevel: "info", logFormat: "text", shutdownTimeout: 30 * time.Second}
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.apply(o, v); err != nil {
				return nil, fmt.Errorf("%s: %w", s.env, err)
			}
		}
		fs.Func(s.flag, s.help+" (env "+s.env+")", func(v string) error { return s.apply(o, v) })
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, nil
}

// settingsMarkdown renders the table for docs/configuration.md.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| Flag | Environment variable | Default | Meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "—"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", s.flag, s.env, def, s.help)
	}
	return b.String()
}

// trustedIssuersFile reads the jwt-bearer trust list.
func trustedIssuersFile(o *options, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var list []struct {
		Issuer   string          `json:"issuer"`
		JWKS     json.RawMessage `json:"jwks"`
		Subjects []string        `json:"subjects"`
		Scopes   []string        `json:"scopes"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	o.cfg.OAuth.TrustedIssuers = nil
	for _, t := range list {
		o.cfg.OAuth.TrustedIssuers = append(o.cfg.OAuth.TrustedIssuers, authz.TrustedIssuer{Issuer: t.Issuer, JWKS: t.JWKS, Subjects: t.Subjects, Scopes: t.Scopes})
	}
	return nil
}

// providerField sets a field of the built-in social provider id, adding
// the provider on first use.
func providerField(id string, field func(*kavach.SocialProvider) *string) func(*options, string) error {
	return func(o *options, v string) error {
		list := &o.cfg.SignIn.Providers
		for i := range *list {
			if (*list)[i].ID == id {
				*field(&(*list)[i]) = v
				return nil
			}
		}
		*list = append(*list, kavach.SocialProvider{ID: id})
		*field(&(*list)[len(*list)-1]) = v
		return nil
	}
}

// appleKeyFile reads the Sign in with Apple key.
func appleKeyFile(o *options, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return providerField("apple", func(p *kavach.SocialProvider) *string { return &p.PrivateKey })(o, string(b))
}

// providersFile reads further social providers.
func providersFile(o *options, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var list []struct {
		ID             string   `json:"id"`
		Type           string   `json:"type"`
		Name           string   `json:"name"`
		ClientID       string   `json:"clientId"`
		ClientSecret   string   `json:"clientSecret"`
		Scopes         []string `json:"scopes"`
		Issuer         string   `json:"issuer"`
		Tenant         string   `json:"tenant"`
		AuthURL        string   `json:"authUrl"`
		TokenURL       string   `json:"tokenUrl"`
		UserInfoURL    string   `json:"userInfoUrl"`
		EmailsURL      string   `json:"emailsUrl"`
		TeamID         string   `json:"teamId"`
		KeyID          string   `json:"keyId"`
		PrivateKeyFile string   `json:"privateKeyFile"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range list {
		sp := kavach.SocialProvider{
			ID: p.ID, Type: p.Type, Name: p.Name, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Scopes: p.Scopes,
			Issuer: p.Issuer, Tenant: p.Tenant, AuthURL: p.AuthURL, TokenURL: p.TokenURL, UserInfoURL: p.UserInfoURL,
			EmailsURL: p.EmailsURL, TeamID: p.TeamID, KeyID: p.KeyID,
		}
		if p.PrivateKeyFile != "" {
			key, err := os.ReadFile(p.PrivateKeyFile)
			if err != nil {
				return fmt.Errorf("%s: provider %q: %w", path, p.ID, err)
			}
			sp.PrivateKey = string(key)
		}
		o.cfg.SignIn.Providers = append(o.cfg.SignIn.Providers, sp)
	}
	return nil
}
