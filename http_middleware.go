package kavach

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kavachos/kavach/internal/clientip"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/internal/ratelimit"
)

// secure adds the headers every response gets and turns panics into a
// logged 500, so one bug cannot take the process down.
func (k *Kavach) secure(next http.Handler) http.Handler {
	hsts := strings.HasPrefix(k.cfg.BaseURL, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				k.cfg.Logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				httpx.WriteError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "Something went wrong on our side.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// originGuard refuses state-changing requests that a browser sent from an
// untrusted origin (CSRF, login CSRF). Browsers always send Origin on such
// requests, and Referer or Sec-Fetch-Site when they do not; a request with
// none of them did not come from a browser (curl, a server, a mobile app)
// and cannot ride on a victim's cookies, so it passes. Bearer-token
// requests carry no ambient credentials and pass as well.
type originGuard struct {
	trusted map[string]bool
}

func newOriginGuard(baseURL string, extra []string, development bool) originGuard {
	base := origin(baseURL)
	g := originGuard{trusted: map[string]bool{base: true}}
	if development {
		for _, a := range loopbackAliases(base) {
			g.trusted[a] = true
		}
	}
	for _, o := range extra {
		if v := origin(o); v != "" {
			g.trusted[v] = true
		}
	}
	return g
}

func (g originGuard) isTrusted(o string) bool {
	n := origin(o)
	return n != "" && g.trusted[n]
}

// allowed reports whether r may proceed.
func (g originGuard) allowed(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if r.Header.Get("Cookie") == "" && strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o != "null" && g.isTrusted(o)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return g.isTrusted(ref)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// trustedRedirect reports whether raw may be a redirect target: an absolute
// http(s) URL on a trusted origin, or a path on this server. Whitespace,
// control characters and backslashes are refused outright: browsers strip
// or rewrite them, so "/\t/evil.example" would become "//evil.example".
func (g originGuard) trustedRedirect(raw string) bool {
	if raw == "" {
		return true
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return false
	}
	if u.Scheme == "" && u.Host == "" {
		return strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	return g.isTrusted(raw)
}

func (k *Kavach) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !k.origins.allowed(r) {
			httpx.WriteError(w, http.StatusForbidden, "INVALID_ORIGIN", "This request came from an origin that is not trusted.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limiters holds the rate limiters of credential endpoints.
type limiters struct {
	ip      clientip.Resolver
	perIP   *ratelimit.Limiter // key: endpoint + client network
	account *ratelimit.Limiter // key: endpoint + normalized email
}

// limitIP applies the per-IP limit of one credential endpoint.
func (k *Kavach) limitIP(name string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := name + "|" + clientip.RateLimitKey(k.limits.ip.ClientIP(r))
		if ok, retry := k.limits.perIP.Allow(key, k.cfg.Now()); !ok {
			tooMany(w, retry)
			return
		}
		next(w, r)
	}
}

// allowAccount applies the per-account limit; it answers false after
// writing the 429.
func (k *Kavach) allowAccount(w http.ResponseWriter, name, email string) bool {
	key := name + "|" + strings.ToLower(strings.TrimSpace(email))
	if ok, retry := k.limits.account.Allow(key, k.cfg.Now()); !ok {
		tooMany(w, retry)
		return false
	}
	return true
}

// allowAccountQuiet applies the per-account limit without writing (pages
// answer in HTML).
func (k *Kavach) allowAccountQuiet(name, email string) bool {
	ok, _ := k.limits.account.Allow(name+"|"+strings.ToLower(strings.TrimSpace(email)), k.cfg.Now())
	return ok
}

func tooMany(w http.ResponseWriter, retry time.Duration) {
	setRetryAfter(w, retry)
	httpx.WriteError(w, http.StatusTooManyRequests, "RATE_LIMITED", "Too many requests. Try again later.")
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}
