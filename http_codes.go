package kavach

import (
	"cmp"
	"errors"
	"net/http"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/users"
)

// Magic links, email codes and phone codes (docs/sign-in-methods.md).
// Each sign-in ends in users.finishSignIn, so the answers are those of a
// password sign-in: a session, or a pending second factor.

func (k *Kavach) codeRoutes(api *http.ServeMux) {
	api.HandleFunc("POST /api/auth/magic-link/send", k.limitIP("magic-link", k.handleMagicLinkSend))
	api.HandleFunc("GET /api/auth/magic-link/verify", k.limitIP("magic-link-verify", k.handleMagicLinkVerify))
	api.HandleFunc("POST /api/auth/email-otp/send", k.limitIP("email-otp", k.handleEmailOTPSend))
	api.HandleFunc("POST /api/auth/email-otp/verify", k.limitIP("email-otp-verify", k.handleEmailOTPVerify))
	api.HandleFunc("POST /api/auth/phone/send-code", k.limitIP("phone-code", k.handlePhoneSendCode))
	api.HandleFunc("POST /api/auth/phone/verify", k.limitIP("phone-verify", k.handlePhoneVerify))
}

func (k *Kavach) handleMagicLinkSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email              string `json:"email"`
		Name               string `json:"name"`
		CallbackURL        string `json:"callbackURL"`
		NewUserCallbackURL string `json:"newUserCallbackURL"`
		ErrorCallbackURL   string `json:"errorCallbackURL"`
	}
	if !k.decode(w, r, &req) || !k.checkRedirect(w, "callbackURL", req.CallbackURL) ||
		!k.checkRedirect(w, "newUserCallbackURL", req.NewUserCallbackURL) ||
		!k.checkRedirect(w, "errorCallbackURL", req.ErrorCallbackURL) {
		return
	}
	if !k.allowAccount(w, "magic-link", req.Email) {
		return
	}
	err := k.Users.SendMagicLink(r.Context(), users.MagicLinkInput{
		Email: req.Email, Name: req.Name, CallbackURL: k.absolute(req.CallbackURL),
		NewUserCallbackURL: k.absolute(req.NewUserCallbackURL), ErrorCallbackURL: k.absolute(req.ErrorCallbackURL),
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, mailAccepted)
}

// handleMagicLinkVerify is opened from the mail. It redirects to
// callbackURL (newUserCallbackURL for a new account; the second-factor
// page when one is needed) and, on failure, to errorCallbackURL or else
// callbackURL with ?error=CODE. Without any of them it answers JSON.
func (k *Kavach) handleMagicLinkVerify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	callback, newUser, onError := q.Get("callbackURL"), q.Get("newUserCallbackURL"), q.Get("errorCallbackURL")
	// The link can be edited by whoever holds it: check its targets again.
	if !k.checkRedirect(w, "callbackURL", callback) || !k.checkRedirect(w, "newUserCallbackURL", newUser) ||
		!k.checkRedirect(w, "errorCallbackURL", onError) {
		return
	}
	res, err := k.Users.VerifyMagicLink(r.Context(), users.VerifyMagicLinkInput{
		Token: q.Get("token"), Client: k.clientInfo(r), TrustedDevice: k.trustedDevice(r),
	})
	if err != nil {
		target := cmp.Or(onError, callback)
		if target == "" {
			k.fail(w, r, err)
			return
		}
		status, code, _ := errorResponse(err)
		if status >= 500 {
			k.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		http.Redirect(w, r, addQuery(k.absolute(target), "error", code), http.StatusFound)
		return
	}
	target := callback
	if res.NewUser && newUser != "" {
		target = newUser
	}
	if target == "" {
		httpx.WriteJSON(w, http.StatusOK, k.startSession(w, res))
		return
	}
	k.redirectSignIn(w, r, res, target)
}

func (k *Kavach) handleEmailOTPSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if !k.decode(w, r, &req) || !k.allowAccount(w, "email-otp", req.Email) {
		return
	}
	if err := k.Users.SendEmailOTP(r.Context(), req.Email); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, mailAccepted)
}

func (k *Kavach) handleEmailOTPVerify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email      string `json:"email"`
		Code       string `json:"code"`
		Name       string `json:"name"`
		RememberMe *bool  `json:"rememberMe"`
	}
	if !k.decode(w, r, &req) || !k.allowAccount(w, "email-otp-verify", req.Email) {
		return
	}
	res, err := k.Users.SignInWithEmailOTP(r.Context(), users.EmailOTPInput{
		Email: req.Email, Code: req.Code, Name: req.Name, RememberMe: req.RememberMe == nil || *req.RememberMe,
		Client: k.clientInfo(r), TrustedDevice: k.trustedDevice(r),
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, k.startSession(w, res))
}

// phoneKey is the rate-limit key of a number: its E.164 form, so that
// spacing does not make a new key.
func phoneKey(raw string) string {
	if n, err := users.NormalizePhone(raw); err == nil {
		return n
	}
	return raw
}

func (k *Kavach) handlePhoneSendCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PhoneNumber string `json:"phoneNumber"`
	}
	if !k.decode(w, r, &req) || !k.allowAccount(w, "phone-code", phoneKey(req.PhoneNumber)) {
		return
	}
	if err := k.Users.SendPhoneCode(r.Context(), req.PhoneNumber); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"sent": true, "message": "We sent a code to this number."})
}

// handlePhoneVerify verifies the number for a signed-in request, and
// signs in with it otherwise.
func (k *Kavach) handlePhoneVerify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PhoneNumber string `json:"phoneNumber"`
		Code        string `json:"code"`
		RememberMe  *bool  `json:"rememberMe"`
		Password    string `json:"password"` // re-authentication when adding the number to a signed-in account
	}
	if !k.decode(w, r, &req) || !k.allowAccount(w, "phone-verify", phoneKey(req.PhoneNumber)) {
		return
	}
	view, err := k.session(w, r)
	switch {
	case err == nil:
		number, err := k.Users.VerifyPhone(r.Context(), view, req.PhoneNumber, req.Code, req.Password)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"phoneNumber": number, "verified": true})
		return
	case !errors.Is(err, users.ErrUnauthenticated):
		k.fail(w, r, err)
		return
	}
	res, err := k.Users.SignInWithPhone(r.Context(), users.PhoneCodeInput{
		PhoneNumber: req.PhoneNumber, Code: req.Code, RememberMe: req.RememberMe == nil || *req.RememberMe,
		Client: k.clientInfo(r), TrustedDevice: k.trustedDevice(r),
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, k.startSession(w, res))
}
