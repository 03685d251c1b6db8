package kavach

import (
	"net/http"
	"time"

	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/users"
)

const adminUsersPath = "/api/auth/admin/users"

// maxBanSeconds bounds expiresIn (100 years), so the end time never
// overflows.
const maxBanSeconds = 100 * 365 * 24 * 3600

func (k *Kavach) handleBanUser(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct {
		Reason    string `json:"reason"`
		ExpiresIn *int64 `json:"expiresIn"` // seconds; absent: until lifted
	}
	if !k.decodeOptional(w, r, &req) {
		return
	}
	target := r.PathValue("id")
	if target == view.User.ID {
		k.fail(w, r, &users.InputError{Field: "id", Message: "admins cannot ban themselves"})
		return
	}
	var d time.Duration
	if req.ExpiresIn != nil {
		if *req.ExpiresIn <= 0 || *req.ExpiresIn > maxBanSeconds {
			k.fail(w, r, &users.InputError{Field: "expiresIn", Message: "expiresIn must be a positive number of seconds (at most 100 years)"})
			return
		}
		d = time.Duration(*req.ExpiresIn) * time.Second
	}
	until, err := k.Users.BanUser(r.Context(), target, req.Reason, d, view.User.ID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := map[string]any{"banned": true, "userId": target}
	if until != nil {
		out["until"] = until.Format(time.RFC3339Nano)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (k *Kavach) handleUnbanUser(w http.ResponseWriter, r *http.Request, view users.SessionView) {
	var req struct{}
	if !k.decodeOptional(w, r, &req) {
		return
	}
	if err := k.Users.UnbanUser(r.Context(), r.PathValue("id"), view.User.ID); err != nil {
		k.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"banned": false, "userId": r.PathValue("id")})
}
