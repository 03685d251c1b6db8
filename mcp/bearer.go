package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

type tokenKey struct{}

// rawTokenKey carries the bearer token itself, for a CallGate that asks
// the authorization server about it (KavachDecisions).
type rawTokenKey struct{}

// TokenFromContext returns the token RequireBearer verified for the request
// whose context ctx is (or derives from). Tool handlers of an mcp-go server
// behind RequireBearer get it from the ctx they are called with.
func TokenFromContext(ctx context.Context) (*TokenInfo, bool) {
	info, ok := ctx.Value(tokenKey{}).(*TokenInfo)
	return info, ok && info != nil
}

// RequireBearer lets a request through to next only with a valid access
// token for cfg.Resource that carries every scope in cfg.RequiredScopes, and
// puts the verified token in the request context (see TokenFromContext).
//
// The token is read from the Authorization header only, scheme "Bearer" in
// any case (RFC 6750 §2.1). Otherwise:
//
//   - no Bearer credentials: 401 with a challenge naming the metadata URL and
//     the required scopes, and no error attribute (RFC 6750 §3.1);
//   - a malformed, invalid, expired or revoked token, or one whose audience
//     does not include cfg.Resource: 401 error="invalid_token". Malformed
//     tokens get 401 rather than 400 because a new token fixes them, and MCP
//     clients start authorization on 401 but give up on 400;
//   - missing scopes: 403 error="insufficient_scope" with scope listing every
//     required scope, not only the missing ones (MCP 2026-07-28);
//   - an access_token query parameter, a form-encoded body, or more than one
//     Authorization header: 400 error="invalid_request". A token sent in the
//     URL has already leaked into logs, so it is refused rather than ignored;
//     the Streamable HTTP transport only carries JSON, so a form body is
//     refused without being read;
//   - a verifier failure that is not ErrInvalidToken: 500, logged.
//
// Every challenge carries resource_metadata, the absolute URL of the RFC 9728
// metadata derived from cfg.Resource (its origin plus MetadataPath).
// Responses are small JSON bodies {"error":…,"error_description":…}.
//
// RequireBearer panics if cfg fails Validate.
func RequireBearer(cfg ResourceConfig, next http.Handler) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	prm, err := metadataURL(cfg.Resource)
	if err != nil {
		panic(err) // Validate parsed the same resource
	}
	canonical, _ := canonicalResource(cfg.Resource)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	scope := strings.Join(cfg.RequiredScopes, " ")
	return &bearerGuard{
		next:      next,
		verifier:  cfg.Verifier,
		logger:    logger,
		resource:  cfg.Resource,
		canonical: canonical,
		required:  slices.Clone(cfg.RequiredScopes),

		missing: newRejection(http.StatusUnauthorized, "", prm, scope,
			"unauthorized", "An access token is required: send it in the Authorization header as a Bearer token."),
		invalid: newRejection(http.StatusUnauthorized, "invalid_token", prm, scope,
			"invalid_token", "The access token is invalid, expired or revoked."),
		audience: newRejection(http.StatusUnauthorized, "invalid_token", prm, scope,
			"invalid_token", "The access token was not issued for this resource."),
		insufficient: newRejection(http.StatusForbidden, "insufficient_scope", prm, scope,
			"insufficient_scope", "The access token lacks a scope this resource requires."),
		tokenElsewhere: newRejection(http.StatusBadRequest, "invalid_request", prm, "",
			"invalid_request", "Send the access token only in the Authorization header, never in the URL or a form body."),
		duplicateHeader: newRejection(http.StatusBadRequest, "invalid_request", prm, "",
			"invalid_request", "Send exactly one Authorization header."),
		serverError: rejection{
			status: http.StatusInternalServerError,
			body:   jsonError("server_error", "The access token could not be checked; try again later."),
		},
	}
}

type bearerGuard struct {
	next      http.Handler
	verifier  Verifier
	logger    *slog.Logger
	resource  string
	canonical string
	required  []string

	// Every answer but success is fixed by the config, so it is built once.
	missing, invalid, audience, insufficient     rejection
	tokenElsewhere, duplicateHeader, serverError rejection
}

func (g *bearerGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tokenOutsideHeader(r) {
		g.tokenElsewhere.write(w)
		return
	}
	values := r.Header["Authorization"]
	if len(values) > 1 {
		g.duplicateHeader.write(w)
		return
	}
	token, found := "", false
	if len(values) == 1 {
		token, found = bearerToken(values[0])
	}
	if !found {
		g.missing.write(w)
		return
	}
	if !validBearerToken(token) {
		g.invalid.write(w)
		return
	}

	ctx := r.Context()
	info, err := g.verifier.VerifyAccessToken(ctx, token)
	switch {
	case errors.Is(err, ErrInvalidToken):
		g.invalid.write(w)
		return
	case err != nil || info == nil:
		if ctx.Err() != nil {
			return // the client has gone; nobody reads the answer
		}
		if err == nil {
			err = errors.New("verifier returned neither token info nor error")
		}
		g.logger.ErrorContext(ctx, "mcp: access token verification failed", "err", err)
		g.serverError.write(w)
		return
	}
	if !g.audienceMatches(info.Audience) {
		g.audience.write(w)
		return
	}
	for _, s := range g.required {
		if !slices.Contains(info.Scopes, s) {
			g.insufficient.write(w)
			return
		}
	}
	ctx = context.WithValue(ctx, tokenKey{}, info)
	g.next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, rawTokenKey{}, token)))
}

// audienceMatches reports whether the token was issued for this resource.
// The exact spelling is the common case and needs no parsing.
func (g *bearerGuard) audienceMatches(audience []string) bool {
	if slices.Contains(audience, g.resource) {
		return true
	}
	for _, aud := range audience {
		if c, ok := canonicalResource(aud); ok && c == g.canonical {
			return true
		}
	}
	return false
}

// tokenOutsideHeader reports whether the request tries RFC 6750's query or
// form methods, which this resource refuses (MCP: tokens only in the header).
func tokenOutsideHeader(r *http.Request) bool {
	if r.URL.RawQuery != "" {
		// ParseQuery keeps what it could parse on error, and decodes
		// escaped keys such as access%5Ftoken.
		q, _ := url.ParseQuery(r.URL.RawQuery)
		if q.Has("access_token") {
			return true
		}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return false
	}
	mediaType, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "application/x-www-form-urlencoded")
}

// bearerToken returns the credentials of an Authorization header value when
// its scheme is Bearer (case-insensitive, RFC 9110 §11.1). A header of
// another scheme counts as no token; "Bearer" alone is a Bearer header with
// an empty, hence invalid, token.
func bearerToken(header string) (token string, isBearer bool) {
	scheme, rest, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(rest, " "), true
}

// validBearerToken reports whether s matches RFC 6750 §2.1 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// Refusing anything else before the verifier keeps junk out of its caches
// and logs.
func validBearerToken(s string) bool {
	if s == "" {
		return false
	}
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// rejection is a complete refusal: status, challenge and body.
type rejection struct {
	status    int
	challenge string // empty: no WWW-Authenticate header
	body      []byte
}

// newRejection builds a refusal whose challenge carries, in this order, the
// RFC 6750 error and description (when errCode is set), resource_metadata,
// and scope (when set).
func newRejection(status int, errCode, resourceMetadata, scope, bodyCode, description string) rejection {
	var b strings.Builder
	b.WriteString("Bearer ")
	if errCode != "" {
		b.WriteString("error=" + quoteParam(errCode) + ", ")
		b.WriteString("error_description=" + quoteParam(description) + ", ")
	}
	b.WriteString("resource_metadata=" + quoteParam(resourceMetadata))
	if scope != "" {
		b.WriteString(", scope=" + quoteParam(scope))
	}
	return rejection{status: status, challenge: b.String(), body: jsonError(bodyCode, description)}
}

func (rj rejection) write(w http.ResponseWriter) {
	if rj.challenge != "" {
		w.Header().Set("WWW-Authenticate", rj.challenge)
	}
	writeOAuthError(w, rj.status, rj.body)
}

// quoteParam renders s as an RFC 9110 §5.6.4 quoted-string: backslash and
// double quote are escaped; control characters, which a quoted-string cannot
// hold, are dropped.
func quoteParam(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 && c != '\t', c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// jsonError is the body of an OAuth-style error answer.
func jsonError(code, description string) []byte {
	body, err := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
	}{code, description})
	if err != nil {
		panic(err) // two strings: cannot happen
	}
	return body
}

func writeOAuthError(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
