package storage

import (
	"context"
	"time"
)

// OAuth client sources.
const (
	ClientSourcePreregistered = "preregistered" // CLI or admin API
	ClientSourceDynamic       = "dynamic"       // RFC 7591 registration
	ClientSourceMetadataDoc   = "metadata-document"
)

// OAuthClient is a client of the authorization server (table
// kavach_oauth_client). Metadata holds the client's RFC 7591 metadata as
// JSON (redirect_uris, grant_types, token_endpoint_auth_method, jwks, …),
// owned and validated by package authz; storage treats it as opaque.
// Secrets and registration access tokens are stored as SHA-256 only.
type OAuthClient struct {
	ID                    string
	SecretHash            string // hex SHA-256 of the client secret; "" for public clients
	RegistrationTokenHash string // hex SHA-256 of the RFC 7592 registration access token; "" if none
	Source                string
	Metadata              []byte
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

// OAuthClients stores OAuth clients.
type OAuthClients interface {
	Create(ctx context.Context, c *OAuthClient) error // ErrAlreadyExists on duplicate ID
	Get(ctx context.Context, id string) (*OAuthClient, error)
	// Update writes SecretHash, RegistrationTokenHash, Metadata, UpdatedAt.
	Update(ctx context.Context, c *OAuthClient) error
	Delete(ctx context.Context, id string) error                        // cascades to the client's tokens and consents
	List(ctx context.Context, limit, offset int) ([]OAuthClient, error) // by CreatedAt, ID
}

// Kinds of OAuthToken.
const (
	TokenKindCode    = "code"    // authorization code
	TokenKindAccess  = "access"  // access token (JWT; kept for introspection and revocation)
	TokenKindRefresh = "refresh" // refresh token
	TokenKindPKCE    = "pkce"    // PKCE challenge of an authorization code
	TokenKindOIDC    = "oidc"    // OpenID Connect session of an authorization code
	// TokenKindAssertion marks a used private_key_jwt assertion (Signature
	// is the hash of its jti), so an assertion cannot be replayed.
	TokenKindAssertion = "jti"
)

// OAuthToken is one persisted authorization-server request, stored under a
// token signature (table kavach_oauth_token). Signature is the SHA-256
// (hex) of the token's signature part, never the token. RequestID groups
// everything one grant produced (code, access and refresh tokens), so a
// replay or a revocation can end all of it. Data is the request and
// session as JSON, owned by package authz.
type OAuthToken struct {
	Kind        string
	Signature   string
	RequestID   string
	ClientID    string
	Subject     string // user id, or "" for client_credentials
	Active      bool
	RequestedAt time.Time
	ExpiresAt   time.Time
	Data        []byte
}

// OAuthTokens stores OAuthToken rows.
type OAuthTokens interface {
	Create(ctx context.Context, t *OAuthToken) error // ErrAlreadyExists on duplicate (Kind, Signature)
	// Get returns the row whatever its Active flag (callers decide what an
	// inactive row means); ErrNotFound if there is none.
	Get(ctx context.Context, kind, signature string) (*OAuthToken, error)
	Delete(ctx context.Context, kind, signature string) error // ErrNotFound if none
	// Deactivate marks one row inactive and reports whether it was active:
	// exactly one of concurrent callers gets true (single-use codes,
	// refresh rotation).
	Deactivate(ctx context.Context, kind, signature string) (bool, error)
	// DeactivateRequest marks every row of kind in the request inactive
	// (e.g. all access tokens of a grant whose refresh token was reused);
	// returns how many changed.
	DeactivateRequest(ctx context.Context, kind, requestID string) (int, error)
	// DeleteRequest deletes every row of kind in the request.
	DeleteRequest(ctx context.Context, kind, requestID string) (int, error)
	// DeactivateSubject marks every row of the subject inactive (the user
	// was deleted or must sign in again everywhere); returns how many.
	DeactivateSubject(ctx context.Context, subject string) (int, error)
	// DeactivateClient marks every row of the client inactive (its
	// registration changed in a way earlier grants did not cover).
	DeactivateClient(ctx context.Context, clientID string) (int, error)
	// DeleteExpired removes rows whose ExpiresAt <= before.
	DeleteExpired(ctx context.Context, before time.Time) (int, error)
}

// SigningKey is an asymmetric key the server signs tokens with (table
// kavach_signing_key). Sealed is the private key sealed with the server
// secret (package authz seals and opens it; storage never sees it in
// clear). A key signs until RetiredAt and is published in the JWKS until
// ExpiresAt (RetiredAt plus the longest lifetime of what it signed).
type SigningKey struct {
	KID       string
	Algorithm string // "EdDSA", "ES256", "RS256"
	Sealed    []byte
	CreatedAt time.Time
	RetiredAt *time.Time
	ExpiresAt *time.Time
}

// SigningKeys stores signing keys.
type SigningKeys interface {
	Create(ctx context.Context, k *SigningKey) error // ErrAlreadyExists on duplicate KID
	// List returns keys not yet expired at now (ExpiresAt nil or > now),
	// oldest first.
	List(ctx context.Context, now time.Time) ([]SigningKey, error)
	// Retire sets RetiredAt and ExpiresAt of a key that is not retired yet
	// and reports whether it did.
	Retire(ctx context.Context, kid string, retiredAt, expiresAt time.Time) (bool, error)
}

// OAuthConsent is a user's remembered approval of a client for some scopes
// on one resource (table kavach_oauth_consent, key user × client ×
// resource).
type OAuthConsent struct {
	UserID    string
	ClientID  string
	Resource  string   // the RFC 8707 resource ("" for none)
	Scopes    []string // granted scopes, sorted, unique
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OAuthConsents stores consents.
type OAuthConsents interface {
	// Put creates or replaces the consent for (UserID, ClientID, Resource).
	Put(ctx context.Context, c *OAuthConsent) error
	Get(ctx context.Context, userID, clientID, resource string) (*OAuthConsent, error)
	ListByUser(ctx context.Context, userID string) ([]OAuthConsent, error)
	Delete(ctx context.Context, userID, clientID string) (int, error) // every resource of that pair
	// DeleteByClient removes every user's consent for the client.
	DeleteByClient(ctx context.Context, clientID string) (int, error)
}
