package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kavachos/kavach/internal/text"
)

// TokenInfo is what a verified access token says.
type TokenInfo struct {
	Subject   string
	ClientID  string
	JTI       string
	Scopes    []string
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	AuthTime  *time.Time
	// Actors are the clients acting for Subject, earliest first, when the
	// token came from a token exchange (its nested "act" claims); the
	// last one is ClientID.
	Actors []string
	// TrustLevel is the trust_level claim: the client's agent's trust
	// level when the token was issued ("" when absent).
	TrustLevel string
}

// Verifier checks a bearer token's signature, expiry and revocation state
// (implemented by package authz). It returns ErrInvalidToken (wrapped is
// fine) for anything a client could fix by getting a new token; any other
// error is treated as the server's fault and answered with 500.
//
// The audience and scope checks are not the verifier's job: RequireBearer
// does them against its ResourceConfig.
type Verifier interface {
	VerifyAccessToken(ctx context.Context, token string) (*TokenInfo, error)
}

// ErrInvalidToken reports a token that is malformed, badly signed, expired or
// revoked.
var ErrInvalidToken = errors.New("invalid token")

// ResourceConfig describes one protected resource (an MCP endpoint).
type ResourceConfig struct {
	// Resource is the canonical URI of this protected resource, e.g.
	// https://auth.example.com/mcp. It is published verbatim as the PRM
	// "resource", so it must be exactly the URL clients are configured with
	// (mcp-go requires equality up to scheme/host case and a trailing slash)
	// and the value the authorization server binds into the token "aud".
	Resource string
	// AuthorizationServers are issuer URLs, published verbatim. MCP clients
	// compare them with the issuer in the authorization server's metadata
	// (byte for byte from MCP 2026-07-28; mcp-go ignores a trailing slash).
	AuthorizationServers []string
	// ScopesSupported is advertised in the metadata. offline_access is
	// never advertised there, even if listed.
	ScopesSupported []string
	// RequiredScopes must all be granted to the token on every request.
	RequiredScopes []string
	// ResourceName is a human-readable name for the metadata.
	ResourceName string
	// Verifier checks tokens; RequireBearer needs it, MetadataHandler does
	// not.
	Verifier Verifier
	// Logger receives verifier failures that are not the client's fault.
	// Nil means slog.Default().
	Logger *slog.Logger
}

const (
	wellKnownPRMPath = "/.well-known/oauth-protected-resource"
	// offlineAccess asks the authorization server for a refresh token; it
	// says nothing about the resource, so the MCP spec keeps it out of PRM.
	offlineAccess = "offline_access"
)

// Validate reports whether cfg can protect a resource: a well-formed
// Resource, at least one authorization server, well-formed scopes, required
// scopes that are advertised, and a Verifier. RequireBearer and Handler
// panic on a config that fails it, so call it at start to get an error
// instead.
func (c ResourceConfig) Validate() error {
	if err := c.validateMetadata(); err != nil {
		return err
	}
	if c.Verifier == nil {
		return errors.New("mcp: ResourceConfig.Verifier is required")
	}
	return nil
}

// validateMetadata checks what MetadataHandler needs, which is everything
// but the Verifier.
func (c ResourceConfig) validateMetadata() error {
	if _, err := parseResource(c.Resource); err != nil {
		return err
	}
	if len(c.AuthorizationServers) == 0 {
		return errors.New("mcp: ResourceConfig.AuthorizationServers needs at least one issuer")
	}
	for _, issuer := range c.AuthorizationServers {
		u, err := url.Parse(issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("mcp: authorization server %q is not an http(s) URL without query or fragment", issuer)
		}
	}
	for _, s := range c.ScopesSupported {
		if !text.ScopeToken(s) {
			return fmt.Errorf("mcp: supported scope %q is not a valid scope token", s)
		}
	}
	for _, s := range c.RequiredScopes {
		if !text.ScopeToken(s) {
			return fmt.Errorf("mcp: required scope %q is not a valid scope token", s)
		}
		if s == offlineAccess {
			return errors.New("mcp: offline_access cannot be a required scope of a resource")
		}
		// A client that asks for what the metadata advertises must end up
		// with a token that passes; otherwise it loops on 403.
		if len(c.ScopesSupported) > 0 && !slices.Contains(c.ScopesSupported, s) {
			return fmt.Errorf("mcp: required scope %q is missing from ScopesSupported", s)
		}
	}
	return nil
}

// parseResource parses an RFC 8707 resource identifier: an absolute http(s)
// URI with a host and no fragment. A query is refused too, since RFC 9728
// path insertion gives it no clear well-known URL.
func parseResource(resource string) (*url.URL, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return nil, fmt.Errorf("mcp: resource %q: %w", resource, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("mcp: resource %q must be an http or https URL", resource)
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("mcp: resource %q needs a host and no user info", resource)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(resource, "#") {
		return nil, fmt.Errorf("mcp: resource %q must not have a query or fragment", resource)
	}
	return u, nil
}

// MetadataPath returns the path at which the RFC 9728 metadata of resource
// is served: "/.well-known/oauth-protected-resource" followed by the
// resource's path without its trailing slash (path insertion, RFC 9728
// §3.1). https://auth.example.com/mcp gives
// /.well-known/oauth-protected-resource/mcp; https://auth.example.com gives
// /.well-known/oauth-protected-resource.
func MetadataPath(resource string) (string, error) {
	u, err := parseResource(resource)
	if err != nil {
		return "", err
	}
	return wellKnownPRMPath + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// metadataURL is the absolute URL of resource's metadata, the value of the
// resource_metadata challenge parameter. mcp-go only follows it when its
// scheme and host match the URL the client was given, so it is built from
// the resource's own origin.
func metadataURL(resource string) (string, error) {
	u, err := parseResource(resource)
	if err != nil {
		return "", err
	}
	p, err := MetadataPath(resource)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host + p, nil
}

// canonicalResource normalises a resource identifier for comparison: scheme
// and host lower-cased, default port dropped, trailing slash dropped, empty
// path and "/" equal. The path keeps its case and escaping. The second
// result is false when s is not an absolute URI.
func canonicalResource(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Fragment != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	if port := u.Port(); (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	out := scheme + "://" + host + strings.TrimSuffix(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, true
}
