package kavach

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/mcp"
)

// OAuthConfig configures the OAuth 2.1 authorization server.
type OAuthConfig struct {
	AccessTokenTTL  time.Duration // default 1 h
	RefreshTokenTTL time.Duration // default 30 days
	// AccessTokenAlg signs access tokens: "ES256" (default) or "EdDSA".
	AccessTokenAlg string
	// LoginPage and ConsentPage send browsers to the app's own pages
	// instead of Kavach's built-in ones; return_to is appended. An app's
	// consent page approves with POST /api/auth/oauth2/consent.
	LoginPage   string
	ConsentPage string
	// DisableDynamicRegistration turns RFC 7591 registration off.
	DisableDynamicRegistration bool
	// Resources are further protected resources (RFC 8707) tokens may be
	// issued for, e.g. https://tools.example.com/mcp, besides Kavach's own
	// BASE_URL/mcp, which is also the default audience of requests that
	// name none.
	Resources []string
	// AllowDynamicMachineClients lets open registration (RFC 7591) create
	// client_credentials clients. Off by default: anyone could otherwise
	// mint machine tokens for every resource.
	AllowDynamicMachineClients bool
	// DisableClientMetadataDocuments turns off client ID metadata
	// documents (https client ids fetched as the client's metadata).
	DisableClientMetadataDocuments bool
	// AllowInsecureClientMetadata lets metadata documents (and client
	// jwks_uri) be fetched over http and from loopback or private
	// addresses. Development only: production refuses it.
	AllowInsecureClientMetadata bool
	// TrustedIssuers turns on the RFC 7523 jwt-bearer grant: a client
	// presents an assertion signed by one of these issuers and gets a token
	// for the assertion's subject.
	TrustedIssuers []authz.TrustedIssuer
}

// MCPScope is the scope Kavach's own MCP endpoint requires.
const MCPScope = "mcp"

// setupOAuth builds the keys, the authorization server and the /mcp
// resource, and mounts them on root.
func (k *Kavach) setupOAuth(ctx context.Context, root *http.ServeMux) error {
	keys, err := authz.NewKeyManager(ctx, k.Store, k.cfg.Secret, []string{"ES256", "EdDSA", "RS256"}, k.cfg.Now)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	mcpResource := k.cfg.BaseURL + "/mcp"
	resources := []authz.Resource{{URI: mcpResource, Name: "Kavach MCP"}}
	for _, r := range k.cfg.OAuth.Resources {
		resources = append(resources, authz.Resource{URI: r})
	}
	srv, err := authz.New(k.Store, keys, authz.Config{
		Issuer: k.cfg.BaseURL, Secret: k.cfg.Secret,
		AccessTokenTTL: k.cfg.OAuth.AccessTokenTTL, RefreshTokenTTL: k.cfg.OAuth.RefreshTokenTTL,
		AccessTokenAlg:             k.cfg.OAuth.AccessTokenAlg,
		Resources:                  resources,
		LoginURL:                   firstNonEmpty(k.cfg.OAuth.LoginPage, k.cfg.BaseURL+signInPagePath),
		ConsentURL:                 firstNonEmpty(k.cfg.OAuth.ConsentPage, k.cfg.BaseURL+consentPagePath),
		DisableDynamicRegistration: k.cfg.OAuth.DisableDynamicRegistration,
		TrustedIssuers:             k.cfg.OAuth.TrustedIssuers,
		AllowDynamicMachineClients: k.cfg.OAuth.AllowDynamicMachineClients,
		CIMD: authz.CIMDConfig{
			Enabled:       !k.cfg.OAuth.DisableClientMetadataDocuments,
			AllowInsecure: k.cfg.OAuth.AllowInsecureClientMetadata,
		},
		Agents: k.Agents, Audit: k.Audit, ClientIP: k.limits.ip.ClientIP, OnInvalidClient: trustObserver{k.Trust}.InvalidClient,
		OnRefreshTokenReuse: trustObserver{k.Trust}.RefreshTokenReuse, TrustScopes: k.trustScopes,
		TrustLevel: k.trustLevelOfAgent,
		Now:        k.cfg.Now, Logger: k.cfg.Logger,
	})
	if err != nil {
		return err
	}
	k.OAuth, k.Keys = srv, keys
	srv.Routes(root, k.browserPrincipal, k.checkOrigin)

	rc := mcp.ResourceConfig{
		Resource: mcpResource, AuthorizationServers: []string{k.cfg.BaseURL},
		ScopesSupported: []string{MCPScope}, RequiredScopes: []string{MCPScope},
		ResourceName: "Kavach MCP", Verifier: mcpVerifier{srv, k.Agents}, Logger: k.cfg.Logger,
	}
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("mcp resource: %w", err)
	}
	prm, err := mcp.MetadataPath(mcpResource)
	if err != nil {
		return err
	}
	root.Handle("GET "+prm, mcp.MetadataHandler(rc))
	root.Handle("GET /.well-known/oauth-protected-resource", mcp.MetadataHandler(rc))
	root.Handle("/mcp", k.withCaller(mcp.Handler(rc, k.mcpTools()...)))
	k.pages(root)
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// browserPrincipal is the authorize endpoint's view of the browser's
// session: the cookie only (a bearer token is not a browser sign-in).
func (k *Kavach) browserPrincipal(r *http.Request) (authz.Principal, bool) {
	view, ok := k.pageSession(r)
	if !ok {
		return authz.Principal{}, false
	}
	return authz.Principal{UserID: view.User.ID, AuthTime: view.Session.CreatedAt}, true
}

// mcpVerifier adapts the authorization server's token check to the mcp
// package (which must not depend on authz's types).
type mcpVerifier struct {
	s      *authz.Server
	agents *agents.Service
}

func (v mcpVerifier) VerifyAccessToken(ctx context.Context, token string) (*mcp.TokenInfo, error) {
	c, err := v.s.VerifyAccessToken(ctx, token)
	if errors.Is(err, authz.ErrTokenInvalid) {
		return nil, fmt.Errorf("%w: %v", mcp.ErrInvalidToken, err)
	}
	if err != nil {
		return nil, err
	}
	// Every client is an agent: a suspended or revoked one, or one below
	// such an agent in a delegation chain, is refused at once.
	if _, err := v.agents.ClientAgent(ctx, c.ClientID); err != nil {
		if agents.MayNotAct(err) {
			return nil, fmt.Errorf("%w: the client's agent may not act", mcp.ErrInvalidToken)
		}
		return nil, err
	}
	info := &mcp.TokenInfo{
		Subject: c.Subject, ClientID: c.ClientID, JTI: c.JTI, Scopes: strings.Fields(c.Scope),
		Audience: []string(c.Audience), IssuedAt: time.Unix(c.IssuedAt, 0).UTC(), ExpiresAt: time.Unix(c.ExpiresAt, 0).UTC(),
	}
	if c.AuthTime != 0 {
		t := time.Unix(c.AuthTime, 0).UTC()
		info.AuthTime = &t
	}
	info.Actors = c.Act.Chain()
	info.TrustLevel = c.TrustLevel
	return info, nil
}

// trustLevelOfAgent is an agent's trust level, for the trust_level claim
// (false when it cannot be told).
func (k *Kavach) trustLevelOfAgent(ctx context.Context, agentID string) (string, bool) {
	l, err := k.Trust.LevelOf(ctx, agentID)
	if err != nil {
		k.cfg.Logger.Warn("trust level for a token", "agent", agentID, "err", err)
		return "", false
	}
	return string(l), true
}
