package kavach

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

type signUpRequest struct {
	Email       string  `json:"email"`
	Password    string  `json:"password"`
	Name        string  `json:"name"`
	Image       *string `json:"image"`
	RememberMe  *bool   `json:"rememberMe"`
	CallbackURL string  `json:"callbackURL"`
}

type signInRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	RememberMe  *bool  `json:"rememberMe"`
	CallbackURL string `json:"callbackURL"`
}

// authResponse answers sign-up and sign-in. Token is for clients that use
// "Authorization: Bearer"; browsers use the cookie set alongside. When a
// second factor is needed, Session is null and TwoFactorRedirect is true:
// the client posts a code with TwoFactorToken (or the cookie set
// alongside) to /api/auth/two-factor/verify.
type authResponse struct {
	User              User     `json:"user"`
	Session           *Session `json:"session"`
	Token             string   `json:"token,omitempty"`
	TwoFactorRedirect bool     `json:"twoFactorRedirect,omitempty"`
	TwoFactorToken    string   `json:"twoFactorToken,omitempty"`
	TwoFactorMethods  []string `json:"twoFactorMethods,omitempty"`
	NewUser           bool     `json:"newUser,omitempty"`
}

func (k *Kavach) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if err := httpx.DecodeJSON(w, r, dst, k.cfg.Limits.MaxBodyBytes); err != nil {
		k.fail(w, r, err)
		return false
	}
	return true
}

// decodeOptional accepts an empty body (also a chunked one) for endpoints
// whose fields are all optional, and decodes strictly otherwise.
func (k *Kavach) decodeOptional(w http.ResponseWriter, r *http.Request, dst any) bool {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return true
	}
	if r.ContentLength < 0 {
		br := bufio.NewReader(r.Body)
		if _, err := br.Peek(1); err == io.EOF {
			return true
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{br, r.Body}
	}
	return k.decode(w, r, dst)
}

func (k *Kavach) clientInfo(r *http.Request) users.ClientInfo {
	ip := k.limits.ip.ClientIP(r)
	info := users.ClientInfo{UserAgent: r.UserAgent()}
	if ip.IsValid() {
		info.IP = ip.String()
	}
	return info
}

func (k *Kavach) checkRedirect(w http.ResponseWriter, field, target string) bool {
	if !k.origins.trustedRedirect(target) {
		httpx.WriteError(w, http.StatusBadRequest, "UNTRUSTED_REDIRECT", field+" must be a path on this server or a URL on a trusted origin.")
		return false
	}
	return true
}

func (k *Kavach) handleSignUp(w http.ResponseWriter, r *http.Request) {
	var req signUpRequest
	if !k.decode(w, r, &req) || !k.checkRedirect(w, "callbackURL", req.CallbackURL) {
		return
	}
	res, err := k.Users.SignUp(r.Context(), users.SignUpInput{
		Email: req.Email, Password: req.Password, Name: req.Name, Image: req.Image,
		RememberMe: req.RememberMe == nil || *req.RememberMe, Client: k.clientInfo(r),
		CallbackURL: k.absolute(req.CallbackURL),
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, k.startSession(w, res))
}

func (k *Kavach) handleSignIn(w http.ResponseWriter, r *http.Request) {
	var req signInRequest
	if !k.decode(w, r, &req) || !k.checkRedirect(w, "callbackURL", req.CallbackURL) {
		return
	}
	if !k.allowAccount(w, "sign-in", req.Email) {
		return
	}
	res, err := k.Users.SignIn(r.Context(), users.SignInInput{
		Email: req.Email, Password: req.Password,
		RememberMe: req.RememberMe == nil || *req.RememberMe, Client: k.clientInfo(r),
		TrustedDevice: k.trustedDevice(r),
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, k.startSession(w, res))
}

// startSession sets the cookies of a sign-in's outcome (the session, or
// the pending second factor; a trusted device) and builds the answer.
// Every sign-in method answers through it.
func (k *Kavach) startSession(w http.ResponseWriter, res users.AuthResult) authResponse {
	out := authResponse{User: publicUser(res.User), NewUser: res.NewUser}
	now := k.cfg.Now()
	if res.Session != nil {
		s := publicSession(res.Session.Session)
		out.Session, out.Token = &s, res.Session.Token
		k.Auth.cookie.set(w, res.Session.Token, res.Session.Session.ExpiresAt, now, res.Session.Session.Persistent)
	}
	if tf := res.TwoFactor; tf != nil {
		out.TwoFactorRedirect, out.TwoFactorToken, out.TwoFactorMethods = true, tf.Token, tf.Methods
		k.Auth.cookie.named(twoFactorCookie).set(w, tf.Token, tf.ExpiresAt, now, true)
		// Until the second factor, the person is not signed in as anyone.
		out.User = User{ID: res.User.ID}
	}
	if td := res.TrustedDevice; td != nil {
		k.Auth.cookie.named(trustedDeviceCookie).set(w, td.Token, td.ExpiresAt, now, true)
	}
	return out
}

// redirectSignIn finishes a browser sign-in (a social callback, a magic
// link): it sets the cookies and sends the browser to callbackURL, or to
// the second-factor page when one is needed. callbackURL must be checked.
func (k *Kavach) redirectSignIn(w http.ResponseWriter, r *http.Request, res users.AuthResult, callbackURL string) {
	out := k.startSession(w, res)
	target := k.landing(callbackURL)
	if out.TwoFactorRedirect {
		target = addQuery(k.cfg.SignIn.TwoFactorURL, "callbackURL", target)
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// landing is where a browser flow ends: callbackURL (checked), made
// absolute, or the base URL.
func (k *Kavach) landing(callbackURL string) string {
	if target := k.absolute(callbackURL); target != "" {
		return target
	}
	return k.cfg.BaseURL + "/"
}

// trustedDevice is the request's trusted-device cookie, if any.
func (k *Kavach) trustedDevice(r *http.Request) string {
	if c, err := r.Cookie(k.Auth.cookie.named(trustedDeviceCookie).name); err == nil {
		return c.Value
	}
	return ""
}

func (k *Kavach) handleSignOut(w http.ResponseWriter, r *http.Request) {
	tok, fromCookie := k.Auth.token(r)
	if err := k.Users.SignOut(r.Context(), tok); err != nil {
		k.fail(w, r, err)
		return
	}
	if fromCookie || tok == "" {
		k.Auth.cookie.clear(w)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"signedOut": true})
}

func (k *Kavach) handleGetSession(w http.ResponseWriter, r *http.Request) {
	view, err := k.session(w, r)
	if errors.Is(err, users.ErrUnauthenticated) {
		httpx.WriteJSON(w, http.StatusOK, nil)
		return
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, sessionData(view))
}

// session authenticates the request and, when the expiry slid, re-sends
// the cookie so the browser's copy lives as long as the server's. A cookie
// that no longer names a session is cleared.
func (k *Kavach) session(w http.ResponseWriter, r *http.Request) (users.SessionView, error) {
	tok, fromCookie := k.Auth.token(r)
	if tok == "" {
		return users.SessionView{}, users.ErrUnauthenticated
	}
	view, refreshed, err := k.Users.Authenticate(r.Context(), tok, true)
	if errors.Is(err, users.ErrUnauthenticated) && fromCookie {
		k.Auth.cookie.clear(w)
	}
	if err == nil && refreshed && fromCookie {
		k.Auth.cookie.set(w, tok, view.Session.ExpiresAt, k.cfg.Now(), view.Session.Persistent)
	}
	return view, err
}

// signedIn runs h only for requests with a valid session.
func (k *Kavach) signedIn(h func(http.ResponseWriter, *http.Request, users.SessionView)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		view, err := k.session(w, r)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		h(w, r, view)
	}
}

func (k *Kavach) handleListSessions(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	list, err := k.Users.ListSessions(r.Context(), view.User.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]Session, 0, len(list))
	for _, s := range list {
		ps := publicSession(s)
		ps.Current = s.ID == view.Session.ID
		out = append(out, ps)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleRevokeSession(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		ID string `json:"id"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	if req.ID == "" {
		k.fail(w, r, &users.InputError{Field: "id", Message: "id is required"})
		return
	}
	if err := k.Users.RevokeSession(r.Context(), view.User.ID, req.ID); err != nil {
		k.fail(w, r, err)
		return
	}
	if req.ID == view.Session.ID {
		k.Auth.cookie.clear(w)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

func (k *Kavach) handleRevokeOthers(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct{}
	if !k.decodeOptional(w, r, &req) {
		return
	}
	n, err := k.Users.RevokeOtherSessions(r.Context(), view.User.ID, view.Session.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (k *Kavach) handleChangePassword(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		CurrentPassword     string `json:"currentPassword"`
		NewPassword         string `json:"newPassword"`
		RevokeOtherSessions bool   `json:"revokeOtherSessions"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	if err := k.Users.ChangePassword(r.Context(), view, req.CurrentPassword, req.NewPassword, req.RevokeOtherSessions); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"changed": true})
}

// mailAccepted is the one answer of the mail endpoints, whether or not an
// account exists.
var mailAccepted = map[string]any{"sent": true, "message": "If an account exists for this address, we sent it an email."}

func (k *Kavach) handleForgotPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email      string `json:"email"`
		RedirectTo string `json:"redirectTo"`
	}
	if !k.decode(w, r, &req) || !k.checkRedirect(w, "redirectTo", req.RedirectTo) {
		return
	}
	if !k.allowAccount(w, "password-forgot", req.Email) {
		return
	}
	if err := k.Users.RequestPasswordReset(r.Context(), req.Email, k.absolute(req.RedirectTo)); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, mailAccepted)
}

func (k *Kavach) handleResetPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"newPassword"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	if err := k.Users.ResetPassword(r.Context(), req.Token, req.NewPassword); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"reset": true})
}

func (k *Kavach) handleSendVerification(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email       string `json:"email"`
		CallbackURL string `json:"callbackURL"`
	}
	if !k.decodeOptional(w, r, &req) || !k.checkRedirect(w, "callbackURL", req.CallbackURL) {
		return
	}
	if req.Email == "" {
		view, err := k.session(w, r)
		if err != nil {
			k.fail(w, r, &users.InputError{Field: "email", Message: "email is required when not signed in"})
			return
		}
		req.Email = view.User.Email
	}
	if !k.allowAccount(w, "send-verification", req.Email) {
		return
	}
	if err := k.Users.SendVerification(r.Context(), req.Email, req.CallbackURL); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, mailAccepted)
}

// handleVerifyEmail is opened from an email. With a trusted callbackURL it
// redirects there (adding error=INVALID_TOKEN on failure); otherwise it
// answers JSON.
func (k *Kavach) handleVerifyEmail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	callback := q.Get("callbackURL")
	if !k.checkRedirect(w, "callbackURL", callback) {
		return
	}
	user, err := k.Users.VerifyEmail(r.Context(), q.Get("token"))
	if callback != "" {
		target := k.absolute(callback)
		if err != nil {
			_, code, _ := errorResponse(err)
			target = addQuery(target, "error", code)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"verified": true, "user": publicUser(user)})
}

func (k *Kavach) handleGetUser(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	httpx.WriteJSON(w, http.StatusOK, publicUser(view.User))
}

func (k *Kavach) handleUpdateUser(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Name  *string `json:"name"`
		Image *string `json:"image"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	u, err := k.Users.UpdateUser(r.Context(), view.User.ID, users.UpdateUserInput{Name: req.Name, Image: req.Image})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, publicUser(u))
}

// absolute turns a server path into a URL on the base URL.
func (k *Kavach) absolute(target string) string {
	if target != "" && target[0] == '/' {
		return k.cfg.BaseURL + target
	}
	return target
}

func addQuery(target, key, value string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func publicUser(u storage.User) User {
	return User{
		ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified, Image: u.Image,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

func publicSession(s storage.Session) Session {
	return Session{
		ID: s.ID, UserID: s.UserID, ExpiresAt: s.ExpiresAt, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		IPAddress: s.IPAddress, UserAgent: s.UserAgent, Method: s.Method,
	}
}
