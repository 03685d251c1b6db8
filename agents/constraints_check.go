package agents

import (
	"encoding/json"
	"net/netip"
	"time"
)

// The Check methods return a reason code and a human sentence when a
// constraint refuses the request, and two empty strings when it holds. A
// nil *CompiledConstraints holds for every request.

// Check runs every check in the order Evaluate uses — time, IP, arguments,
// approval — and returns the first refusal. Approval comes last so that a
// human is only asked about a request that would otherwise pass. Rate
// limits are not checked here; see RateLimits.
func (c *CompiledConstraints) Check(args json.RawMessage, now time.Time, ip netip.Addr) (code, reason string) {
	if c == nil {
		return "", ""
	}
	if code, reason = c.CheckTime(now); code != "" {
		return code, reason
	}
	if code, reason = c.CheckIP(ip); code != "" {
		return code, reason
	}
	if code, reason = c.CheckArguments(args); code != "" {
		return code, reason
	}
	if c.requireApproval {
		return CodeApprovalRequired, "this action requires a human's approval"
	}
	return "", ""
}

// CheckTime refuses with CodeOutsideTimeWindow unless now falls in one of
// the grant's own windows and in one window of every inherited condition.
// Windows are wall-clock times in their zone: on the day a zone moves its
// clocks forward the skipped times never occur, and when it moves them back
// the repeated hour is inside a window twice.
func (c *CompiledConstraints) CheckTime(now time.Time) (code, reason string) {
	if c == nil {
		return "", ""
	}
	for _, g := range c.timeGroups {
		if !g.contains(now) {
			if g.inherited {
				return CodeOutsideTimeWindow, "outside the time windows inherited through delegation"
			}
			return CodeOutsideTimeWindow, "outside the grant's time windows"
		}
	}
	return "", ""
}

func (g *timeGroup) contains(now time.Time) bool {
	for i := range g.windows {
		if g.windows[i].contains(now) {
			return true
		}
	}
	return false
}

func (w *compiledWindow) contains(now time.Time) bool {
	t := now.In(w.loc)
	h, m, _ := t.Clock()
	minute := h*60 + m
	day := t.Weekday()
	switch {
	case w.start < w.end:
		return minute >= w.start && minute < w.end && w.days&(1<<day) != 0
	case minute >= w.start: // crosses midnight; this is the evening part
		return w.days&(1<<day) != 0
	case minute < w.end: // the morning part belongs to yesterday's window
		return w.days&(1<<((day+6)%7)) != 0
	}
	return false
}

// CheckIP refuses with CodeIPNotAllowed unless ip is in one of the grant's
// own allowlist entries and in one entry of every inherited allowlist. A
// missing (zero) address is refused whenever any allowlist applies.
// IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) count as their IPv4
// address, and an IPv6 zone is ignored.
func (c *CompiledConstraints) CheckIP(ip netip.Addr) (code, reason string) {
	if c == nil || len(c.ipGroups) == 0 {
		return "", ""
	}
	if !ip.IsValid() {
		return CodeIPNotAllowed, "the request has no client IP, and the grant allows only listed addresses"
	}
	a := normalizeAddr(ip)
	for _, g := range c.ipGroups {
		if !g.contains(a) {
			if g.inherited {
				return CodeIPNotAllowed, "the client IP is not in the allowlist inherited through delegation"
			}
			return CodeIPNotAllowed, "the client IP is not in the grant's allowlist"
		}
	}
	return "", ""
}

func (g *ipGroup) contains(a netip.Addr) bool {
	for _, p := range g.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckArguments refuses with CodeArgumentNotAllowed when an argument rule
// fails, naming the rule's pointer, or when rules exist and args cannot be
// decoded (see decodeArguments). Empty args mean no arguments: every
// pointer is absent. Without rules, args are not even parsed.
func (c *CompiledConstraints) CheckArguments(args json.RawMessage) (code, reason string) {
	if c == nil || len(c.rules) == 0 {
		return "", ""
	}
	var doc any
	hasDoc := len(args) > 0
	if hasDoc {
		var err error
		if doc, err = decodeArguments(args); err != nil {
			return CodeArgumentNotAllowed, err.Error()
		}
	}
	for i := range c.rules {
		if why := c.rules[i].check(doc, hasDoc); why != "" {
			return CodeArgumentNotAllowed, why
		}
	}
	return "", ""
}

// CheckArgumentValues is CheckArguments for arguments a Go caller holds as
// a map. The map goes through JSON so that both forms are judged alike; a
// map that cannot be encoded (a NaN, a channel) is refused.
func (c *CompiledConstraints) CheckArgumentValues(args map[string]any) (code, reason string) {
	if c == nil || len(c.rules) == 0 {
		return "", ""
	}
	if args == nil {
		return c.CheckArguments(nil)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return CodeArgumentNotAllowed, "arguments cannot be encoded as JSON"
	}
	return c.CheckArguments(raw)
}

// RequireApproval reports whether the grant asks a human first.
func (c *CompiledConstraints) RequireApproval() bool { return c != nil && c.requireApproval }

// RateLimits returns the grant's limits for the caller to enforce. The
// slice is shared: do not modify it.
func (c *CompiledConstraints) RateLimits() []RateLimit {
	if c == nil {
		return nil
	}
	return c.rateLimits
}
