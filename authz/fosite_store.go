package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// fositeStore adapts storage.Store to the storage interfaces fosite's
// handlers need. It is the only place that maps fosite requests to
// records; storage never sees a fosite type.
type fositeStore struct {
	store   storage.Store
	clients *clientRegistry
	writer  *tokenWriter
	now     func() time.Time
	// issued, when set, gives the audit record of an access token being
	// stored; it is written in the same transaction as the row.
	issued func(ctx context.Context, req fosite.Requester) *storage.AuditRecord
}

// Every fosite storage interface we implement is asserted here, so a
// missing method fails the build instead of panicking in compose.
var (
	_ fosite.Storage                     = (*fositeStore)(nil)
	_ fosite.ClientManager               = (*fositeStore)(nil)
	_ oauth2.CoreStorage                 = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage      = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage            = (*fositeStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*fositeStore)(nil)
)

// storedRequest is the JSON form of a fosite request in OAuthToken.Data.
type storedRequest struct {
	ID                string                 `json:"id"`
	RequestedAt       time.Time              `json:"requested_at"`
	ClientID          string                 `json:"client_id"`
	RequestedScope    []string               `json:"requested_scope"`
	GrantedScope      []string               `json:"granted_scope"`
	RequestedAudience []string               `json:"requested_audience"`
	GrantedAudience   []string               `json:"granted_audience"`
	Form              url.Values             `json:"form"`
	Session           *openid.DefaultSession `json:"session"`
}

// newSession is the session type of every request.
func newSession() *openid.DefaultSession { return openid.NewDefaultSession() }

// sanitizedForm keeps only what later steps need; secrets such as
// client_secret, code_verifier or refresh tokens are never stored.
func sanitizedForm(f url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"redirect_uri", "scope", "resource", "state", "nonce", "response_type", "code_challenge", "code_challenge_method"} {
		if v, ok := f[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (s *fositeStore) put(ctx context.Context, kind, signature string, req fosite.Requester, ttl func() time.Time) error {
	sess, _ := req.GetSession().(*openid.DefaultSession)
	sr := storedRequest{
		ID: req.GetID(), RequestedAt: req.GetRequestedAt(), ClientID: req.GetClient().GetID(),
		RequestedScope: req.GetRequestedScopes(), GrantedScope: req.GetGrantedScopes(),
		RequestedAudience: req.GetRequestedAudience(), GrantedAudience: req.GetGrantedAudience(),
		Form: sanitizedForm(req.GetRequestForm()), Session: sess,
	}
	if kind == storage.TokenKindAccess {
		// Introspection must report the audience the token carries.
		sr.GrantedAudience = accessAudience(ctx, sr.GrantedAudience)
	}
	data, err := json.Marshal(sr)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", kind, err)
	}
	subject := ""
	if sess != nil {
		subject = sess.GetSubject()
	}
	t := &storage.OAuthToken{
		Kind: kind, Signature: id.Hash(signature), RequestID: req.GetID(), ClientID: sr.ClientID,
		Subject: subject, Active: true, RequestedAt: sr.RequestedAt.UTC(), ExpiresAt: ttl().UTC(), Data: data,
	}
	var audit *storage.AuditRecord
	if kind == storage.TokenKindAccess && s.issued != nil {
		audit = s.issued(ctx, req)
	}
	if err := s.writer.create(ctx, t, audit); err != nil {
		// A client deleted on another node can still be in this node's
		// cache for a moment; its rows then fail their foreign key.
		if _, gerr := s.store.OAuthClients().Get(ctx, t.ClientID); errors.Is(gerr, storage.ErrNotFound) {
			s.clients.forget(t.ClientID)
			return fosite.ErrInvalidClient.WithHint("The client no longer exists.")
		}
		return fmt.Errorf("store %s: %w", kind, err)
	}
	return nil
}

func expiryOf(req fosite.Requester, tt fosite.TokenType, fallback time.Duration) func() time.Time {
	return func() time.Time {
		if e := req.GetSession().GetExpiresAt(tt); !e.IsZero() {
			return e
		}
		return time.Now().Add(fallback)
	}
}

// get loads a request; inactive rows come back with ErrInactiveToken (the
// request is returned too, as fosite needs it to revoke the grant).
func (s *fositeStore) get(ctx context.Context, kind, signature string, session fosite.Session) (fosite.Requester, bool, error) {
	t, err := s.store.OAuthTokens().Get(ctx, kind, id.Hash(signature))
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return nil, false, fosite.ErrNotFound
	}
	if err != nil {
		return nil, false, err
	}
	// The stored expiry is authoritative (and uses the configured clock):
	// an expired code or token is as good as absent.
	if !s.now().Before(t.ExpiresAt) {
		return nil, false, fosite.ErrNotFound
	}
	var sr storedRequest
	if err := json.Unmarshal(t.Data, &sr); err != nil {
		return nil, false, fmt.Errorf("decode %s request: %w", kind, err)
	}
	client, err := s.GetClient(ctx, sr.ClientID)
	if err != nil {
		return nil, false, err
	}
	if ds, ok := session.(*openid.DefaultSession); ok && sr.Session != nil {
		*ds = *sr.Session
	}
	req := &fosite.Request{
		ID: sr.ID, RequestedAt: sr.RequestedAt, Client: client,
		RequestedScope: sr.RequestedScope, GrantedScope: sr.GrantedScope,
		RequestedAudience: sr.RequestedAudience, GrantedAudience: sr.GrantedAudience,
		Form: sr.Form, Session: session,
	}
	if req.Form == nil {
		req.Form = url.Values{}
	}
	return req, t.Active, nil
}

func (s *fositeStore) GetClient(ctx context.Context, clientID string) (fosite.Client, error) {
	c, err := s.clients.get(ctx, clientID)
	if err != nil {
		return nil, err
	}
	// The authorize handler matched redirect_uri by our rules (loopback
	// ports may differ); fosite then compares exactly against that one.
	if r, ok := ctx.Value(ctxMatchedRedirect).(string); ok && r != "" && matchRedirect(r, c.Metadata.RedirectURIs) != "" {
		return c.withRedirect(r), nil
	}
	return c, nil
}

// ClientAssertionJWTValid and SetClientAssertionJWT keep private_key_jwt
// assertions single-use by jti (a known jti is refused until the sweep
// deletes it after its exp).
func (s *fositeStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	_, err := s.store.OAuthTokens().Get(ctx, storage.TokenKindAssertion, id.Hash(jti))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fosite.ErrJTIKnown
}

// Expired jtis are removed by the periodic sweep (Kavach.sweep), not here:
// a table-wide delete on every private_key_jwt token request cost a write
// on the issuance path.
func (s *fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := s.store.OAuthTokens().Create(ctx, &storage.OAuthToken{
		Kind: storage.TokenKindAssertion, Signature: id.Hash(jti), RequestID: id.Hash(jti), ClientID: assertionClientID(ctx),
		Active: true, RequestedAt: time.Now().UTC(), ExpiresAt: exp.UTC(), Data: []byte("{}"),
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fosite.ErrJTIKnown
	}
	return err
}

func (s *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.put(ctx, storage.TokenKindCode, code, req, expiryOf(req, fosite.AuthorizeCode, 10*time.Minute))
}

func (s *fositeStore) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.get(ctx, storage.TokenKindCode, code, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	if st := tokenRequestOf(ctx); st != nil && len(st.withheld) > 0 {
		// fosite grants the code's scopes from this copy while it builds
		// the token response: the scopes trust policies withhold
		// (Server.withholdScopes) are left out of it.
		if r, ok := req.(*fosite.Request); ok {
			r.GrantedScope = slices.DeleteFunc(slices.Clone(r.GrantedScope), func(sc string) bool { return slices.Contains(st.withheld, sc) })
		}
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession spends a code. Of two concurrent
// exchanges of one code, only one gets past this point.
func (s *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	ok, err := s.store.OAuthTokens().Deactivate(ctx, storage.TokenKindCode, id.Hash(code))
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrNotFound
	}
	if err != nil {
		return err
	}
	if !ok {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return nil
}

func (s *fositeStore) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.put(ctx, storage.TokenKindAccess, signature, req, expiryOf(req, fosite.AccessToken, time.Hour))
}

func (s *fositeStore) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.get(ctx, storage.TokenKindAccess, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

func (s *fositeStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return notFound(s.store.OAuthTokens().Delete(ctx, storage.TokenKindAccess, id.Hash(signature)))
}

func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, _ string, req fosite.Requester) error {
	return s.put(ctx, storage.TokenKindRefresh, signature, req, expiryOf(req, fosite.RefreshToken, 30*24*time.Hour))
}

// GetRefreshTokenSession returns an inactive (rotated or revoked) token
// with ErrInactiveToken, which fosite takes as reuse and answers by
// revoking the grant; the token request notes it for its audit record.
func (s *fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.get(ctx, storage.TokenKindRefresh, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		if st := tokenRequestOf(ctx); st != nil {
			st.reusedRefreshOf = req.GetClient().GetID()
		}
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession marks the token used rather than deleting it:
// a later reuse must still be recognised as reuse.
func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	_, err := s.store.OAuthTokens().Deactivate(ctx, storage.TokenKindRefresh, id.Hash(signature))
	return notFound(err)
}

// RotateRefreshToken retires the presented refresh token and the access
// tokens issued with it. Two concurrent refreshes with one token: the
// loser sees an inactive token, which is reuse.
func (s *fositeStore) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	ok, err := s.store.OAuthTokens().Deactivate(ctx, storage.TokenKindRefresh, id.Hash(signature))
	if err != nil {
		return notFound(err)
	}
	if !ok {
		return fosite.ErrInactiveToken
	}
	_, err = s.store.OAuthTokens().DeactivateRequest(ctx, storage.TokenKindAccess, requestID)
	return err
}

func (s *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	_, err := s.store.OAuthTokens().DeactivateRequest(ctx, storage.TokenKindRefresh, requestID)
	return err
}

func (s *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	_, err := s.store.OAuthTokens().DeactivateRequest(ctx, storage.TokenKindAccess, requestID)
	return err
}

func (s *fositeStore) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.put(ctx, storage.TokenKindPKCE, signature, req, expiryOf(req, fosite.AuthorizeCode, 10*time.Minute))
}

func (s *fositeStore) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.get(ctx, storage.TokenKindPKCE, signature, session)
	return req, err
}

func (s *fositeStore) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return notFound(s.store.OAuthTokens().Delete(ctx, storage.TokenKindPKCE, id.Hash(signature)))
}

func (s *fositeStore) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.put(ctx, storage.TokenKindOIDC, code, req, expiryOf(req, fosite.AuthorizeCode, 10*time.Minute))
}

func (s *fositeStore) GetOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) (fosite.Requester, error) {
	r, _, err := s.get(ctx, storage.TokenKindOIDC, code, req.GetSession())
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, openid.ErrNoSessionFound
	}
	return r, err
}

func (s *fositeStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return notFound(s.store.OAuthTokens().Delete(ctx, storage.TokenKindOIDC, id.Hash(code)))
}

func notFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrNotFound
	}
	return err
}
