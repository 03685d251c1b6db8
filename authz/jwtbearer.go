package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/rfc7523"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// TrustedIssuer is an issuer whose signed assertions the jwt-bearer grant
// (RFC 7523 §2.1) accepts, such as an enterprise IdP issuing identity
// assertion grants (ID-JAG) for MCP's enterprise-managed authorization.
// The token it yields is for the assertion's sub: the user or agent the
// issuer vouches for. The presenting client must still authenticate and
// have the jwt-bearer grant type.
type TrustedIssuer struct {
	Issuer   string          // the assertions' "iss", byte for byte
	JWKS     json.RawMessage // inline public JWK set that signs them
	Subjects []string        // allowed "sub" values; empty = any
	Scopes   []string        // scopes grantable via this issuer; empty = none
}

// maxAssertionLifetime bounds exp - iat of a jwt-bearer assertion: a
// stolen one is good for little time, and its jti is kept until exp.
const maxAssertionLifetime = time.Hour

// trustedIssuer is a validated TrustedIssuer.
type trustedIssuer struct {
	subjects []string
	scopes   []string
	keys     josev3.JSONWebKeySet
}

func (t *trustedIssuer) allows(subject string) bool {
	return len(t.subjects) == 0 || slices.Contains(t.subjects, subject)
}

// newTrustedIssuers validates the configured issuers; scopes are the
// server's scopes.
func newTrustedIssuers(list []TrustedIssuer, scopes []string) (map[string]*trustedIssuer, error) {
	out := make(map[string]*trustedIssuer, len(list))
	for _, ti := range list {
		if ti.Issuer == "" {
			return nil, errors.New("authz: a trusted issuer needs an issuer identifier")
		}
		if _, dup := out[ti.Issuer]; dup {
			return nil, fmt.Errorf("authz: trusted issuer %q is listed twice", ti.Issuer)
		}
		var set josev3.JSONWebKeySet
		if err := json.Unmarshal(ti.JWKS, &set); err != nil || len(set.Keys) == 0 {
			return nil, fmt.Errorf("authz: trusted issuer %q: jwks must be a JWK set with at least one key", ti.Issuer)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
				return nil, fmt.Errorf("authz: trusted issuer %q: jwks must hold public signing keys only", ti.Issuer)
			}
		}
		for _, sc := range ti.Scopes {
			if !slices.Contains(scopes, sc) {
				return nil, fmt.Errorf("authz: trusted issuer %q: scope %q is not a scope of this server", ti.Issuer, sc)
			}
		}
		out[ti.Issuer] = &trustedIssuer{subjects: ti.Subjects, scopes: ti.Scopes, keys: set}
	}
	return out, nil
}

// jwtBearerStore is the fosite storage when trusted issuers are
// configured: fositeStore plus the keys, scopes and used jtis the
// jwt-bearer handler asks for.
type jwtBearerStore struct {
	*fositeStore
	issuers map[string]*trustedIssuer
}

var (
	_ fosite.Storage                = (*jwtBearerStore)(nil)
	_ oauth2.CoreStorage            = (*jwtBearerStore)(nil)
	_ oauth2.TokenRevocationStorage = (*jwtBearerStore)(nil)
	_ rfc7523.RFC7523KeyStorage     = (*jwtBearerStore)(nil)
	_ fosite.TokenEndpointHandler   = (*jwtBearerGrant)(nil)
	_ rfc7523.Session               = newSession() // fosite sets the subject through it
)

var errNoTrustedKey = errors.New("no trusted key for this issuer and subject")

func (s *jwtBearerStore) issuer(iss, sub string) (*trustedIssuer, error) {
	ti, ok := s.issuers[iss]
	if !ok || !ti.allows(sub) {
		return nil, errNoTrustedKey
	}
	return ti, nil
}

func (s *jwtBearerStore) GetPublicKey(_ context.Context, iss, sub, kid string) (*josev3.JSONWebKey, error) {
	ti, err := s.issuer(iss, sub)
	if err != nil {
		return nil, err
	}
	keys := ti.keys.Key(kid)
	if len(keys) == 0 {
		return nil, errNoTrustedKey
	}
	return &keys[0], nil
}

func (s *jwtBearerStore) GetPublicKeys(_ context.Context, iss, sub string) (*josev3.JSONWebKeySet, error) {
	ti, err := s.issuer(iss, sub)
	if err != nil {
		return nil, err
	}
	return &ti.keys, nil
}

func (s *jwtBearerStore) GetPublicKeyScopes(_ context.Context, iss, sub, _ string) ([]string, error) {
	ti, err := s.issuer(iss, sub)
	if err != nil {
		return nil, err
	}
	return ti.scopes, nil
}

// jtis are unique per issuer (RFC 7523 §3), and fosite hands us only the
// jti: the issuer and the authenticated client come from the request, via
// the context jwtBearerGrant sets.
type bearerRequestKey struct{}

type bearerRequest struct {
	issuer, subject, clientID string
}

func bearerRequestOf(ctx context.Context) (bearerRequest, error) {
	br, ok := ctx.Value(bearerRequestKey{}).(bearerRequest)
	if !ok || br.issuer == "" || br.clientID == "" {
		return br, errors.New("authz: jwt-bearer request context missing")
	}
	return br, nil
}

func assertionJTISignature(issuer, jti string) string { return id.Hash(issuer + "\x00" + jti) }

func (s *jwtBearerStore) IsJWTUsed(ctx context.Context, jti string) (bool, error) {
	br, err := bearerRequestOf(ctx)
	if err != nil {
		return false, err
	}
	_, err = s.store.OAuthTokens().Get(ctx, storage.TokenKindAssertion, assertionJTISignature(br.issuer, jti))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up assertion jti: %w", err)
	}
	return true, nil
}

// MarkJWTUsedForTime records the jti until the assertion expires, against
// the client that presented it (the row's client is a foreign key). Of two
// concurrent uses, the second gets ErrJTIKnown.
func (s *jwtBearerStore) MarkJWTUsedForTime(ctx context.Context, jti string, exp time.Time) error {
	br, err := bearerRequestOf(ctx)
	if err != nil {
		return err
	}
	sig := assertionJTISignature(br.issuer, jti)
	err = s.store.OAuthTokens().Create(ctx, &storage.OAuthToken{
		Kind: storage.TokenKindAssertion, Signature: sig, RequestID: sig, ClientID: br.clientID, Subject: br.subject,
		Active: true, RequestedAt: s.now().UTC(), ExpiresAt: exp.UTC(), Data: []byte("{}"),
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fosite.ErrJTIKnown
	}
	if err != nil {
		return fmt.Errorf("record assertion jti: %w", err)
	}
	return nil
}

// jwtBearerFactory composes fosite's RFC 7523 handler inside jwtBearerGrant.
func jwtBearerFactory(config fosite.Configurator, store any, strategy any) any {
	return &jwtBearerGrant{Handler: compose.RFC7523AssertionGrantFactory(config, store, strategy).(*rfc7523.Handler)}
}

// jwtBearerGrant is fosite's jwt-bearer handler with what it leaves out:
// the client's own scope and audience limits (as client_credentials has),
// public clients refused, an ID-JAG's client_id bound to the presenting
// client, replays reported as invalid_grant rather than jti_known or
// server_error, and the token's audience being the requested resources
// (fosite grants the assertion's aud, which names this server).
type jwtBearerGrant struct {
	*rfc7523.Handler
}

func (g *jwtBearerGrant) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	client := req.GetClient()
	if client == nil || client.IsPublic() {
		return fosite.ErrUnauthorizedClient.WithHint("A public client cannot use the jwt-bearer grant.")
	}
	for _, sc := range req.GetRequestedScopes() {
		if !g.Config.GetScopeStrategy(ctx)(client.GetScopes(), sc) {
			return fosite.ErrInvalidScope.WithHintf("The client is not allowed to request scope %q.", sc)
		}
	}
	if err := g.Config.GetAudienceStrategy(ctx)(client.GetAudience(), req.GetRequestedAudience()); err != nil {
		return err
	}
	// Unverified here; fosite verifies the signature before the jti is
	// looked up, and a verified assertion has exactly these claims.
	claims := unverifiedAssertion(req.GetRequestForm().Get("assertion"))
	if claims.ClientID != "" && claims.ClientID != client.GetID() {
		return fosite.ErrInvalidGrant.WithHint("The assertion was issued to another client.")
	}
	ctx = context.WithValue(ctx, bearerRequestKey{}, bearerRequest{issuer: claims.Issuer, subject: claims.Subject, clientID: client.GetID()})
	err := g.Handler.HandleTokenEndpointRequest(ctx, req)
	if errors.Is(err, fosite.ErrJTIKnown) {
		return fosite.ErrInvalidGrant.WithHint("The assertion was already used.")
	}
	if err != nil {
		return err
	}
	ar, ok := req.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected access request type %T", req)
	}
	ar.GrantedAudience = nil
	for _, a := range req.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	return nil
}

type assertionClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
}

// unverifiedAssertion reads the claims of a JWT without checking it, with
// the parser fosite verifies it with; the zero value if it is not one.
func unverifiedAssertion(assertion string) assertionClaims {
	var c assertionClaims
	tok, err := josejwt.ParseSigned(assertion)
	if err != nil || tok.UnsafeClaimsWithoutVerification(&c) != nil {
		return assertionClaims{}
	}
	return c
}
