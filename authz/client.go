package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/kavachos/kavach/storage"
)

// Token endpoint authentication methods.
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// Grant types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// ClientMetadata is RFC 7591 client metadata. Unknown fields are ignored
// on input (MCP clients send extras such as "resource").
type ClientMetadata struct {
	RedirectURIs                []string        `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod     string          `json:"token_endpoint_auth_method,omitempty"`
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	GrantTypes                  []string        `json:"grant_types,omitempty"`
	ResponseTypes               []string        `json:"response_types,omitempty"`
	ClientName                  string          `json:"client_name,omitempty"`
	ClientURI                   string          `json:"client_uri,omitempty"`
	LogoURI                     string          `json:"logo_uri,omitempty"`
	Scope                       string          `json:"scope,omitempty"`
	Contacts                    []string        `json:"contacts,omitempty"`
	TOSURI                      string          `json:"tos_uri,omitempty"`
	PolicyURI                   string          `json:"policy_uri,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	SoftwareID                  string          `json:"software_id,omitempty"`
	SoftwareVersion             string          `json:"software_version,omitempty"`
	ApplicationType             string          `json:"application_type,omitempty"`
}

// MetadataError is an RFC 7591 §3.2.2 error.
type MetadataError struct {
	Code        string // invalid_redirect_uri | invalid_client_metadata
	Description string
}

func (e *MetadataError) Error() string { return e.Code + ": " + e.Description }

func badMetadata(format string, a ...any) error {
	return &MetadataError{Code: "invalid_client_metadata", Description: fmt.Sprintf(format, a...)}
}

var supportedGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantJWTBearer, GrantTokenExchange}

// normalize validates m in place, filling RFC 7591 defaults. scopes are the
// server's supported scopes.
func (m *ClientMetadata) normalize(scopes []string) error {
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = AuthClientSecretBasic
	}
	switch m.TokenEndpointAuthMethod {
	case AuthNone, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT:
	default:
		return badMetadata("token_endpoint_auth_method %q is not supported", m.TokenEndpointAuthMethod)
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{GrantAuthorizationCode}
	}
	for _, g := range m.GrantTypes {
		if !slices.Contains(supportedGrants, g) {
			return badMetadata("grant type %q is not supported (OAuth 2.1: no implicit or password grant)", g)
		}
	}
	m.GrantTypes = uniq(m.GrantTypes)
	if len(m.ResponseTypes) == 0 && slices.Contains(m.GrantTypes, GrantAuthorizationCode) {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return badMetadata("response type %q is not supported; only \"code\"", rt)
		}
	}
	if len(m.RedirectURIs) == 0 && slices.Contains(m.GrantTypes, GrantAuthorizationCode) {
		return &MetadataError{Code: "invalid_redirect_uri", Description: "redirect_uris is required for the authorization_code grant"}
	}
	// Checked whatever the grants: a stored redirect URI is trusted later.
	for _, u := range m.RedirectURIs {
		if checkRegisteredRedirect(u) != nil {
			return &MetadataError{Code: "invalid_redirect_uri", Description: fmt.Sprintf("redirect URI %q must be https, or http on a loopback host, without fragment", u)}
		}
	}
	if m.TokenEndpointAuthMethod == AuthNone {
		for _, g := range []string{GrantClientCredentials, GrantJWTBearer, GrantTokenExchange} {
			if slices.Contains(m.GrantTypes, g) {
				return badMetadata("a public client (token_endpoint_auth_method none) cannot use %s", g)
			}
		}
	}
	if m.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
		if (m.JWKSURI == "") == (len(m.JWKS) == 0) {
			return badMetadata("private_key_jwt needs exactly one of jwks or jwks_uri")
		}
		if m.JWKSURI != "" && !strings.HasPrefix(m.JWKSURI, "https://") {
			return badMetadata("jwks_uri must be https")
		}
		if len(m.JWKS) > 0 {
			var set josev3.JSONWebKeySet
			if err := json.Unmarshal(m.JWKS, &set); err != nil || len(set.Keys) == 0 {
				return badMetadata("jwks must be a JWK set with at least one key")
			}
			for _, k := range set.Keys {
				if !k.IsPublic() {
					return badMetadata("jwks must hold public keys only")
				}
			}
			if m.TokenEndpointAuthSigningAlg == "" {
				// Unset means "whatever the key is for" (OIDC Dynamic
				// Registration); fosite needs one algorithm, so take it
				// from the first key.
				m.TokenEndpointAuthSigningAlg = algOfKey(set.Keys[0])
			}
		}
		switch m.TokenEndpointAuthSigningAlg {
		case "", "RS256", "ES256", "EdDSA":
		default:
			return badMetadata("token_endpoint_auth_signing_alg must be RS256, ES256 or EdDSA")
		}
	} else if m.JWKSURI != "" || len(m.JWKS) > 0 {
		return badMetadata("jwks and jwks_uri are only for private_key_jwt")
	}
	if m.Scope != "" {
		for _, s := range strings.Fields(m.Scope) {
			if !slices.Contains(scopes, s) {
				return badMetadata("scope %q is not supported", s)
			}
		}
	}
	switch m.ApplicationType {
	case "", "web", "native":
	default:
		return badMetadata("application_type must be web or native")
	}
	if len(m.ClientName) > 200 {
		return badMetadata("client_name is too long")
	}
	return nil
}

// algOfKey is the signing algorithm a public JWK implies.
func algOfKey(k josev3.JSONWebKey) string {
	if k.Algorithm != "" {
		return k.Algorithm
	}
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		if key.Curve == elliptic.P256() {
			return "ES256"
		}
	case ed25519.PublicKey:
		return "EdDSA"
	case *rsa.PublicKey:
		return "RS256"
	}
	return "RS256"
}

func uniq(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Client is a registered client as fosite sees it.
type Client struct {
	Record   storage.OAuthClient
	Metadata ClientMetadata
	scopes   []string // allowed scopes
	audience []string // registered resources it may request
	jwks     *josev3.JSONWebKeySet
	// redirect, when set, is the one redirect URI this request matched by
	// our rules (loopback ports may differ from the registered URI); fosite
	// then compares exactly against it.
	redirect string
}

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
)

func newClient(rec storage.OAuthClient, supportedScopes, resources []string) (*Client, error) {
	c := &Client{Record: rec, audience: resources}
	if err := json.Unmarshal(rec.Metadata, &c.Metadata); err != nil {
		return nil, fmt.Errorf("client %s: decode metadata: %w", rec.ID, err)
	}
	c.scopes = supportedScopes
	if c.Metadata.Scope != "" {
		c.scopes = strings.Fields(c.Metadata.Scope)
	}
	if len(c.Metadata.JWKS) > 0 {
		var set josev3.JSONWebKeySet
		if err := json.Unmarshal(c.Metadata.JWKS, &set); err != nil {
			return nil, fmt.Errorf("client %s: decode jwks: %w", rec.ID, err)
		}
		c.jwks = &set
	}
	return c, nil
}

// Name is what consent pages show: client_name, else the id.
func (c *Client) Name() string {
	if c.Metadata.ClientName != "" {
		return c.Metadata.ClientName
	}
	return c.Record.ID
}

func (c *Client) GetID() string { return c.Record.ID }

// GetHashedSecret is the hex SHA-256 of the secret (see secretHasher).
func (c *Client) GetHashedSecret() []byte { return []byte(c.Record.SecretHash) }

func (c *Client) GetRedirectURIs() []string {
	if c.redirect != "" {
		return []string{c.redirect}
	}
	return c.Metadata.RedirectURIs
}

func (c *Client) GetGrantTypes() fosite.Arguments    { return c.Metadata.GrantTypes }
func (c *Client) GetResponseTypes() fosite.Arguments { return c.Metadata.ResponseTypes }
func (c *Client) GetScopes() fosite.Arguments        { return c.scopes }
func (c *Client) IsPublic() bool                     { return c.Metadata.TokenEndpointAuthMethod == AuthNone }
func (c *Client) GetAudience() fosite.Arguments      { return c.audience }

func (c *Client) GetRequestURIs() []string                 { return nil }
func (c *Client) GetJSONWebKeys() *josev3.JSONWebKeySet    { return c.jwks }
func (c *Client) GetJSONWebKeysURI() string                { return c.Metadata.JWKSURI }
func (c *Client) GetRequestObjectSigningAlgorithm() string { return "" }
func (c *Client) GetTokenEndpointAuthMethod() string       { return c.Metadata.TokenEndpointAuthMethod }
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.Metadata.TokenEndpointAuthSigningAlg == "" {
		return "RS256"
	}
	return c.Metadata.TokenEndpointAuthSigningAlg
}

// withRedirect returns a copy that lists only the matched redirect URI.
func (c *Client) withRedirect(uri string) *Client {
	cp := *c
	cp.redirect = uri
	return &cp
}

// secretHasher stores client secrets as hex SHA-256: they are 256-bit
// random values made by the server, so a slow hash would only cost
// throughput (bcrypt is what caps Hydra's client_credentials rate).
type secretHasher struct{}

var _ fosite.Hasher = secretHasher{}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (secretHasher) Compare(_ context.Context, hash, data []byte) error {
	if len(hash) == 0 || subtle.ConstantTimeCompare(hash, []byte(hashSecret(string(data)))) != 1 {
		return errors.New("client secret mismatch")
	}
	return nil
}

func (secretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return []byte(hashSecret(string(data))), nil
}
