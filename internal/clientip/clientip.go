package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the client address of requests that reach Kavach through
// TrustedProxies. The zero Resolver trusts no proxy and returns RemoteAddr.
type Resolver struct {
	TrustedProxies []netip.Prefix
}

// ParsePrefixes parses trusted proxies given as CIDRs ("10.0.0.0/8") or bare
// addresses ("192.0.2.7", a single host). Blank entries are skipped, host
// bits are cleared and IPv4-mapped IPv6 forms are stored as IPv4, so
// "::ffff:10.0.0.0/104" trusts the same hosts as "10.0.0.0/8".
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("clientip: trusted proxy %q: %w", s, err)
		}
		prefixes = append(prefixes, p)
	}
	return prefixes, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = normalize(a)
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("IPv4-mapped prefix must be /96 or longer")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// ClientIP returns the address of the client that made req. RemoteAddr is
// the answer unless it is a trusted proxy; then X-Forwarded-For is walked
// from the right, skipping trusted hops, and the first untrusted address is
// the client. A malformed entry stops the walk at the last trusted hop,
// because nothing to its left can be vouched for. If every hop is trusted,
// the leftmost is returned. The result is never IPv4-mapped and carries no
// zone; it is the zero Addr only when RemoteAddr itself is unusable.
func (r Resolver) ClientIP(req *http.Request) netip.Addr {
	addr, ok := parseHop(req.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !r.trusted(addr) {
		return addr
	}
	headers := req.Header.Values("X-Forwarded-For")
	for i := len(headers) - 1; i >= 0; i-- {
		list := headers[i]
		for list != "" {
			var entry string
			if comma := strings.LastIndexByte(list, ','); comma >= 0 {
				list, entry = list[:comma], list[comma+1:]
			} else {
				list, entry = "", list
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue // "a, , b" and trailing commas come from sloppy proxies
			}
			hop, ok := parseHop(entry)
			if !ok {
				return addr
			}
			addr = hop
			if !r.trusted(addr) {
				return addr
			}
		}
	}
	return addr
}

// parseHop accepts an address with or without a port ("192.0.2.1",
// "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]:443").
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	return netip.Addr{}, false
}

// normalize drops the zone (Prefix.Contains never matches a zoned address)
// and unmaps 4in6, so one host has one form for trust checks and keys.
func normalize(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

func (r Resolver) trusted(a netip.Addr) bool {
	for _, p := range r.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// RateLimitKey returns the key a client address is rate limited under: an
// IPv4 address as is, and an IPv6 address masked to its /64, because one
// subscriber usually holds a whole /64 and could otherwise rotate through
// addresses for free. The zero Addr maps to "invalid".
func RateLimitKey(a netip.Addr) string {
	a = normalize(a)
	switch {
	case a.Is4():
		return a.String()
	case a.Is6():
		return netip.PrefixFrom(a, 64).Masked().String()
	default:
		return "invalid"
	}
}
