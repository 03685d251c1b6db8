package trust

import (
	"fmt"
	"net/netip"
	"time"
)

// observeNetwork fires on a network the agent was not seen in.
func (b *Baseline) observeNetwork(h history, ip netip.Addr, c *NetworkConfig, out []Finding) []Finding {
	p := network(ip, c.IPv4Bits, c.IPv6Bits)
	isNew, churning := remember(&b.Networks, p, h.at, c.MaxKnown, c.ChurnWindow)
	if isNew && !churning && c.Warmup.met(h.n, h.age) {
		out = append(out, Finding{Kind: FindingNewNetwork, At: h.at, Severity: c.Severity,
			Detail: fmt.Sprintf("first call from %s (address %s)", p, ip.Unmap())})
	}
	return out
}

// observeUserAgent fires on a User-Agent the agent did not use before.
func (b *Baseline) observeUserAgent(h history, ua string, c *UserAgentConfig, out []Finding) []Finding {
	isNew, churning := remember(&b.UserAgents, hash64(ua), h.at, c.MaxKnown, c.ChurnWindow)
	if isNew && !churning && c.Warmup.met(h.n, h.age) {
		out = append(out, Finding{Kind: FindingNewUserAgent, At: h.at, Severity: c.Severity,
			Detail: fmt.Sprintf("first call with User-Agent %q", clip(ua, 120))})
	}
	return out
}

// observeDenied keeps the distinct denied resources of the last Window
// and fires when they reach Distinct; it then starts counting afresh.
func (b *Baseline) observeDenied(h history, resource string, c *ProbingConfig, out []Finding) []Finding {
	key := hash64(resource)
	// Forget what left the window; the rest stays in order of Last.
	s := b.DeniedResources
	keep := s[:0]
	var count int64
	for _, e := range s {
		if h.at.Sub(e.Last) >= c.Window {
			continue
		}
		if e.Key == key {
			count = e.Count
			continue // moved to the end below
		}
		keep = append(keep, e)
	}
	if len(keep) >= c.Distinct {
		// Only while warming up: forget the oldest.
		keep = append(keep[:0], keep[1:]...)
	}
	keep = append(keep, Seen[uint64]{Key: key, Last: h.at, Count: count + 1})
	b.DeniedResources = keep
	if len(keep) >= c.Distinct {
		if !c.Warmup.met(h.n, h.age) {
			return out
		}
		first := keep[0].Last
		b.DeniedResources = keep[:0]
		out = append(out, Finding{Kind: FindingProbing, At: h.at, Severity: c.Severity,
			Detail: fmt.Sprintf("%d different resources denied within %s, the last %q",
				c.Distinct, h.at.Sub(first).Round(time.Second), clip(resource, 120))})
	}
	return out
}

// observeToken fires when a token used from one network is used from a
// distant one (another network of TokenConfig's size, same address
// family) within Window. Addresses that are not public (private,
// loopback, link-local, shared CGNAT space) are not compared: the same
// client reaches Kavach through them and through the Internet.
func (b *Baseline) observeToken(h history, tokenID string, ip netip.Addr, c *TokenConfig, out []Finding) []Finding {
	ip = ip.Unmap()
	if !public(ip) {
		return out
	}
	p := network(ip, c.IPv4Bits, c.IPv6Bits)
	key := hash64(tokenID)
	i := -1
	oldest := -1
	for j := range b.Tokens {
		if b.Tokens[j].Key == key {
			i = j
			break
		}
		if oldest < 0 || b.Tokens[j].lastAt().Before(b.Tokens[oldest].lastAt()) {
			oldest = j
		}
	}
	if i < 0 {
		e := TokenSeen{Key: key}
		e.set(p, h.at)
		if len(b.Tokens) < c.MaxTokens {
			b.Tokens = append(b.Tokens, e)
		} else {
			b.Tokens[oldest] = e
		}
		return out
	}
	e := &b.Tokens[i]
	prev, prevAt := e.V6, e.V6At
	if ip.Is4() {
		prev, prevAt = e.V4, e.V4At
	}
	e.set(p, h.at)
	if prev.IsValid() && prev != p && h.at.Sub(prevAt) <= c.Window &&
		(e.FiredAt.IsZero() || h.at.Sub(e.FiredAt) > c.Window) && c.Warmup.met(h.n, h.age) {
		e.FiredAt = h.at
		out = append(out, Finding{Kind: FindingTokenSpread, At: h.at, Severity: c.Severity,
			Detail: fmt.Sprintf("one token used from %s and, %s later, from %s",
				prev, h.at.Sub(prevAt).Round(time.Second), p)})
	}
	return out
}

func (e *TokenSeen) set(p netip.Prefix, at time.Time) {
	if p.Addr().Is4() {
		e.V4, e.V4At = p, at
	} else {
		e.V6, e.V6At = p, at
	}
}

func (e *TokenSeen) lastAt() time.Time {
	if e.V4At.After(e.V6At) {
		return e.V4At
	}
	return e.V6At
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func public(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip)
}

// clip shortens s to at most n bytes for a Detail sentence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		n--
	}
	return s[:n] + "…"
}
