package authz

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Redirect URI rules (OAuth 2.1 §2.3.1, RFC 8252 §7.3, MCP):
//   - registered URIs are absolute, without fragment or user info;
//   - https, or http on a loopback host (127.0.0.1, [::1], localhost);
//   - matching is exact string equality, except that on a loopback host
//     the port may differ (native apps pick a free port at run time).
//
// "localhost" is matched like the loopback IP literals because MCP clients
// use it (RFC 8252 only recommends the literals).

var errRedirect = errors.New("invalid redirect URI")

// checkRegisteredRedirect validates a redirect URI at registration.
func checkRegisteredRedirect(raw string) error {
	if raw == "" || len(raw) > 2000 || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return errRedirect
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errRedirect
	}
	if u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return errRedirect
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return errRedirect
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// matchRedirect returns the registered URI that raw matches, or "" if
// none does.
func matchRedirect(raw string, registered []string) string {
	if checkRegisteredRedirect(raw) != nil {
		return ""
	}
	for _, r := range registered {
		if raw == r {
			return r
		}
	}
	req, err := url.Parse(raw)
	if err != nil || !isLoopbackHost(req.Hostname()) {
		return ""
	}
	for _, r := range registered {
		reg, err := url.Parse(r)
		if err != nil || !isLoopbackHost(reg.Hostname()) {
			continue
		}
		if reg.Scheme == req.Scheme && strings.EqualFold(reg.Hostname(), req.Hostname()) &&
			reg.EscapedPath() == req.EscapedPath() && reg.RawQuery == req.RawQuery {
			return r
		}
	}
	return ""
}
