package kavach

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/users"
)

// Social sign-in routes (docs/sign-in-methods.md, "Social sign-in").
//
// The state of a flow is bound to the browser that started it: the start
// sets the kavach_oauth_state cookie (HttpOnly, SameSite=Lax, 10 minutes)
// holding the state, and the callback requires it, so a callback URL
// planted in another browser (login CSRF) finds no matching cookie.
// Apple answers with a cross-site POST (response_mode=form_post), which
// carries no Lax cookie: that POST only re-sends its fields to the GET
// callback with a 303, a top-level navigation that carries the cookie.

const oauthStateCookie = "kavach_oauth_state"

type socialAccount struct {
	ID        string    `json:"id"`
	Provider  string    `json:"provider"`
	AccountID string    `json:"accountId"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func (k *Kavach) handleSocialProviders(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, k.Users.SocialProviders())
}

// handleSocialStart: GET /api/auth/oauth/{provider}?callbackURL=…
func (k *Kavach) handleSocialStart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := users.SocialStartInput{Provider: r.PathValue("provider")}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"callbackURL", &in.CallbackURL}, {"errorCallbackURL", &in.ErrorCallbackURL}, {"newUserCallbackURL", &in.NewUserCallbackURL}} {
		v := q.Get(f.name)
		if !k.checkRedirect(w, f.name, v) {
			return
		}
		*f.dst = k.absolute(v)
	}
	start, err := k.Users.StartSocial(r.Context(), in)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.setStateCookie(w, start)
	http.Redirect(w, r, start.URL, http.StatusFound)
}

func (k *Kavach) setStateCookie(w http.ResponseWriter, start users.SocialStart) {
	k.Auth.cookie.named(oauthStateCookie).set(w, start.State, start.ExpiresAt, k.cfg.Now(), true)
}

// handleSocialLink: POST /api/auth/oauth/link {provider, callbackURL?,
// errorCallbackURL?} (signed in) answers the provider URL to send the
// browser to; the callback links the account to the signed-in user.
func (k *Kavach) handleSocialLink(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Provider         string `json:"provider"`
		CallbackURL      string `json:"callbackURL"`
		ErrorCallbackURL string `json:"errorCallbackURL"`
		Password         string `json:"password"` // re-authentication for sessions older than 10 minutes
	}
	if !k.decode(w, r, &req) || !k.checkRedirect(w, "callbackURL", req.CallbackURL) ||
		!k.checkRedirect(w, "errorCallbackURL", req.ErrorCallbackURL) {
		return
	}
	// A linked account is a way back in: the same re-authentication as
	// adding a passkey.
	if err := k.Users.Reauthenticate(r.Context(), view, req.Password); err != nil {
		k.fail(w, r, err)
		return
	}
	start, err := k.Users.StartSocial(r.Context(), users.SocialStartInput{
		Provider: req.Provider, CallbackURL: k.absolute(req.CallbackURL), ErrorCallbackURL: k.absolute(req.ErrorCallbackURL),
		LinkUserID: view.User.ID,
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.setStateCookie(w, start)
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"url": start.URL, "redirect": true})
}

// handleSocialFormPost receives Apple's cross-site POST and sends its
// fields on to the GET callback (see above). It is mounted outside the
// origin check: the POST comes from the provider's origin. It changes
// nothing itself.
func (k *Kavach) handleSocialFormPost(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if !k.Users.SocialFormPost(provider) {
		httpx.WriteError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "This endpoint does not accept that method.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, k.cfg.Limits.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "INVALID_REQUEST", "The form could not be read.")
		return
	}
	q := url.Values{}
	for _, f := range []string{"state", "code", "error", "user"} {
		if v := r.PostForm.Get(f); v != "" && len(v) <= 4096 {
			q.Set(f, v)
		}
	}
	http.Redirect(w, r, k.cfg.BaseURL+"/api/auth/oauth/"+url.PathEscape(provider)+"/callback?"+q.Encode(), http.StatusSeeOther)
}

// handleSocialCallback: GET /api/auth/oauth/{provider}/callback.
func (k *Kavach) handleSocialCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	spec := k.Auth.cookie.named(oauthStateCookie)
	browser := ""
	if c, err := r.Cookie(spec.name); err == nil {
		browser = c.Value
	}
	// The cookie is spent whatever happens.
	spec.clear(w)
	out, err := k.Users.FinishSocial(r.Context(), users.SocialCallbackInput{
		Provider: r.PathValue("provider"), State: q.Get("state"), BrowserState: browser,
		Code: q.Get("code"), Error: q.Get("error"), AppleUser: q.Get("user"),
		Client: k.clientInfo(r), TrustedDevice: k.trustedDevice(r), SignedInUserID: func() string { return k.signedInUserID(r) },
	})
	if err != nil {
		k.socialFail(w, r, err, out)
		return
	}
	if out.Linked {
		http.Redirect(w, r, k.landing(out.CallbackURL), http.StatusFound)
		return
	}
	target := out.CallbackURL
	if out.NewUser && out.NewUserCallbackURL != "" {
		target = out.NewUserCallbackURL
	}
	k.redirectSignIn(w, r, out.AuthResult, target)
}

// socialFail ends a failed callback: on the flow's error page when it
// has one (errorCallbackURL, else callbackURL), else in JSON. Failures on
// the provider's side are logged once, here or in fail.
func (k *Kavach) socialFail(w http.ResponseWriter, r *http.Request, err error, out users.SocialOutcome) {
	status, code, _ := errorResponse(err)
	target := out.ErrorCallbackURL
	if target == "" {
		target = out.CallbackURL
	}
	switch {
	case status == http.StatusInternalServerError && target != "":
		k.cfg.Logger.Error("social sign-in failed", "provider", r.PathValue("provider"), "err", err)
	case status >= 500 && target != "", errors.Is(err, users.ErrInvalidIDToken):
		k.cfg.Logger.Warn("social sign-in failed", "provider", r.PathValue("provider"), "err", err)
	}
	if target == "" {
		k.fail(w, r, err)
		return
	}
	var denied *users.ProviderDeniedError
	if errors.As(err, &denied) {
		code = denied.Code
	}
	http.Redirect(w, r, addQuery(target, "error", code), http.StatusFound)
}

// handleSocialUnlink: POST /api/auth/oauth/unlink {provider, accountId?}.
func (k *Kavach) handleSocialUnlink(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Provider  string `json:"provider"`
		AccountID string `json:"accountId"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	if err := k.Users.UnlinkAccount(r.Context(), view.User.ID, req.Provider, req.AccountID); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"unlinked": true})
}

// handleListAccounts: GET /api/auth/accounts.
func (k *Kavach) handleListAccounts(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	list, err := k.Users.ListAccounts(r.Context(), view.User.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]socialAccount, 0, len(list))
	for _, a := range list {
		out = append(out, socialAccount{ID: a.ID, Provider: a.Provider, AccountID: a.AccountID, Scopes: a.Scopes,
			CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// signedInUserID is the user the request's session belongs to, or "".
// It never slides the session or touches cookies.
func (k *Kavach) signedInUserID(r *http.Request) string {
	tok, _ := k.Auth.token(r)
	if tok == "" {
		return ""
	}
	view, _, err := k.Users.Authenticate(r.Context(), tok, false)
	if err != nil {
		return ""
	}
	return view.User.ID
}
