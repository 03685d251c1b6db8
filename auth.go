package kavach

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/kavachos/kavach/users"
)

// Result is what library calls return instead of panicking or failing:
// Success with Data (nil when there is nothing, e.g. no session), or
// Success false with Error when something went wrong on our side.
type Result[T any] struct {
	Success bool   `json:"success"`
	Data    *T     `json:"data"`
	Error   *Error `json:"error,omitempty"`
}

// Error is the machine-readable error of a Result and of the HTTP envelope.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// User is the public view of a human user.
type User struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	EmailVerified bool      `json:"emailVerified"`
	Image         *string   `json:"image"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// Session is the public view of a session (never its token).
type Session struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	ExpiresAt time.Time `json:"expiresAt"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	IPAddress string    `json:"ipAddress"`
	UserAgent string    `json:"userAgent"`
	// Method is how the session was signed in: "email-password",
	// "passkey", "magic-link", "email-otp", "phone-otp",
	// "oauth:<provider>", with "+totp" or "+backup-code" after a second
	// factor.
	Method  string `json:"method,omitempty"`
	Current bool   `json:"current,omitempty"`
}

// SessionData is a session with its user, as GET /api/auth/session returns.
type SessionData struct {
	Session Session `json:"session"`
	User    User    `json:"user"`
}

// Auth reads the caller's session from a request: the session cookie, or
// an "Authorization: Bearer" token for non-browser clients.
type Auth struct {
	k      *Kavach
	cookie cookieSpec
}

// GetSession returns the request's session and user; Data is nil when the
// request carries no valid session.
func (a *Auth) GetSession(ctx context.Context, r *http.Request) Result[SessionData] {
	view, _, err := a.authenticate(ctx, r)
	switch {
	case errors.Is(err, users.ErrUnauthenticated):
		return Result[SessionData]{Success: true}
	case err != nil:
		a.k.cfg.Logger.Error("session lookup failed", "err", err)
		return Result[SessionData]{Error: &Error{Code: "INTERNAL_ERROR", Message: "Session lookup failed."}}
	}
	d := sessionData(view)
	return Result[SessionData]{Success: true, Data: &d}
}

// GetUser returns the request's user; Data is nil when signed out.
func (a *Auth) GetUser(ctx context.Context, r *http.Request) Result[User] {
	s := a.GetSession(ctx, r)
	if !s.Success || s.Data == nil {
		return Result[User]{Success: s.Success, Error: s.Error}
	}
	return Result[User]{Success: true, Data: &s.Data.User}
}

// token extracts the bearer secret: the cookie first, then the
// Authorization header.
func (a *Auth) token(r *http.Request) (token string, fromCookie bool) {
	if c, err := r.Cookie(a.cookie.name); err == nil && c.Value != "" {
		return c.Value, true
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), false
	}
	return "", false
}

func (a *Auth) authenticate(ctx context.Context, r *http.Request) (users.SessionView, bool, error) {
	tok, _ := a.token(r)
	if tok == "" {
		return users.SessionView{}, false, users.ErrUnauthenticated
	}
	// The library cannot re-send the cookie, so it never slides the expiry
	// (the HTTP endpoints do, and re-send it).
	return a.k.Users.Authenticate(ctx, tok, false)
}

func sessionData(v users.SessionView) SessionData {
	return SessionData{Session: publicSession(v.Session), User: publicUser(v.User)}
}
