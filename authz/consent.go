package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/kavachos/kavach/storage"
)

// hasConsent reports whether the user already approved the client for
// every requested scope on every resource.
func (s *Server) hasConsent(ctx context.Context, userID, clientID string, resources, scopes []string) (bool, error) {
	for _, res := range resources {
		c, err := s.store.OAuthConsents().Get(ctx, userID, clientID, res)
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("load consent: %w", err)
		}
		for _, sc := range scopes {
			if !slices.Contains(c.Scopes, sc) {
				return false, nil
			}
		}
	}
	return true, nil
}

// ConsentRequest describes a pending authorization for a consent page.
type ConsentRequest struct {
	ClientID   string `json:"clientId"`
	ClientName string `json:"clientName"`
	ClientURI  string `json:"clientUri,omitempty"`
	// ClientHost is the host of a metadata-document client's id: unlike
	// client_name (whatever the document says), it is verified.
	ClientHost    string         `json:"clientHost,omitempty"`
	RedirectHost  string         `json:"redirectHost"`
	LocalhostOnly bool           `json:"localhostOnly"` // every registered redirect URI is on a loopback host
	Source        string         `json:"source"`
	Scopes        []ScopeSummary `json:"scopes"`
	Resources     []string       `json:"resources"`
	ReturnTo      string         `json:"returnTo"`
	form          url.Values
	client        *Client
	redirect      string
}

// ScopeSummary is a scope in words.
type ScopeSummary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ErrBadConsentRequest means return_to is not a valid authorize request.
var ErrBadConsentRequest = errors.New("not a valid authorization request")

// DescribeConsent parses and checks the authorize URL a consent page was
// given (return_to), and says what the user is asked to approve.
func (s *Server) DescribeConsent(ctx context.Context, returnTo string) (*ConsentRequest, error) {
	prefix := s.cfg.Issuer + AuthorizePath + "?"
	if !strings.HasPrefix(returnTo, prefix) || len(returnTo) > 8192 {
		return nil, ErrBadConsentRequest
	}
	form, err := url.ParseQuery(returnTo[len(prefix):])
	if err != nil {
		return nil, ErrBadConsentRequest
	}
	client, err := s.clients.get(ctx, form.Get("client_id"))
	if err != nil {
		return nil, ErrBadConsentRequest
	}
	redirect := form.Get("redirect_uri")
	if redirect == "" && len(client.Metadata.RedirectURIs) == 1 {
		redirect = client.Metadata.RedirectURIs[0]
	}
	if matchRedirect(redirect, client.Metadata.RedirectURIs) == "" {
		return nil, ErrBadConsentRequest
	}
	resources, err := s.resolveResources(form["resource"])
	if err != nil {
		return nil, ErrBadConsentRequest
	}
	cr := &ConsentRequest{
		ClientID: client.GetID(), ClientName: client.Name(), ClientURI: client.Metadata.ClientURI,
		Source: client.Record.Source, Resources: resources, ReturnTo: returnTo,
		form: form, client: client, redirect: redirect,
	}
	if u, err := url.Parse(redirect); err == nil {
		cr.RedirectHost = u.Hostname()
	}
	if client.Record.Source == storage.ClientSourceMetadataDoc {
		if u, err := url.Parse(client.GetID()); err == nil {
			cr.ClientHost = u.Hostname()
		}
	}
	cr.LocalhostOnly = true
	for _, ru := range client.Metadata.RedirectURIs {
		if u, err := url.Parse(ru); err != nil || !isLoopbackHost(u.Hostname()) {
			cr.LocalhostOnly = false
		}
	}
	for _, sc := range strings.Fields(form.Get("scope")) {
		i := slices.IndexFunc(s.cfg.Scopes, func(x Scope) bool { return x.Name == sc })
		if i < 0 || !slices.Contains(client.scopes, sc) {
			return nil, ErrBadConsentRequest
		}
		cr.Scopes = append(cr.Scopes, ScopeSummary{Name: sc, Description: s.cfg.Scopes[i].Description})
	}
	return cr, nil
}

// Approve remembers the user's consent (scopes are added to what was
// approved before) and returns where to send the browser: back to the
// authorize endpoint, which now issues the code.
func (s *Server) Approve(ctx context.Context, userID string, cr *ConsentRequest) (string, error) {
	now := s.cfg.Now().UTC()
	for _, res := range cr.Resources {
		scopes := make([]string, 0, len(cr.Scopes))
		for _, sc := range cr.Scopes {
			scopes = append(scopes, sc.Name)
		}
		prev, err := s.store.OAuthConsents().Get(ctx, userID, cr.ClientID, res)
		if err == nil {
			scopes = append(scopes, prev.Scopes...)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", fmt.Errorf("load consent: %w", err)
		}
		scopes = uniq(scopes)
		sort.Strings(scopes)
		c := &storage.OAuthConsent{UserID: userID, ClientID: cr.ClientID, Resource: res, Scopes: scopes, CreatedAt: now, UpdatedAt: now}
		if err := s.store.OAuthConsents().Put(ctx, c); err != nil {
			return "", fmt.Errorf("store consent: %w", err)
		}
	}
	return cr.ReturnTo, nil
}

// Deny returns the client's redirect with error=access_denied (and state
// and iss), as RFC 6749 §4.1.2.1 asks.
func (s *Server) Deny(cr *ConsentRequest) string {
	u, err := url.Parse(cr.redirect)
	if err != nil {
		return s.cfg.Issuer
	}
	q := u.Query()
	q.Set("error", "access_denied")
	q.Set("error_description", "The user denied the request.")
	if st := cr.form.Get("state"); st != "" {
		q.Set("state", st)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

type consentBody struct {
	ReturnTo string `json:"return_to"`
	Decision string `json:"decision"` // "approve" or "deny"
}

// handleConsent is the API a consent page calls. GET ?return_to= describes
// the request; POST {return_to, decision} records the answer and returns
// (JSON) or redirects to (form post) the next URL. Cookie-authenticated:
// the root package wraps it in its origin check.
func (s *Server) handleConsent(sessions SessionLookup) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := sessions(r)
		if !ok {
			writeJSONError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Sign in to continue.")
			return
		}
		var body consentBody
		isForm := false
		switch r.Method {
		case http.MethodGet:
			body.ReturnTo = r.URL.Query().Get("return_to")
		default:
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
				isForm = true
				if err := r.ParseForm(); err != nil {
					writeJSONError(w, http.StatusBadRequest, "INVALID_REQUEST", "Malformed form.")
					return
				}
				body.ReturnTo, body.Decision = r.PostForm.Get("return_to"), r.PostForm.Get("decision")
			} else if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				writeJSONError(w, http.StatusBadRequest, "INVALID_REQUEST", "Body must be JSON {return_to, decision}.")
				return
			}
		}
		cr, err := s.DescribeConsent(r.Context(), body.ReturnTo)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "INVALID_REQUEST", "return_to is not a valid authorization request.")
			return
		}
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, cr)
			return
		}
		var next string
		switch body.Decision {
		case "approve":
			if next, err = s.Approve(r.Context(), p.UserID, cr); err != nil {
				s.cfg.Logger.Error("storing consent failed", "err", err)
				writeJSONError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "Something went wrong on our side.")
				return
			}
		case "deny":
			next = s.Deny(cr)
		default:
			writeJSONError(w, http.StatusBadRequest, "INVALID_REQUEST", `decision must be "approve" or "deny".`)
			return
		}
		if isForm {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"redirectTo": next})
	}
}

func writeJSON(w http.ResponseWriter, status int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": status < 400, "data": data})
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "error": map[string]string{"code": code, "message": msg}})
}
