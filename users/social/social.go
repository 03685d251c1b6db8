// Package social is the client side of social sign-in: it sends people to
// an OAuth 2.0 or OpenID Connect provider (GitHub, Google, Microsoft,
// Apple, GitLab, Discord, or any OIDC issuer) and turns what comes back
// into a verified identity. It knows providers and protocols only; who
// signs in, and how accounts are stored, is package users' business.
//
// Every flow uses a random state, PKCE (S256) and, for OIDC providers, a
// nonce. ID tokens are verified against the provider's published keys
// (signature, issuer, audience, expiry) and the nonce of the flow. Every
// response from a provider is read through a size limit and under a
// timeout, and tokens are never logged.
package social

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Provider types. A provider's Type defaults to its ID when the ID names a
// built-in, and to TypeOIDC otherwise.
const (
	TypeGitHub    = "github"
	TypeGoogle    = "google"
	TypeMicrosoft = "microsoft"
	TypeApple     = "apple"
	TypeGitLab    = "gitlab"
	TypeDiscord   = "discord"
	TypeOIDC      = "oidc"
)

// Config configures one provider. Only ID, ClientID and ClientSecret are
// needed for the built-ins (Apple takes TeamID, KeyID and PrivateKey
// instead of a secret; a generic OIDC provider also needs Issuer).
type Config struct {
	// ID names the provider in routes (/api/auth/oauth/<id>) and accounts:
	// lower-case letters, digits and dashes.
	ID string
	// Type is the protocol variant: github, google, microsoft, apple,
	// gitlab, discord or oidc. Default: the ID when it is one of those,
	// else oidc.
	Type string
	// Name is shown by GET /api/auth/oauth/providers; default from the type.
	Name         string
	ClientID     string
	ClientSecret string
	// Scopes replace the type's default scopes.
	Scopes []string
	// Issuer is the OIDC issuer (discovery at Issuer +
	// /.well-known/openid-configuration). Required for type oidc; for
	// GitLab it is https://gitlab.com or your own instance. For Microsoft
	// it is the discovery base; set Tenant instead.
	Issuer string
	// Tenant is the Microsoft Entra tenant: "common" (default: work,
	// school and personal accounts), "organizations", "consumers", or a
	// tenant id or domain.
	Tenant string
	// AuthURL, TokenURL, UserInfoURL and EmailsURL override the endpoints
	// of the non-OIDC types (GitHub Enterprise, tests). EmailsURL is
	// GitHub's list of addresses.
	AuthURL     string
	TokenURL    string
	UserInfoURL string
	EmailsURL   string
	// Apple: the team id, the key id and the ES256 private key (PEM,
	// PKCS #8 as Apple issues it) from which the client secret is made.
	TeamID     string
	KeyID      string
	PrivateKey string
}

// Info describes a configured provider to clients.
type Info struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Identity is what a provider says about the person who signed in.
type Identity struct {
	// Subject is the provider's stable id of the account.
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Image         string
}

// Tokens are what the provider issued. They are secrets: seal them before
// storing and never log them.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	Expiry       time.Time // zero when the provider did not say
	Scope        string
}

// Errors. They never carry tokens.
var (
	ErrUnknownProvider = errors.New("social: no such provider")
	// ErrProvider is a provider that could not be reached, or answered
	// with an error or something that is not what the protocol says.
	ErrProvider = errors.New("social: the provider refused or failed")
	// ErrIDToken is an ID token that does not verify: signature, issuer,
	// audience, expiry or nonce.
	ErrIDToken = errors.New("social: the ID token is invalid")
	// ErrNoEmail is an account for which the provider gave no address.
	ErrNoEmail = errors.New("social: the provider gave no email address")
)

// MaxResponseBytes bounds every response read from a provider.
const MaxResponseBytes = 1 << 20

// Options are the registry's environment.
type Options struct {
	// Development allows http endpoints (a provider on loopback in tests).
	Development bool
	// HTTPClient makes the requests to providers; default a client with
	// a 10-second timeout. Its responses are bounded either way.
	HTTPClient *http.Client
	Now        func() time.Time
}

// Registry holds the configured providers.
type Registry struct {
	providers map[string]*provider
	order     []string
	client    *http.Client
	now       func() time.Time
}

var idRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$`)

// reserved ids are taken by routes or by the password account.
var reserved = []string{"providers", "link", "unlink", "credential"}

func typeOf(c Config) string {
	if c.Type != "" {
		return c.Type
	}
	switch c.ID {
	case TypeGitHub, TypeGoogle, TypeMicrosoft, TypeApple, TypeGitLab, TypeDiscord:
		return c.ID
	}
	return TypeOIDC
}

// Validate checks provider configurations; every problem is reported.
func Validate(cfgs []Config, development bool) error {
	var errs []error
	bad := func(id, format string, a ...any) {
		errs = append(errs, fmt.Errorf("social provider %q: %s", id, fmt.Sprintf(format, a...)))
	}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if !idRE.MatchString(c.ID) || slices.Contains(reserved, c.ID) {
			bad(c.ID, "id must be 1-32 lower-case letters, digits or dashes, and not one of %v", reserved)
		}
		if seen[c.ID] {
			bad(c.ID, "configured twice")
		}
		seen[c.ID] = true
		typ := typeOf(c)
		switch typ {
		case TypeGitHub, TypeGoogle, TypeMicrosoft, TypeApple, TypeGitLab, TypeDiscord, TypeOIDC:
		default:
			bad(c.ID, "unknown type %q", typ)
			continue
		}
		if c.ClientID == "" {
			bad(c.ID, "client id is required")
		}
		if typ == TypeApple {
			if c.ClientSecret == "" && (c.TeamID == "" || c.KeyID == "" || c.PrivateKey == "") {
				bad(c.ID, "Apple needs team id, key id and private key (or a client secret you generated)")
			}
			if c.PrivateKey != "" {
				if _, err := parseAppleKey(c.PrivateKey); err != nil {
					bad(c.ID, "%v", err)
				}
			}
		} else if c.ClientSecret == "" {
			bad(c.ID, "client secret is required")
		}
		if typ == TypeOIDC && c.Issuer == "" {
			bad(c.ID, "issuer is required for a generic OIDC provider")
		}
		for name, u := range map[string]string{"issuer": c.Issuer, "auth URL": c.AuthURL, "token URL": c.TokenURL, "user info URL": c.UserInfoURL, "emails URL": c.EmailsURL} {
			if u == "" {
				continue
			}
			p, err := url.Parse(u)
			if err != nil || p.Host == "" || p.User != nil || p.Fragment != "" || !(p.Scheme == "https" || development && p.Scheme == "http") {
				bad(c.ID, "%s must be an https URL (http only in development)", name)
			}
		}
	}
	return errors.Join(errs...)
}

// New builds the registry. Nothing is fetched yet: OIDC discovery happens
// at a provider's first use, and is retried after a failure.
func New(cfgs []Config, opts Options) (*Registry, error) {
	if err := Validate(cfgs, opts.Development); err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	bounded := *client
	base := bounded.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	bounded.Transport = limitTransport{base}
	// A provider's endpoints never redirect in the protocol; following one
	// would send the client secret's answer somewhere else.
	bounded.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := &Registry{providers: map[string]*provider{}, client: &bounded, now: opts.Now}
	if r.now == nil {
		r.now = time.Now
	}
	for _, c := range cfgs {
		p := &provider{cfg: c, typ: typeOf(c), reg: r}
		if p.cfg.Name == "" {
			p.cfg.Name = defaultNames[p.typ]
			if p.typ == TypeOIDC {
				p.cfg.Name = c.ID
			}
		}
		if p.typ == TypeApple && c.PrivateKey != "" {
			p.appleKey, _ = parseAppleKey(c.PrivateKey) // checked by Validate
		}
		r.providers[c.ID] = p
		r.order = append(r.order, c.ID)
	}
	return r, nil
}

var defaultNames = map[string]string{
	TypeGitHub: "GitHub", TypeGoogle: "Google", TypeMicrosoft: "Microsoft", TypeApple: "Apple",
	TypeGitLab: "GitLab", TypeDiscord: "Discord",
}

// Providers lists the configured providers in configuration order.
func (r *Registry) Providers() []Info {
	if r == nil {
		return []Info{}
	}
	out := make([]Info, 0, len(r.order))
	for _, id := range r.order {
		p := r.providers[id]
		out = append(out, Info{ID: id, Name: p.cfg.Name, Type: p.typ})
	}
	return out
}

// Has reports whether id is a configured provider.
func (r *Registry) Has(id string) bool {
	if r == nil {
		return false
	}
	_, ok := r.providers[id]
	return ok
}

// FormPost reports whether the provider answers with a cross-site POST
// (response_mode=form_post: Apple).
func (r *Registry) FormPost(id string) bool {
	p, err := r.get(id)
	return err == nil && p.typ == TypeApple
}

// UsesNonce reports whether the provider's flow carries an OIDC nonce.
func (r *Registry) UsesNonce(id string) bool {
	p, err := r.get(id)
	return err == nil && p.oidc()
}

func (r *Registry) get(id string) (*provider, error) {
	if r == nil {
		return nil, ErrUnknownProvider
	}
	p, ok := r.providers[id]
	if !ok {
		return nil, ErrUnknownProvider
	}
	return p, nil
}

// Request is one authorization request.
type Request struct {
	State       string
	Verifier    string // PKCE code verifier; only its S256 challenge is sent
	Nonce       string // OIDC providers
	RedirectURI string
}

// AuthCodeURL is where to send the browser to start a sign-in.
func (r *Registry) AuthCodeURL(ctx context.Context, id string, req Request) (string, error) {
	p, err := r.get(id)
	if err != nil {
		return "", err
	}
	return p.authCodeURL(ctx, req)
}

// Exchange redeems the code the provider sent back, verifies the ID token
// against the flow's nonce, and reads who signed in. appleUser is the
// "user" form field Apple posts on the first sign-in (it carries the
// name only then); it is ignored for other providers.
func (r *Registry) Exchange(ctx context.Context, id, code string, req Request, appleUser string) (Identity, Tokens, error) {
	p, err := r.get(id)
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	return p.exchange(ctx, code, req, appleUser)
}

// provider is one configured provider and its discovered endpoints.
type provider struct {
	cfg      Config
	typ      string
	reg      *Registry
	appleKey any

	mu   sync.Mutex
	disc *discovered // OIDC, after the first successful discovery
}

func (p *provider) oidc() bool {
	switch p.typ {
	case TypeGitHub, TypeDiscord:
		return false
	}
	return true
}

// limitTransport bounds every response body read from a provider.
type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{io.LimitReader(resp.Body, MaxResponseBytes), resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// providerError wraps a failure as ErrProvider, keeping the detail for the
// log. Callers must not pass anything holding a token.
func providerError(what string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %s", ErrProvider, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrProvider, what, err)
}

func trimScope(scopes []string) string { return strings.Join(scopes, " ") }
