package authz

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/safehttp"
	"github.com/kavachos/kavach/storage"
)

// Resource is a protected resource tokens can be issued for (RFC 8707).
type Resource struct {
	URI  string // canonical URI, e.g. https://auth.example.com/mcp
	Name string
}

// Scope is a scope the server knows, with the sentence consent shows.
type Scope struct {
	Name        string
	Description string
}

// DefaultScopes are the scopes every server supports.
var DefaultScopes = []Scope{
	{"openid", "Confirm who you are"},
	{"profile", "See your name and picture"},
	{"email", "See your email address"},
	{"offline_access", "Stay connected when you are not using it"},
	{"mcp", "Use Kavach's MCP tools as you"},
}

// Config configures the authorization server.
type Config struct {
	Issuer          string // the base URL, byte for byte
	Secret          string // server secret; HMAC keys for codes and refresh tokens derive from it
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	CodeTTL         time.Duration
	IDTokenTTL      time.Duration
	// Resources are the protected resources tokens may name in aud. The
	// first one is the default audience of requests that name none.
	Resources []Resource
	Scopes    []Scope
	// AccessTokenAlg signs access tokens ("ES256" default, or "EdDSA");
	// IDTokenAlg signs ID tokens ("RS256" default, as many clients need).
	AccessTokenAlg string
	IDTokenAlg     string
	// LoginURL and ConsentURL are where the authorize endpoint sends a
	// browser that has no session, or no consent yet; the original
	// authorize URL is appended as return_to.
	LoginURL   string
	ConsentURL string
	// TrustedIssuers turns on the RFC 7523 jwt-bearer grant for
	// assertions these issuers sign (none: the grant is off).
	TrustedIssuers []TrustedIssuer
	// CIMD configures client ID metadata documents (off unless Enabled).
	CIMD CIMDConfig
	// DisableDynamicRegistration turns RFC 7591 registration off.
	DisableDynamicRegistration bool
	// AllowDynamicMachineClients lets RFC 7591 registration create
	// client_credentials and jwt-bearer clients (off: operators register
	// machine clients).
	AllowDynamicMachineClients bool
	// Agents, when set, turns on RFC 8693 token exchange and refuses
	// tokens to clients whose agent (or an agent above it) is suspended,
	// revoked or expired.
	Agents AgentDirectory
	// Audit, when set, receives a durable record of every token issued
	// and of refused token requests from known clients.
	Audit Recorder
	// TrustLevel, when set, gives the trust level of an agent for the
	// trust_level claim of its client's access tokens.
	TrustLevel func(ctx context.Context, agentID string) (string, bool)
	// TrustScopes, when set, applies trust policies to the scopes of a
	// token about to be issued to an agent's client: it returns the
	// scopes the agent's trust level does not reach, and why. They are
	// left out of the token; when that leaves none of the scopes granted,
	// the request is refused with invalid_scope. An error refuses it.
	TrustScopes func(ctx context.Context, agent agents.ClientAgent, scopes []string) (withheld []string, why string, err error)
	// OnInvalidClient, when set, hears of each refused client
	// authentication of a known client (after its audit record), for the
	// agent's trust score.
	OnInvalidClient func(agentID string, at time.Time)
	// OnRefreshTokenReuse, when set, hears of each refused refresh that
	// presented the client's own refresh token after it was rotated or
	// revoked (after the request's audit record): someone holds a copy of
	// the token.
	OnRefreshTokenReuse func(agentID string, at time.Time)
	// ClientIP resolves a request's client address for audit records
	// (behind trusted proxies); nil leaves it unrecorded.
	ClientIP clientIPFunc
	Now      func() time.Time
	Logger   *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, time.Hour)
	def(&c.RefreshTokenTTL, 30*24*time.Hour)
	def(&c.CodeTTL, 5*time.Minute)
	def(&c.IDTokenTTL, time.Hour)
	if len(c.Resources) == 0 {
		c.Resources = []Resource{{URI: c.Issuer + "/mcp", Name: "Kavach MCP"}}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes
	}
	if c.AccessTokenAlg == "" {
		c.AccessTokenAlg = "ES256"
	}
	if c.IDTokenAlg == "" {
		c.IDTokenAlg = "RS256"
	}
	if c.LoginURL == "" {
		c.LoginURL = c.Issuer + "/oauth/sign-in"
	}
	if c.ConsentURL == "" {
		c.ConsentURL = c.Issuer + "/oauth/consent"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the OAuth 2.1 authorization server.
type Server struct {
	cfg      Config
	store    storage.Store
	keys     *KeyManager
	fcfg     *fosite.Config
	provider *fosite.Fosite
	fstore   *fositeStore
	clients  *clientRegistry
	tokens   *tokenStrategy
	// parsed caches verified access tokens (parseAccessToken).
	parsedMu sync.Mutex
	parsed   map[[sha256.Size]byte]*AccessClaims
	// resources are cfg.Resources in canonical form, computed once (token
	// requests and agent credentials check against them).
	resources []string
	// lastReload (unix ns) rate-limits key reloads on unknown kids.
	lastReload atomic.Int64
}

// New composes the server. Only the grants OAuth 2.1 keeps are composed
// (never compose.ComposeAllEnabled, which turns on implicit and password).
func New(store storage.Store, keys *KeyManager, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Issuer == "" || len(cfg.Secret) < 32 {
		return nil, errors.New("authz: issuer and a secret of at least 32 bytes are required")
	}
	for _, alg := range []string{cfg.AccessTokenAlg} {
		if alg != "ES256" && alg != "EdDSA" {
			return nil, fmt.Errorf("authz: access token algorithm %q: want ES256 or EdDSA", alg)
		}
	}
	hmacKey, err := hkdf.Key(sha256.New, []byte(cfg.Secret), nil, "kavach fosite hmac", 32)
	if err != nil {
		return nil, fmt.Errorf("authz: derive hmac key: %w", err)
	}
	s := &Server{cfg: cfg, store: store, keys: keys}
	issuers, err := newTrustedIssuers(cfg.TrustedIssuers, s.scopeNames())
	if err != nil {
		return nil, err
	}
	s.resources = make([]string, len(cfg.Resources))
	for i, r := range cfg.Resources {
		s.resources[i] = canonicalResource(r.URI)
	}
	s.clients = &clientRegistry{store: store, scopes: s.scopeNames(), resources: s.resources, now: cfg.Now,
		allowDynamicMachines: cfg.AllowDynamicMachineClients}
	s.clients.docs = newMetadataDocs(cfg.CIMD, s.clients, cfg.Logger)
	s.fstore = &fositeStore{store: store, clients: s.clients, writer: newTokenWriter(store), now: cfg.Now}
	if cfg.Audit != nil {
		s.fstore.issued = s.issuedRecord
	}
	s.fcfg = &fosite.Config{
		AccessTokenLifespan:            cfg.AccessTokenTTL,
		RefreshTokenLifespan:           cfg.RefreshTokenTTL,
		AuthorizeCodeLifespan:          cfg.CodeTTL,
		IDTokenLifespan:                cfg.IDTokenTTL,
		AccessTokenIssuer:              cfg.Issuer,
		IDTokenIssuer:                  cfg.Issuer,
		GlobalSecret:                   hmacKey,
		EnforcePKCE:                    true,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       s.matchAudience,
		RefreshTokenScopes:             []string{"offline_access"},
		TokenURL:                       cfg.Issuer + TokenPath,
		ClientSecretsHasher:            secretHasher{},
		RedirectSecureChecker:          func(_ context.Context, u *url.URL) bool { return checkRegisteredRedirect(u.String()) == nil },
		MinParameterEntropy:            fosite.MinParameterEntropy,
		SendDebugMessagesToClients:     false,
		// fosite fetches a registered client's jwks_uri itself; give it a
		// fetcher that refuses private targets and bounds size and time.
		JWKSFetcherStrategy: newSafeJWKSFetcher(safehttp.New(safehttp.Options{AllowHTTP: cfg.CIMD.AllowInsecure,
			AllowPrivate: cfg.CIMD.AllowInsecure, Timeout: 5 * time.Second, MaxBytes: 64 << 10, TLSConfig: cfg.CIMD.TLSConfig})),
		// jwt-bearer assertions: client authentication, jti and iat
		// required, and a short lifetime bounds the jtis to remember.
		GrantTypeJWTBearerCanSkipClientAuth:  false,
		GrantTypeJWTBearerIDOptional:         false,
		GrantTypeJWTBearerIssuedDateOptional: false,
		GrantTypeJWTBearerMaxDuration:        maxAssertionLifetime,
	}
	s.tokens = &tokenStrategy{CoreStrategy: compose.NewOAuth2HMACStrategy(s.fcfg), keys: keys, issuer: cfg.Issuer, alg: cfg.AccessTokenAlg, ttl: cfg.AccessTokenTTL, now: cfg.Now,
		trustLevel: cfg.TrustLevel}
	idSigner := &IDTokenSigner{Keys: keys, Alg: cfg.IDTokenAlg}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               s.tokens,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: idSigner, Config: s.fcfg},
		Signer:                     idSigner,
	}
	factories := []compose.Factory{
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
	}
	var fstore any = s.fstore
	if len(issuers) > 0 {
		fstore = &jwtBearerStore{fositeStore: s.fstore, issuers: issuers}
		factories = append(factories, jwtBearerFactory)
	}
	if cfg.Agents != nil {
		factories = append(factories, func(config fosite.Configurator, storage any, strategy any) any {
			return &exchangeHandler{s: s, HandleHelper: &oauth2.HandleHelper{
				AccessTokenStrategy: s.tokens, AccessTokenStorage: s.fstore, Config: config}}
		})
	}
	s.provider = composeProvider(s.fcfg, []string{cfg.Issuer + TokenPath, cfg.Issuer}, fstore, strategy, factories...)
	return s, nil
}

// fositeConfig widens fosite's single TokenURL: a private_key_jwt
// assertion may name the token endpoint or the issuer as its audience
// (RFC 7523 §3; oauth4webapi sends the issuer).
type fositeConfig struct {
	*fosite.Config
	tokenURLs []string
}

func (c fositeConfig) GetTokenURLs(context.Context) []string { return c.tokenURLs }

// composeProvider is compose.Compose with our config wrapper (Compose
// takes the concrete *fosite.Config and would hide the override).
func composeProvider(cfg *fosite.Config, tokenURLs []string, store any, strategy any, factories ...compose.Factory) *fosite.Fosite {
	wrapped := fositeConfig{Config: cfg, tokenURLs: tokenURLs}
	f := fosite.NewOAuth2Provider(store.(fosite.Storage), wrapped)
	for _, factory := range factories {
		res := factory(wrapped, store, strategy)
		if h, ok := res.(fosite.AuthorizeEndpointHandler); ok {
			cfg.AuthorizeEndpointHandlers.Append(h)
		}
		if h, ok := res.(fosite.TokenEndpointHandler); ok {
			cfg.TokenEndpointHandlers.Append(h)
		}
		if h, ok := res.(fosite.TokenIntrospector); ok {
			cfg.TokenIntrospectionHandlers.Append(h)
		}
		if h, ok := res.(fosite.RevocationHandler); ok {
			cfg.RevocationHandlers.Append(h)
		}
	}
	return f
}

func (s *Server) scopeNames() []string {
	out := make([]string, len(s.cfg.Scopes))
	for i, sc := range s.cfg.Scopes {
		out[i] = sc.Name
	}
	return out
}

// reloadKeys re-reads the signing keys, at most once every few seconds
// (a flood of tokens with made-up kids must not become a flood of
// queries); it reports whether it did.
func (s *Server) reloadKeys(ctx context.Context) bool {
	now := s.cfg.Now().UnixNano()
	last := s.lastReload.Load()
	if now-last < int64(5*time.Second) || !s.lastReload.CompareAndSwap(last, now) {
		return false
	}
	if err := s.keys.Reload(ctx); err != nil {
		s.cfg.Logger.Warn("reloading signing keys failed", "err", err)
		return false
	}
	return true
}

// ReloadKeys re-reads the signing keys, so a rotation done by another node
// or by `kavach keys rotate` is picked up (the root package runs it every
// 30 s).
func (s *Server) ReloadKeys(ctx context.Context) error { return s.keys.Reload(ctx) }

// Close stops background work (the token writer finishes what is queued).
func (s *Server) Close() { s.fstore.writer.close() }

// DefaultResource is the audience of requests that name no resource.
func (s *Server) DefaultResource() string { return s.resources[0] }

// Issuer is the configured issuer.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// canonicalResource normalizes an RFC 8707 resource for comparison: scheme
// and host lower-case, no trailing slash, no fragment. "" if raw is not an
// absolute URI without fragment.
func canonicalResource(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return ""
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	out := u.String()
	if u.RawQuery == "" {
		out = strings.TrimSuffix(out, "/")
	}
	return out
}

// errInvalidTarget is RFC 8707's error for an unknown resource.
var errInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested resource is not a resource this server issues tokens for.",
	CodeField:        400,
}

// matchAudience is fosite's audience strategy: every requested audience
// must be a registered resource.
func (s *Server) matchAudience(_ []string, needles []string) error {
	known := s.resources
	for _, n := range needles {
		if !slices.Contains(known, canonicalResource(n)) {
			return errInvalidTarget
		}
	}
	return nil
}

// resolveResources maps request "resource" values to canonical registered
// resources; none given yields the default. An unknown one is
// invalid_target.
func (s *Server) resolveResources(values []string) ([]string, error) {
	if len(values) == 0 {
		return []string{s.DefaultResource()}, nil
	}
	known := s.resources
	var out []string
	for _, v := range values {
		c := canonicalResource(v)
		if c == "" || !slices.Contains(known, c) {
			return nil, errInvalidTarget
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
