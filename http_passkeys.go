package kavach

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/users"
)

// Passkey routes (docs/sign-in-methods.md): registration and management
// for signed-in users, and sign-in with a passkey. The options answers are
// what navigator.credentials.create / get take ({"publicKey": …}); the
// browser's credential, as JSON, is posted back as "response".

// Passkey is a registered passkey as the API shows it.
type Passkey struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	CreatedAt    time.Time  `json:"createdAt"`
	LastUsedAt   *time.Time `json:"lastUsedAt"`
	BackedUp     bool       `json:"backedUp"`
	Transports   []string   `json:"transports"`
	CloneWarning bool       `json:"cloneWarning"`
}

func publicPasskey(p users.PasskeyInfo) Passkey {
	return Passkey{
		ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt,
		BackedUp: p.BackedUp, Transports: p.Transports, CloneWarning: p.CloneWarning,
	}
}

func (k *Kavach) handlePasskeyRegisterOptions(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Password string `json:"password"` // re-authentication for sessions older than 10 minutes
	}
	if !k.decodeOptional(w, r, &req) {
		return
	}
	opts, err := k.Users.BeginPasskeyRegistration(r.Context(), view, req.Password)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, opts)
}

// passkeyResponse requires the browser's credential as a JSON object.
func passkeyResponse(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &users.InputError{Field: "response", Message: "response must be the credential from the browser, as a JSON object"}
	}
	return raw, nil
}

func (k *Kavach) handlePasskeyRegisterVerify(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Response json.RawMessage `json:"response"`
		Name     string          `json:"name"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	resp, err := passkeyResponse(req.Response)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	p, err := k.Users.FinishPasskeyRegistration(r.Context(), view, resp, req.Name, k.clientInfo(r))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, publicPasskey(p))
}

func (k *Kavach) handlePasskeyAuthOptions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if !k.decodeOptional(w, r, &req) {
		return
	}
	if req.Email != "" && !k.allowAccount(w, "passkey-options", req.Email) {
		return
	}
	opts, err := k.Users.BeginPasskeyLogin(r.Context(), req.Email)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, opts)
}

func (k *Kavach) handlePasskeyAuthVerify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Response   json.RawMessage `json:"response"`
		RememberMe *bool           `json:"rememberMe"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	resp, err := passkeyResponse(req.Response)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	res, err := k.Users.SignInWithPasskey(r.Context(), users.PasskeySignInInput{
		Response: resp, RememberMe: req.RememberMe == nil || *req.RememberMe,
		Client: k.clientInfo(r), TrustedDevice: k.trustedDevice(r),
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, k.startSession(w, res))
}

func (k *Kavach) handleListPasskeys(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	list, err := k.Users.ListPasskeys(r.Context(), view.User.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]Passkey, len(list))
	for i, p := range list {
		out[i] = publicPasskey(p)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleRenamePasskey(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Name string `json:"name"`
	}
	if !k.decode(w, r, &req) {
		return
	}
	p, err := k.Users.RenamePasskey(r.Context(), view.User.ID, r.PathValue("id"), req.Name)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, publicPasskey(p))
}

func (k *Kavach) handleDeletePasskey(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	if err := k.Users.DeletePasskey(r.Context(), view.User.ID, r.PathValue("id"), k.clientInfo(r)); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}
