package authz

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// Endpoint paths.
const (
	AuthorizePath  = "/api/auth/oauth2/authorize"
	TokenPath      = "/api/auth/oauth2/token"
	IntrospectPath = "/api/auth/oauth2/introspect"
	RevokePath     = "/api/auth/oauth2/revoke"
	RegisterPath   = "/api/auth/oauth2/register"
	UserinfoPath   = "/api/auth/oauth2/userinfo"
	ConsentPath    = "/api/auth/oauth2/consent"
	JWKSPath       = "/.well-known/jwks.json"
)

// Principal is the signed-in human the authorize endpoint acts for.
type Principal struct {
	UserID   string
	AuthTime time.Time
}

// SessionLookup reads the browser's session (the root package provides
// it; authz does not know cookies).
type SessionLookup func(r *http.Request) (Principal, bool)

const maxFormBytes = 64 << 10

// handleAuthorize is the authorization endpoint. Until the client and its
// redirect URI are known to be good, errors are shown on our own page:
// redirecting to an unchecked URI would make us an open redirector.
func (s *Server) handleAuthorize(sessions SessionLookup) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, http.StatusBadRequest, "The authorization request is malformed.")
			return
		}
		client, redirect, ok := s.checkClientAndRedirect(ctx, w, r.Form)
		if !ok {
			return
		}
		ctx = context.WithValue(ctx, ctxMatchedRedirect, redirect)
		iw := &issWriter{ResponseWriter: w, iss: s.cfg.Issuer}

		// Checked before anything else so the client hears about its
		// mistake at once, not after the user signed in and consented.
		earlyErr := earlyAuthorizeError(r.Form)
		if rm := r.Form.Get("response_mode"); rm != "" && rm != "query" {
			r.Form.Del("response_mode") // answer in the one mode we support
		}
		resources, resErr := s.resolveResources(r.Form["resource"])
		r.Form.Del("audience") // only RFC 8707 "resource" names audiences
		for _, res := range resources {
			r.Form.Add("audience", res)
		}
		ar, err := s.provider.NewAuthorizeRequest(ctx, r)
		if err != nil {
			s.provider.WriteAuthorizeError(ctx, iw, ar, err)
			return
		}
		if earlyErr == nil {
			earlyErr = resErr
		}
		if earlyErr != nil {
			s.provider.WriteAuthorizeError(ctx, iw, ar, earlyErr)
			return
		}
		prompt := strings.Fields(r.Form.Get("prompt"))
		principal, signedIn := sessions(r)
		if !signedIn || slices.Contains(prompt, "login") && !freshLogin(principal, s.cfg.Now()) {
			if slices.Contains(prompt, "none") {
				s.provider.WriteAuthorizeError(ctx, iw, ar, fosite.ErrLoginRequired)
				return
			}
			http.Redirect(w, r, withReturn(s.cfg.LoginURL, s.authorizeURL(r.Form)), http.StatusSeeOther)
			return
		}
		scopes := ar.GetRequestedScopes()
		consented, err := s.hasConsent(ctx, principal.UserID, client.GetID(), resources, scopes)
		if err != nil {
			s.provider.WriteAuthorizeError(ctx, iw, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		if !consented || slices.Contains(prompt, "consent") {
			if slices.Contains(prompt, "none") {
				s.provider.WriteAuthorizeError(ctx, iw, ar, fosite.ErrConsentRequired)
				return
			}
			http.Redirect(w, r, withReturn(s.cfg.ConsentURL, s.authorizeURL(withoutPrompt(r.Form))), http.StatusSeeOther)
			return
		}
		for _, sc := range scopes {
			ar.GrantScope(sc)
		}
		for _, a := range resources {
			ar.GrantAudience(a)
		}
		session := newSession()
		session.Subject = principal.UserID
		session.Claims.Subject = principal.UserID
		session.Claims.Issuer = s.cfg.Issuer
		session.Claims.AuthTime = principal.AuthTime.UTC()
		session.Claims.RequestedAt = s.cfg.Now().UTC()
		resp, err := s.provider.NewAuthorizeResponse(ctx, ar, session)
		if err != nil {
			s.provider.WriteAuthorizeError(ctx, iw, ar, err)
			return
		}
		s.provider.WriteAuthorizeResponse(ctx, iw, ar, resp)
	}
}

// earlyAuthorizeError finds what fosite would only reject after consent:
// a missing or non-S256 PKCE challenge, and response modes other than
// query.
func earlyAuthorizeError(form url.Values) error {
	if form.Has("request") || form.Has("request_uri") {
		return fosite.ErrRequestNotSupported.WithHint("Request objects are not supported; send the parameters directly.")
	}
	if rm := form.Get("response_mode"); rm != "" && rm != "query" {
		return fosite.ErrUnsupportedResponseMode.WithHint("Only response_mode=query is supported.")
	}
	if form.Get("code_challenge") == "" {
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method=S256.")
	}
	if m := form.Get("code_challenge_method"); m != "S256" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	}
	return nil
}

// freshLogin: prompt=login asks for a sign-in now; a session from the last
// minute counts (the user just signed in for this request).
func freshLogin(p Principal, now time.Time) bool { return now.Sub(p.AuthTime) < time.Minute }

// checkClientAndRedirect loads the client and matches redirect_uri by our
// rules, answering on our own page when either is wrong.
func (s *Server) checkClientAndRedirect(ctx context.Context, w http.ResponseWriter, form url.Values) (*Client, string, bool) {
	client, err := s.clients.get(ctx, form.Get("client_id"))
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "The application that sent you here is not registered with this server.")
		return nil, "", false
	}
	raw := form.Get("redirect_uri")
	if raw == "" {
		if len(client.Metadata.RedirectURIs) != 1 {
			s.errorPage(w, http.StatusBadRequest, "The application did not say where to send you back (redirect_uri).")
			return nil, "", false
		}
		return client, client.Metadata.RedirectURIs[0], true
	}
	if matchRedirect(raw, client.Metadata.RedirectURIs) == "" {
		s.errorPage(w, http.StatusBadRequest, "The application asked to send you back to an address it has not registered.")
		return nil, "", false
	}
	return client, raw, true
}

// authorizeURL rebuilds the authorize request as a GET URL (also for POST
// requests), for the return trip from sign-in and consent.
func (s *Server) authorizeURL(form url.Values) string {
	f := url.Values{}
	for k, v := range form {
		if k != "audience" {
			f[k] = v
		}
	}
	return s.cfg.Issuer + AuthorizePath + "?" + f.Encode()
}

func withoutPrompt(form url.Values) url.Values {
	f := url.Values{}
	for k, v := range form {
		if k != "prompt" {
			f[k] = v
		}
	}
	return f
}

func withReturn(page, returnTo string) string {
	u, err := url.Parse(page)
	if err != nil {
		return page
	}
	q := u.Query()
	q.Set("return_to", returnTo)
	u.RawQuery = q.Encode()
	return u.String()
}

// issWriter adds RFC 9207's iss to every authorization response redirect,
// success or error.
type issWriter struct {
	http.ResponseWriter
	iss string
}

func (w *issWriter) WriteHeader(status int) {
	if status >= 300 && status < 400 {
		if loc := w.Header().Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err == nil {
				q := u.Query()
				if q.Get("iss") == "" {
					q.Set("iss", w.iss)
					u.RawQuery = q.Encode()
					w.Header().Set("Location", u.String())
				}
			}
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in problem</title></head>
<body><main><h1>This sign-in link does not work</h1><p role="alert">{{.}}</p>
<p>Go back to the application and try again. If it keeps happening, tell the application's developers.</p></main></body></html>
`))

// errorPage answers on our own page (never a redirect).
func (s *Server) errorPage(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = errorTemplate.Execute(w, msg)
}
