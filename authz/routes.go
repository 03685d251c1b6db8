package authz

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Routes mounts the authorization server on mux. cookieGuard wraps the
// cookie-authenticated consent API (the root package's origin check);
// the OAuth endpoints themselves take no cookies and must be callable from
// any origin.
func (s *Server) Routes(mux *http.ServeMux, sessions SessionLookup, cookieGuard func(http.Handler) http.Handler) {
	for _, p := range s.MetadataPaths() {
		mux.HandleFunc("GET "+p, s.handleMetadata)
	}
	mux.HandleFunc("GET "+JWKSPath, s.handleJWKS)
	authorize := s.handleAuthorize(sessions)
	mux.HandleFunc("GET "+AuthorizePath, authorize)
	mux.HandleFunc("POST "+AuthorizePath, authorize)
	mux.Handle("POST "+TokenPath, cors(basicChallenge(http.HandlerFunc(s.handleToken))))
	mux.Handle("POST "+IntrospectPath, cors(basicChallenge(http.HandlerFunc(s.handleIntrospect))))
	mux.Handle("POST "+RevokePath, cors(basicChallenge(http.HandlerFunc(s.handleRevoke))))
	mux.Handle("POST "+RegisterPath, cors(http.HandlerFunc(s.handleRegister)))
	mux.Handle(RegisterPath+"/{client_id}", cors(http.HandlerFunc(s.handleManage)))
	mux.Handle("GET "+UserinfoPath, cors(http.HandlerFunc(s.handleUserinfo)))
	mux.Handle("POST "+UserinfoPath, cors(http.HandlerFunc(s.handleUserinfo)))
	for _, p := range []string{TokenPath, IntrospectPath, RevokePath, RegisterPath, UserinfoPath} {
		mux.Handle("OPTIONS "+p, cors(http.NotFoundHandler()))
	}
	consent := cookieGuard(s.handleConsent(sessions))
	mux.Handle("GET "+ConsentPath, consent)
	mux.Handle("POST "+ConsentPath, consent)
}

// cors lets browser-based clients (e.g. web MCP clients) call the
// token-style endpoints. No credentials: these endpoints use none.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// basicChallenge adds "WWW-Authenticate: Basic" to a 401 answering a
// client that authenticated with HTTP Basic (RFC 6749 §5.2 requires it).
func basicChallenge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			w = &challengeWriter{ResponseWriter: w}
		}
		next.ServeHTTP(w, r)
	})
}

type challengeWriter struct{ http.ResponseWriter }

func (w *challengeWriter) WriteHeader(status int) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="kavach"`)
	}
	w.ResponseWriter.WriteHeader(status)
}

func writeJSONBody(w http.ResponseWriter, v any) {
	_ = json.NewEncoder(w).Encode(v)
}

// ErrTokenInvalid is what VerifyAccessToken returns for any token a
// client could fix by getting a new one (malformed, bad signature,
// expired, revoked, unknown).
var ErrTokenInvalid = errors.New("invalid access token")

// VerifyAccessToken checks an access token as a resource server would:
// signature against our keys (in memory), type, issuer, expiry, and that
// the grant was not revoked (one indexed read). Audience is the resource
// server's to check.
func (s *Server) VerifyAccessToken(ctx context.Context, token string) (*AccessClaims, error) {
	c, err := s.parseAccessToken(ctx, token)
	if err != nil {
		return nil, errors.Join(ErrTokenInvalid, err)
	}
	sig := s.tokens.AccessTokenSignature(ctx, token)
	row, err := s.store.OAuthTokens().Get(ctx, storage.TokenKindAccess, id.Hash(sig))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errors.Join(ErrTokenInvalid, fosite.ErrInactiveToken)
	}
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return nil, errors.Join(ErrTokenInvalid, fosite.ErrInactiveToken)
	}
	return c, nil
}

// handleUserinfo is the OpenID Connect userinfo endpoint: the token must
// carry the openid scope and belong to a user.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Get("Authorization")
	token, ok := "", len(h) > 7 && strings.EqualFold(h[:7], "bearer ")
	if ok {
		token = h[7:]
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "An access token is required in the Authorization header.")
		return
	}
	c, err := s.VerifyAccessToken(r.Context(), strings.TrimSpace(token))
	if err != nil {
		if !errors.Is(err, ErrTokenInvalid) {
			s.cfg.Logger.Error("userinfo token check failed", "err", err)
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	if !s.agentMayAct(r.Context(), c.ClientID) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "The token's client is suspended or revoked.")
		return
	}
	scopes := strings.Fields(c.Scope)
	if !contains(scopes, "openid") {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`)
		oauthError(w, http.StatusForbidden, "insufficient_scope", "The token lacks the openid scope.")
		return
	}
	u, err := s.store.Users().Get(r.Context(), c.Subject)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "The token's user no longer exists.")
		return
	}
	out := map[string]any{"sub": u.ID}
	if contains(scopes, "email") {
		out["email"], out["email_verified"] = u.Email, u.EmailVerified
	}
	if contains(scopes, "profile") {
		out["name"] = u.Name
		if u.Image != nil {
			out["picture"] = *u.Image
		}
	}
	writeOAuthJSON(w, http.StatusOK, out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// maxParsed bounds the parsed-token cache.
const maxParsed = 10_000

// parseAccessToken checks a token's signature and claims, answering a
// token seen before from a cache until it expires: a client sends one
// token with many requests, and the signature check is the costliest
// part of verifying it. The revocation check is not cached. The claims
// returned are shared; callers must not change them.
func (s *Server) parseAccessToken(ctx context.Context, token string) (*AccessClaims, error) {
	sum := sha256.Sum256([]byte(token))
	s.parsedMu.Lock()
	c := s.parsed[sum]
	s.parsedMu.Unlock()
	if c != nil {
		if s.cfg.Now().Unix() < c.ExpiresAt {
			return c, nil
		}
		return nil, fosite.ErrTokenExpired
	}
	c, err := s.tokens.parse(token)
	if errors.Is(err, ErrUnknownKey) && s.reloadKeys(ctx) {
		c, err = s.tokens.parse(token) // another node may have rotated
	}
	if err != nil {
		return nil, err
	}
	s.parsedMu.Lock()
	if s.parsed == nil || len(s.parsed) >= maxParsed {
		s.parsed = make(map[[sha256.Size]byte]*AccessClaims)
	}
	s.parsed[sum] = c
	s.parsedMu.Unlock()
	return c, nil
}
