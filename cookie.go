package kavach

import (
	"net/http"
	"net/url"
	"time"
)

// CookieName is the session cookie's name on plain http (development).
// On https it carries the __Host- prefix, which browsers only accept with
// Secure, Path=/ and no Domain — so no sibling subdomain can set it.
const CookieName = "kavach_session"

// Cookies beside the session's, named like it (prefix included).
const (
	twoFactorCookie     = "kavach_two_factor"     // a pending second factor
	trustedDeviceCookie = "kavach_trusted_device" // this browser skips the second factor
)

// named is the spec of another cookie with the same attributes.
func (c cookieSpec) named(name string) cookieSpec {
	if c.secure {
		name = "__Host-" + name
	}
	return cookieSpec{name: name, secure: c.secure}
}

type cookieSpec struct {
	name   string
	secure bool
}

func newCookieSpec(baseURL string) cookieSpec {
	u, err := url.Parse(baseURL)
	if err == nil && u.Scheme == "https" {
		return cookieSpec{name: "__Host-" + CookieName, secure: true}
	}
	return cookieSpec{name: CookieName}
}

// set writes the session cookie. Browser-session cookies (rememberMe=false)
// get no Expires, so the browser drops them when it closes.
func (c cookieSpec) set(w http.ResponseWriter, token string, expires, now time.Time, persistent bool) {
	ck := &http.Cookie{
		Name: c.name, Value: token, Path: "/", HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	}
	if persistent {
		ck.Expires = expires.UTC()
		ck.MaxAge = int(expires.Sub(now).Seconds())
		if ck.MaxAge <= 0 {
			ck.MaxAge = -1
		}
	}
	http.SetCookie(w, ck)
}

func (c cookieSpec) clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name, Value: "", Path: "/", HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
		MaxAge: -1, Expires: time.Unix(0, 0),
	})
}
