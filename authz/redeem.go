package authz

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// redemption makes redeeming a code or a refresh token a one-winner race
// across nodes. fosite checks a code, issues tokens and only then marks the
// code used, over a store with no cross-call transaction: two concurrent
// exchanges could both pass the check, and a replay detected meanwhile
// could revoke before the winner had stored what it issued. So before
// fosite runs, each request inserts a claim row for the secret it presents
// (a unique key: exactly one insert succeeds). A second claimant marks the
// claim contested and revokes the grant; the winner, once its tokens are
// durable, looks at its claim again and revokes everything if it was
// contested — whichever order the two run in, nothing of the grant
// survives a double redemption.
type redemption struct {
	s         *Server
	kind      string // claim kind
	sig       string // hashed signature of the presented secret
	requestID string
}

var errRedeemedTwice = fosite.ErrInvalidGrant.WithHint("The authorization code or refresh token was presented twice at once; the grant is revoked.")

// redeem claims the code or refresh token in form. It returns nil (and no
// error) when there is nothing to claim — an unknown, malformed or already
// used secret, which fosite then rejects and, for reuse, revokes itself.
func (s *Server) redeem(ctx context.Context, grant string, form url.Values) (*redemption, error) {
	var kind, sig string
	switch grant {
	case GrantAuthorizationCode:
		kind, sig = storage.TokenKindCode, s.tokens.AuthorizeCodeSignature(ctx, form.Get("code"))
	case GrantRefreshToken:
		kind, sig = storage.TokenKindRefresh, s.tokens.RefreshTokenSignature(ctx, form.Get("refresh_token"))
	default:
		return nil, nil
	}
	if sig == "" {
		return nil, nil
	}
	h := id.Hash(sig)
	row, err := s.store.OAuthTokens().Get(ctx, kind, h)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) || (err == nil && !row.Active) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	claim := &storage.OAuthToken{
		Kind: "claim-" + kind, Signature: h, RequestID: row.RequestID, ClientID: row.ClientID, Subject: row.Subject,
		Active: true, RequestedAt: s.cfg.Now().UTC(), ExpiresAt: row.ExpiresAt.Add(time.Minute), Data: []byte("{}"),
	}
	err = s.store.OAuthTokens().Create(ctx, claim)
	if errors.Is(err, storage.ErrAlreadyExists) {
		if _, err := s.store.OAuthTokens().Deactivate(ctx, claim.Kind, h); err != nil {
			return nil, err
		}
		s.revokeGrant(ctx, row.RequestID)
		return nil, errRedeemedTwice
	}
	if err != nil {
		return nil, err
	}
	return &redemption{s: s, kind: claim.Kind, sig: h, requestID: row.RequestID}, nil
}

// release gives the secret back when the request failed before anything
// was issued (e.g. a wrong code_verifier), so a correct retry can succeed.
func (r *redemption) release(ctx context.Context) {
	if r != nil {
		_ = r.s.store.OAuthTokens().Delete(context.WithoutCancel(ctx), r.kind, r.sig)
	}
}

// contested reports, after the winner's tokens are stored, whether another
// request claimed the same secret meanwhile; if so it revokes the grant.
func (r *redemption) contested(ctx context.Context) bool {
	if r == nil {
		return false
	}
	row, err := r.s.store.OAuthTokens().Get(ctx, r.kind, r.sig)
	if err == nil && row.Active {
		return false
	}
	r.s.revokeGrant(ctx, r.requestID)
	return true
}

// revokeGrant deactivates every access and refresh token of a grant.
func (s *Server) revokeGrant(ctx context.Context, requestID string) {
	ctx = context.WithoutCancel(ctx)
	for _, kind := range []string{storage.TokenKindAccess, storage.TokenKindRefresh} {
		if _, err := s.store.OAuthTokens().DeactivateRequest(ctx, kind, requestID); err != nil {
			s.cfg.Logger.Error("revoking a grant failed", "request", requestID, "err", err)
		}
	}
}
