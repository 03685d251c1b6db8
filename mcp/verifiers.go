package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// JWKSConfig configures a JWKSVerifier.
type JWKSConfig struct {
	// Issuer is the authorization server's issuer (Kavach's base URL),
	// compared byte for byte with the tokens' "iss". Required.
	Issuer string
	// JWKSURL is where the signing keys are published; default Issuer +
	// "/.well-known/jwks.json", Kavach's.
	JWKSURL string
	// HTTPClient fetches the keys; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// RefreshInterval is how old the cached keys may get before they are
	// fetched again (in the background, while the cached ones keep
	// serving); default 15 minutes. Keys the server retired drop out then.
	RefreshInterval time.Duration
	// MinRefreshInterval is how soon after a fetch a token with an
	// unknown key id may cause another (so that tokens with made-up key
	// ids cannot make the verifier hammer the server); default 10 s.
	MinRefreshInterval time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; default 5 s.
	Leeway time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// JWKSVerifier verifies Kavach's access tokens (RFC 9068 JWTs) on the
// resource server itself, against the authorization server's published
// keys: the signature, "typ" at+jwt, "iss", "exp", "nbf" and "iat". The
// keys are cached; a request never waits for the network unless its
// token names a key id the cache does not hold (a key the server has just
// started signing with), and then at most once per MinRefreshInterval.
//
// The TokenInfo of a token seen before is answered from a cache, and is
// shared: treat it as read-only.
//
// A JWT says nothing about being revoked since it was issued: its short
// lifetime bounds that (an hour by default). Where a revoked token must
// stop at once, use an IntrospectionVerifier, which asks the server.
type JWKSVerifier struct {
	cfg    JWKSConfig
	client *http.Client

	mu        sync.RWMutex
	keys      jose.JSONWebKeySet
	fetchedAt time.Time // zero before the first fetch

	fetch      sync.Mutex // one fetch at a time
	refreshing bool       // a background refresh is running (under mu)

	// verified caches tokens already verified (by SHA-256), until they
	// expire or the key set is fetched again: a client sends one token
	// with many requests, and a signature check costs tens of
	// microseconds. Dropped whole when full.
	verified map[[sha256.Size]byte]*TokenInfo
	// keyGen counts key-set fetches: a token verified under an older set
	// is not cached into a newer one's cache.
	keyGen uint64
}

// maxVerified bounds the verified-token cache.
const maxVerified = 10_000

// Algorithms the verifier accepts: Kavach signs access tokens with ES256
// (default) or EdDSA; the others are common for other servers.
var jwksAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.ES384, jose.RS256, jose.PS256}

// maxJWKSBytes bounds a fetched key set.
const maxJWKSBytes = 1 << 20

// NewJWKSVerifier checks cfg and returns a verifier. It fetches nothing
// yet: the first token does (call Refresh to fail fast at start).
func NewJWKSVerifier(cfg JWKSConfig) (*JWKSVerifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("mcp: JWKSConfig.Issuer is required")
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/jwks.json"
	}
	if _, err := parseResource(cfg.JWKSURL); err != nil {
		return nil, fmt.Errorf("mcp: JWKSConfig.JWKSURL: %w", err)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 15 * time.Minute
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 10 * time.Second
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &JWKSVerifier{cfg: cfg, client: client}, nil
}

// Refresh fetches the keys now.
func (v *JWKSVerifier) Refresh(ctx context.Context) error {
	v.fetch.Lock()
	defer v.fetch.Unlock()
	return v.refreshLocked(ctx)
}

func (v *JWKSVerifier) refreshLocked(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("mcp: fetch the signing keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mcp: fetch the signing keys: %s answered %d", v.cfg.JWKSURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("mcp: read the signing keys: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return errors.New("mcp: the signing key set is over 1 MiB")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("mcp: the signing key set does not parse: %w", err)
	}
	// Only public signing keys: a private key published by mistake, or an
	// encryption key, must not verify anything.
	set.Keys = slices.DeleteFunc(set.Keys, func(k jose.JSONWebKey) bool {
		return !k.Valid() || !k.IsPublic() || k.Use != "" && k.Use != "sig"
	})
	v.mu.Lock()
	v.keys, v.fetchedAt = set, v.cfg.Now()
	v.verified = nil // a key may have been withdrawn
	v.keyGen++
	v.mu.Unlock()
	return nil
}

// keysFor returns the cached keys with this id, fetching the set when the
// id is unknown and the last fetch is old enough, and starting a
// background refresh when the cache is stale.
func (v *JWKSVerifier) keysFor(ctx context.Context, kid string) []jose.JSONWebKey {
	now := v.cfg.Now()
	v.mu.RLock()
	found, fetchedAt := v.keys.Key(kid), v.fetchedAt
	v.mu.RUnlock()
	if len(found) > 0 {
		if now.Sub(fetchedAt) > v.cfg.RefreshInterval {
			v.refreshInBackground()
		}
		return found
	}
	v.fetch.Lock()
	defer v.fetch.Unlock()
	v.mu.RLock()
	found, fetchedAt = v.keys.Key(kid), v.fetchedAt
	v.mu.RUnlock()
	if len(found) > 0 || !fetchedAt.IsZero() && now.Sub(fetchedAt) < v.cfg.MinRefreshInterval {
		return found // another request fetched meanwhile, or one did just now
	}
	if err := v.refreshLocked(ctx); err != nil {
		v.cfg.Logger.Warn("mcp: refreshing the signing keys for an unknown key id", "kid", kid, "err", err)
		return nil
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.keys.Key(kid)
}

func (v *JWKSVerifier) refreshInBackground() {
	v.mu.Lock()
	if v.refreshing {
		v.mu.Unlock()
		return
	}
	v.refreshing = true
	v.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := v.Refresh(ctx); err != nil {
			v.cfg.Logger.Warn("mcp: refreshing the signing keys; the cached ones stay in use", "err", err)
		}
		v.mu.Lock()
		v.refreshing = false
		v.mu.Unlock()
	}()
}

// accessClaims are the claims of an RFC 9068 access token Kavach issues.
type accessClaims struct {
	ClientID   string      `json:"client_id"`
	Scope      string      `json:"scope"`
	AuthTime   int64       `json:"auth_time"`
	Act        *actorClaim `json:"act"`
	TrustLevel string      `json:"trust_level"`
}

type actorClaim struct {
	Subject string      `json:"sub"`
	Act     *actorClaim `json:"act"`
}

// VerifyAccessToken implements Verifier. The audience is RequireBearer's
// to check.
func (v *JWKSVerifier) VerifyAccessToken(ctx context.Context, token string) (*TokenInfo, error) {
	sum := sha256.Sum256([]byte(token))
	v.mu.RLock()
	info, hit := v.verified[sum]
	v.mu.RUnlock()
	if hit {
		if v.cfg.Now().Before(info.ExpiresAt.Add(v.cfg.Leeway)) {
			return info, nil
		}
		return nil, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	v.mu.RLock()
	gen := v.keyGen
	v.mu.RUnlock()
	info, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.verified == nil || len(v.verified) >= maxVerified {
		v.verified = make(map[[sha256.Size]byte]*TokenInfo)
	}
	if v.keyGen == gen { // verified under the keys in force now
		v.verified[sum] = info
	}
	v.mu.Unlock()
	return info, nil
}

func (v *JWKSVerifier) verify(ctx context.Context, token string) (*TokenInfo, error) {
	tok, err := jwt.ParseSigned(token, jwksAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: one signature expected", ErrInvalidToken)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, fmt.Errorf("%w: typ %q is not at+jwt (RFC 9068)", ErrInvalidToken, typ)
	}
	var (
		std    jwt.Claims
		claims accessClaims
		ok     bool
	)
	for _, k := range v.keysFor(ctx, h.KeyID) {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if tok.Claims(k.Key, &std, &claims) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: no published key verifies the signature", ErrInvalidToken)
	}
	switch {
	case std.Expiry == nil || std.IssuedAt == nil:
		return nil, fmt.Errorf("%w: exp and iat are required", ErrInvalidToken)
	case std.Subject == "" || claims.ClientID == "" || std.ID == "":
		return nil, fmt.Errorf("%w: sub, client_id and jti are required", ErrInvalidToken)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.cfg.Issuer, Time: v.cfg.Now()}, v.cfg.Leeway); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	info := &TokenInfo{
		Subject: std.Subject, ClientID: claims.ClientID, JTI: std.ID, Scopes: strings.Fields(claims.Scope),
		Audience: []string(std.Audience), IssuedAt: std.IssuedAt.Time().UTC(), ExpiresAt: std.Expiry.Time().UTC(),
		TrustLevel: claims.TrustLevel,
	}
	if claims.AuthTime != 0 {
		t := time.Unix(claims.AuthTime, 0).UTC()
		info.AuthTime = &t
	}
	for a := claims.Act; a != nil && len(info.Actors) < maxActors; a = a.Act {
		info.Actors = append(info.Actors, a.Subject)
	}
	slices.Reverse(info.Actors) // earliest first
	return info, nil
}

// maxActors bounds the act chain read from a token.
const maxActors = 16

// IntrospectionConfig configures an IntrospectionVerifier.
type IntrospectionConfig struct {
	// Issuer is Kavach's base URL; required unless Endpoint is set.
	Issuer string
	// Endpoint is the RFC 7662 introspection endpoint; default Issuer +
	// "/api/auth/oauth2/introspect".
	Endpoint string
	// ClientID and ClientSecret authenticate the resource server
	// (client_secret_basic). Kavach answers about other clients' tokens
	// only to clients an operator registered (kavach client create, or
	// the admin API).
	ClientID, ClientSecret string
	// CacheTTL is how long an active answer is reused, at most until the
	// token expires; default 30 s. A revoked token stops working within
	// it. Negative turns the cache off.
	CacheTTL   time.Duration
	HTTPClient *http.Client
	Now        func() time.Time
}

// IntrospectionVerifier asks the authorization server about each token
// (RFC 7662), for opaque tokens or where revocation must take effect at
// once: a revoked token, or one whose agent was suspended, is refused
// within CacheTTL. It costs a round trip per token per CacheTTL.
type IntrospectionVerifier struct {
	cfg    IntrospectionConfig
	client *http.Client

	mu    sync.Mutex
	cache map[[sha256.Size]byte]introspected
}

type introspected struct {
	info  *TokenInfo
	until time.Time
}

// NewIntrospectionVerifier checks cfg and returns a verifier.
func NewIntrospectionVerifier(cfg IntrospectionConfig) (*IntrospectionVerifier, error) {
	if cfg.Endpoint == "" {
		if cfg.Issuer == "" {
			return nil, errors.New("mcp: IntrospectionConfig needs Issuer or Endpoint")
		}
		cfg.Endpoint = strings.TrimSuffix(cfg.Issuer, "/") + "/api/auth/oauth2/introspect"
	}
	if _, err := parseResource(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("mcp: IntrospectionConfig.Endpoint: %w", err)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("mcp: IntrospectionConfig needs ClientID and ClientSecret")
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &IntrospectionVerifier{cfg: cfg, client: client}, nil
}

// introspection is an RFC 7662 answer.
type introspection struct {
	Active     bool            `json:"active"`
	Subject    string          `json:"sub"`
	ClientID   string          `json:"client_id"`
	Scope      string          `json:"scope"`
	Audience   json.RawMessage `json:"aud"`
	ExpiresAt  int64           `json:"exp"`
	IssuedAt   int64           `json:"iat"`
	JTI        string          `json:"jti"`
	TokenType  string          `json:"token_type"`
	TrustLevel string          `json:"trust_level"`
}

// VerifyAccessToken implements Verifier.
func (v *IntrospectionVerifier) VerifyAccessToken(ctx context.Context, token string) (*TokenInfo, error) {
	sum := sha256.Sum256([]byte(token))
	now := v.cfg.Now()
	v.mu.Lock()
	if c, ok := v.cache[sum]; ok && now.Before(c.until) {
		v.mu.Unlock()
		return c.info, nil
	}
	v.mu.Unlock()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(v.cfg.ClientID), url.QueryEscape(v.cfg.ClientSecret))
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mcp: introspect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mcp: introspect: %s answered %d", v.cfg.Endpoint, resp.StatusCode)
	}
	var in introspection
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&in); err != nil {
		return nil, fmt.Errorf("mcp: introspect: the answer does not parse: %w", err)
	}
	exp := time.Unix(in.ExpiresAt, 0).UTC()
	if !in.Active || in.ExpiresAt == 0 || !now.Before(exp) {
		return nil, fmt.Errorf("%w: not active", ErrInvalidToken)
	}
	if in.TokenType != "" && !strings.EqualFold(in.TokenType, "bearer") && !strings.EqualFold(in.TokenType, "access_token") {
		return nil, fmt.Errorf("%w: not an access token", ErrInvalidToken)
	}
	if in.Subject == "" {
		in.Subject = in.ClientID // a client acting for itself (client_credentials); sub is optional in RFC 7662
	}
	info := &TokenInfo{Subject: in.Subject, ClientID: in.ClientID, JTI: in.JTI, Scopes: strings.Fields(in.Scope),
		IssuedAt: time.Unix(in.IssuedAt, 0).UTC(), ExpiresAt: exp, TrustLevel: in.TrustLevel}
	var one string
	if json.Unmarshal(in.Audience, &one) == nil && one != "" {
		info.Audience = []string{one}
	} else {
		_ = json.Unmarshal(in.Audience, &info.Audience)
	}
	if v.cfg.CacheTTL > 0 {
		until := now.Add(v.cfg.CacheTTL)
		if exp.Before(until) {
			until = exp
		}
		v.mu.Lock()
		if v.cache == nil || len(v.cache) >= maxVerified {
			v.cache = make(map[[sha256.Size]byte]introspected)
		}
		v.cache[sum] = introspected{info: info, until: until}
		v.mu.Unlock()
	}
	return info, nil
}
