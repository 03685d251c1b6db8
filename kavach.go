// Package kavach is the one place that wires Kavach together: it opens the
// store, builds the domain services from a Config and serves them over
// HTTP. A Go program can embed it:
//
//	k, err := kavach.New(ctx, kavach.Config{Secret: s, DatabaseURL: "sqlite:app.db"})
//	mux.Handle("/", k.Handler())
//	res := k.Auth.GetSession(ctx, r) // Result: Data is nil when signed out
//
// The binary in cmd/kavach does the same with configuration from flags and
// environment variables.
package kavach

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/mail"
	"github.com/kavachos/kavach/internal/outbox"
	"github.com/kavachos/kavach/internal/seal"
	"github.com/kavachos/kavach/internal/sms"
	"github.com/kavachos/kavach/internal/webhook"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/postgres"
	"github.com/kavachos/kavach/storage/sqlite"
	"github.com/kavachos/kavach/trust"
	"github.com/kavachos/kavach/users"
	"github.com/kavachos/kavach/users/social"
)

// Version is set at build time with -ldflags "-X github.com/kavachos/kavach.Version=…".
var Version = "dev"

// Kavach is a running instance.
type Kavach struct {
	// Auth reads sessions from requests (library use).
	Auth *Auth
	// Users is the human identity service (CLI and library use).
	Users *users.Service
	// Store is the persistence layer.
	Store storage.Store
	// Agents manages agent principals and answers authorization decisions.
	Agents *agents.Service
	// Trust keeps agents' trust scores (see docs/trust.md).
	Trust *trust.Service
	// Audit group-commits audit records (durable before they return).
	Audit *authz.AuditWriter
	// OAuth is the OAuth 2.1 authorization server; Keys its signing keys.
	OAuth *authz.Server
	Keys  *authz.KeyManager

	cfg       Config
	ownsStore bool
	handler   http.Handler
	origins   originGuard
	limits    limiters
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    sync.Once
}

// New validates cfg, opens and migrates the store and starts background
// work (event delivery, expiry sweeps). Call Close when done.
func New(ctx context.Context, cfg Config) (*Kavach, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	store, err := OpenStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if !cfg.SkipMigrations {
		if _, err := store.Migrate(ctx); err != nil {
			store.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	k, err := newWithStore(cfg, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	k.ownsStore = true
	return k, nil
}

// NewWithStore is New over an already open (and migrated) store, which
// stays the caller's: Close does not close it. Several instances may share
// one store, as several nodes share one database.
func NewWithStore(cfg Config, store storage.Store) (*Kavach, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return newWithStore(cfg, store)
}

func newWithStore(cfg Config, store storage.Store) (*Kavach, error) {
	mailer, err := newMailer(cfg)
	if err != nil {
		return nil, err
	}
	auditKey, err := hkdf.Key(sha256.New, []byte(cfg.Secret), nil, "kavach audit address hmac", 32)
	if err != nil {
		return nil, fmt.Errorf("derive audit key: %w", err)
	}
	codeKey, err := hkdf.Key(sha256.New, []byte(cfg.Secret), nil, "kavach one-time code hmac", 32)
	if err != nil {
		return nil, fmt.Errorf("derive code key: %w", err)
	}
	sealer, err := seal.New(cfg.Secret, "kavach user secrets")
	if err != nil {
		return nil, fmt.Errorf("user secrets sealer: %w", err)
	}
	texts, err := newSMSSender(cfg)
	if err != nil {
		return nil, err
	}
	providers, err := social.New(cfg.SignIn.Providers, social.Options{Development: cfg.Env == EnvDevelopment, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	// The users service is made before the agents service; a ban reaches
	// the agents through this variable, set below.
	var agentSvc *agents.Service
	suspendAgents := func(ctx context.Context, tx storage.Store, userID, reason string) (func(), error) {
		ids, err := agentSvc.SuspendOwned(ctx, tx, userID, reason)
		return func() {
			for _, id := range ids {
				agentSvc.Forget(id)
			}
		}, err
	}
	hasher := users.NewPasswordHasher(cfg.Password.Iterations, cfg.Password.MaxConcurrent, users.LegacyVerifier(cfg.VerifyLegacyHash))
	svc := users.NewService(store, users.Config{
		BaseURL:               cfg.BaseURL,
		ResetPasswordURL:      cfg.Email.ResetPasswordURL,
		SessionTTL:            cfg.Session.TTL,
		BrowserSessionTTL:     cfg.Session.BrowserTTL,
		SessionUpdateAge:      cfg.Session.UpdateAge,
		SessionCacheTTL:       cfg.Session.CacheTTL,
		VerificationTTL:       cfg.Email.VerificationTTL,
		PasswordResetTTL:      cfg.Email.ResetTTL,
		LockoutThreshold:      cfg.Limits.LockoutThreshold,
		LockoutDuration:       cfg.Limits.LockoutDuration,
		RequireVerifiedEmail:  cfg.Email.RequireVerification,
		Policy:                users.PasswordPolicy{MinLength: cfg.Password.MinLength, MaxLength: cfg.Password.MaxLength},
		Hasher:                hasher,
		AuditKey:              auditKey,
		CodeKey:               codeKey,
		SuspendAgents:         suspendAgents,
		Sealer:                sealer,
		TrustedDeviceTTL:      cfg.SignIn.TrustedDeviceTTL,
		TwoFactorAfterPasskey: cfg.SignIn.TwoFactorAfterPasskey,
		MagicLinkTTL:          cfg.SignIn.MagicLinkTTL,
		OneTimeCodeTTL:        cfg.SignIn.OneTimeCodeTTL,
		SMS:                   texts,
		SMSPerHour:            cfg.SignIn.SMSPerHour,
		PasskeyRPID:           cfg.SignIn.PasskeyRPID,
		PasskeyRPName:         cfg.SignIn.PasskeyRPName,
		PasskeyOrigins:        cfg.SignIn.PasskeyOrigins,
		Social:                providers,
		Mailer:                mailer,
		Logger:                cfg.Logger,
		Now:                   cfg.Now,
	})
	k := &Kavach{Users: svc, Store: store, cfg: cfg}
	k.Audit = authz.NewAuditWriter(store.Audit())
	zone, err := budgetZone(cfg.BudgetTimeZone)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: budget time zone: %w", err)
	}
	if k.Trust, err = trust.NewService(store, trust.DefaultModel(), trust.DefaultDetectorConfig(), cfg.Now, cfg.Logger); err != nil {
		return nil, err
	}
	agentSvc = agents.NewService(store, k.Audit, agents.Config{Trust: trustObserver{k.Trust}, TrustGate: trustGate{k.Trust}, MaxDelegationDepth: cfg.Agents.MaxDelegationDepth, Now: cfg.Now, Logger: cfg.Logger, BudgetTimeZone: zone})
	k.Agents = agentSvc
	loadCtx, cancelLoad := context.WithTimeout(context.Background(), 30*time.Second)
	_, err = k.Trust.EnablePolicies(loadCtx, trust.PolicyConfig{
		Compile:   compilePattern,
		Suspend:   k.Agents.SuspendForTrust,
		Suspended: k.trustSuspended,
	})
	cancelLoad()
	if err != nil {
		return nil, err
	}
	k.Auth = &Auth{k: k, cookie: newCookieSpec(cfg.BaseURL)}
	k.handler, err = k.routes()
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	// Without a handler no dispatcher runs: events stay in the outbox for
	// the instance that has one (a CLI run must never consume them).
	if handle, err := eventHandler(cfg); err != nil {
		cancel()
		return nil, err
	} else if handle != nil {
		d := outbox.NewDispatcher(store, handle, cfg.Logger)
		k.wg.Add(1)
		go func() { defer k.wg.Done(); d.Run(bg) }()
	}
	k.wg.Add(4)
	go func() {
		defer k.wg.Done()
		// A change made on another node applies here within a second.
		k.every(bg, time.Second, "reloading trust policies", k.Trust.Policies().Reload)
	}()
	go func() {
		defer k.wg.Done()
		// Not cancelled by Close mid-commit: a flush whose commit outcome
		// is unknown would put its events back and Close would count them
		// twice. Close waits for it (wg), then flushes the rest.
		k.every(bg, time.Second, "storing trust scores", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return k.Trust.Flush(ctx)
		})
	}()
	go func() { defer k.wg.Done(); k.every(bg, 10*time.Minute, "sweeping expired rows", k.sweep) }()
	go func() { defer k.wg.Done(); k.every(bg, 30*time.Second, "reloading signing keys", k.OAuth.ReloadKeys) }()
	return k, nil
}

// trustObserver turns what the agents service and the token endpoint see
// into trust events.
type trustObserver struct{ t *trust.Service }

// Decision applies the decision's signal, and queues it for the anomaly
// detectors when the agent made it with its own credential: a decision a
// server admin asks for an agent carries the admin's address and
// User-Agent, which say nothing about the agent.
func (o trustObserver) Decision(d agents.TrustDecision) {
	if sig := trust.SignalForDecision(d.Code, d.Probe); sig != "" {
		o.t.Record(d.AgentID, trust.Event{At: d.At, Signal: sig})
	}
	if obs, ok := trust.ObservationForDecision(d.Code, d.Probe); ok && d.TokenID != "" {
		obs.At, obs.IP, obs.UserAgent, obs.Resource, obs.TokenID = d.At, d.IP, d.UserAgent, d.Resource, d.TokenID
		o.t.Observe(d.AgentID, obs)
	}
}

func (o trustObserver) ApprovalDenied(agentID string, at time.Time) {
	o.t.Record(agentID, trust.Event{At: at, Signal: trust.SignalApprovalDenied})
}

func (o trustObserver) InvalidClient(agentID string, at time.Time) {
	o.t.Record(agentID, trust.Event{At: at, Signal: trust.SignalInvalidClientAuth})
}

func (o trustObserver) RefreshTokenReuse(agentID string, at time.Time) {
	o.t.Record(agentID, trust.Event{At: at, Signal: trust.SignalRefreshTokenReuse})
}

// eventHandler delivers outbox events to OnEvent, then to the webhook;
// nil when there is neither. A failure of either retries the event for
// both (receivers deduplicate by event id, as at-least-once asks).
func eventHandler(cfg Config) (outbox.Handler, error) {
	var hook *webhook.Sender
	if cfg.WebhookURL != "" {
		var err error
		if hook, err = webhook.New(cfg.WebhookURL, cfg.WebhookSecret, cfg.Env == EnvDevelopment, cfg.Now); err != nil {
			return nil, err
		}
	}
	switch {
	case hook == nil && cfg.OnEvent == nil:
		return nil, nil
	case hook == nil:
		return cfg.OnEvent, nil
	}
	return func(ctx context.Context, e storage.Event) error {
		if cfg.OnEvent != nil {
			if err := cfg.OnEvent(ctx, e); err != nil {
				return err
			}
		}
		return hook.Send(ctx, e)
	}, nil
}

// Handler serves the whole HTTP surface: /api/auth/…, /healthz, /readyz.
func (k *Kavach) Handler() http.Handler { return k.handler }

// Config returns the effective (defaulted) configuration.
func (k *Kavach) Config() Config { return k.cfg }

// Close stops background work, waits for queued mail and closes the store
// if New opened it.
func (k *Kavach) Close() error {
	var err error
	k.closed.Do(func() {
		k.cancel()
		k.wg.Wait()
		// The last second of trust events, stored before the store closes.
		flushCtx, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
		if ferr := k.Trust.Flush(flushCtx); ferr != nil {
			k.cfg.Logger.Error("storing trust scores at close", "err", ferr)
		}
		cancelFlush()
		k.Users.Close()
		if k.OAuth != nil {
			k.OAuth.Close()
		}
		k.Audit.Close()
		if k.ownsStore {
			err = k.Store.Close()
		}
	})
	return err
}

// every runs fn each interval until ctx ends, logging what fails.
func (k *Kavach) every(ctx context.Context, interval time.Duration, what string, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				k.cfg.Logger.Warn(what+" failed", "err", err)
			}
		}
	}
}

// sweep deletes expired sessions, links and OAuth rows (codes, tokens and
// used assertion ids are dead weight once expired), audit records past
// the retention period, old usage counters, and anomaly findings older
// than trust.FindingRetention.
func (k *Kavach) sweep(ctx context.Context) error {
	_, _, errUsers := k.Users.SweepExpired(ctx)
	_, errTokens := k.Store.OAuthTokens().DeleteExpired(ctx, k.cfg.Now())
	_, errFindings := k.Store.TrustFindings().DeleteBefore(ctx, k.cfg.Now().Add(-trust.FindingRetention))
	var errAudit error
	if k.cfg.Audit.Retention > 0 {
		var n int
		n, errAudit = k.Store.Audit().DeleteBefore(ctx, k.cfg.Now().Add(-k.cfg.Audit.Retention))
		if n > 0 {
			k.cfg.Logger.Info("audit retention: deleted old records", "records", n, "retention", k.cfg.Audit.Retention.String())
		}
	}
	_, errUsage := k.Agents.SweepUsage(ctx)
	return errors.Join(errUsers, errTokens, errFindings, errAudit, errUsage)
}

// Sweep runs the periodic clean-up once, now: expired sessions, links and
// OAuth rows, audit records past Config.Audit.Retention, and old anomaly
// findings.
func (k *Kavach) Sweep(ctx context.Context) error { return k.sweep(ctx) }

// OpenStore opens the store a database URL names (without migrating):
// postgres:// or postgresql:// for PostgreSQL; sqlite:PATH, file:PATH or a
// bare path for SQLite.
func OpenStore(ctx context.Context, databaseURL string) (storage.Store, error) {
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		s, err := postgres.Open(ctx, databaseURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		return s, nil
	case strings.Contains(databaseURL, "://"):
		return nil, fmt.Errorf("unsupported database URL scheme in %q (use postgres:// or sqlite:PATH)", redactURL(databaseURL))
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "file:")
		if path == "" {
			return nil, errors.New("sqlite database path is empty")
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		return s, nil
	}
}

// redactURL hides a password in a connection URL for messages.
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if at := strings.IndexByte(rest, '@'); at >= 0 {
			return raw[:i+3] + "***@" + rest[at+1:]
		}
	}
	return raw
}

// newSMSSender picks how phone codes are sent: the webhook, else the
// development folder, else nothing (the phone routes are off).
func newSMSSender(cfg Config) (users.SMSSender, error) {
	if cfg.SignIn.SMSWebhookURL != "" {
		w, err := sms.NewWebhook(cfg.SignIn.SMSWebhookURL, cfg.SignIn.SMSWebhookSecret, cfg.Env == EnvDevelopment, cfg.Now)
		if err != nil {
			return nil, err
		}
		return w, nil
	}
	if cfg.SignIn.SMSDevDir != "" {
		return &sms.DevSender{Dir: cfg.SignIn.SMSDevDir, Logger: cfg.Logger}, nil
	}
	return nil, nil
}

func newMailer(cfg Config) (mail.Mailer, error) {
	if cfg.Email.SMTPHost != "" {
		m, err := mail.NewSMTP(mail.SMTPConfig{
			Host: cfg.Email.SMTPHost, Port: cfg.Email.SMTPPort, Username: cfg.Email.SMTPUsername,
			Password: cfg.Email.SMTPPassword, From: cfg.Email.From, TLS: cfg.Email.SMTPTLS,
		})
		if err != nil {
			return nil, fmt.Errorf("smtp: %w", err)
		}
		return m, nil
	}
	if cfg.Email.DevDir != "" {
		return &mail.DevMailer{Dir: cfg.Email.DevDir, Logger: cfg.Logger}, nil
	}
	return nil, nil
}
