package kavach

import (
	"errors"
	"net/http"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/users"
)

// Two-factor routes (docs/sign-in-methods.md): enrolment and settings for
// signed-in users, and the second step of every sign-in.

type passwordRequest struct {
	Password string `json:"password"`
}

func (k *Kavach) handleTwoFactorEnable(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req passwordRequest
	if !k.decodeOptional(w, r, &req) {
		return
	}
	en, err := k.Users.EnableTwoFactor(r.Context(), view, req.Password)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"totpURI": en.TOTPURI, "secret": en.Secret, "backupCodes": en.BackupCodes,
		"message": "Scan the URI with an authenticator app, then confirm with POST /api/auth/two-factor/verify {code}.",
	})
}

type twoFactorVerifyRequest struct {
	Code           string `json:"code"`
	BackupCode     string `json:"backupCode"`
	TrustDevice    bool   `json:"trustDevice"`
	TwoFactorToken string `json:"twoFactorToken"`
}

// handleTwoFactorVerify is the second step of a sign-in when a pending
// sign-in is presented (the body's twoFactorToken or the cookie), and
// otherwise confirms a signed-in user's enrolment.
func (k *Kavach) handleTwoFactorVerify(w http.ResponseWriter, r *http.Request) {
	var req twoFactorVerifyRequest
	if !k.decode(w, r, &req) {
		return
	}
	token := req.TwoFactorToken
	fromCookie := false
	if token == "" {
		if c, err := r.Cookie(k.Auth.cookie.named(twoFactorCookie).name); err == nil {
			token, fromCookie = c.Value, true
		}
	}
	if token == "" {
		view, err := k.session(w, r)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		if err := k.Users.ConfirmTwoFactor(r.Context(), view, req.Code); err != nil {
			k.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]bool{"enabled": true})
		return
	}
	res, err := k.Users.VerifyTwoFactor(r.Context(), users.VerifyTwoFactorInput{
		Token: token, Code: req.Code, BackupCode: req.BackupCode, TrustDevice: req.TrustDevice, Client: k.clientInfo(r),
	})
	// The cookie goes once its pending sign-in is spent: used, or expired.
	if fromCookie && (err == nil || errors.Is(err, users.ErrTwoFactorExpired)) {
		k.Auth.cookie.named(twoFactorCookie).clear(w)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, k.startSession(w, res))
}

func (k *Kavach) handleTwoFactorDisable(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req passwordRequest
	if !k.decodeOptional(w, r, &req) {
		return
	}
	if err := k.Users.DisableTwoFactor(r.Context(), view, req.Password); err != nil {
		k.fail(w, r, err)
		return
	}
	k.Auth.cookie.named(trustedDeviceCookie).clear(w)
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"enabled": false})
}

func (k *Kavach) handleBackupCodes(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req passwordRequest
	if !k.decodeOptional(w, r, &req) {
		return
	}
	codes, err := k.Users.RegenerateBackupCodes(r.Context(), view, req.Password)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"backupCodes": codes})
}

func (k *Kavach) handleTwoFactorStatus(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	st, err := k.Users.TwoFactorStatusOf(r.Context(), view.User.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"enabled": st.Enabled, "pending": st.Pending, "backupCodesLeft": st.BackupCodesLeft,
	})
}
