package agents

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limits on constraints. They bound the work a decision does and the size
// of a stored grant.
const (
	MaxRateLimits    = 3 // one per window
	MaxArgumentRules = 64
	MaxRegexBytes    = 1024
	MaxEnumValues    = 256
	MaxPointerBytes  = 256
	MaxTimeWindows   = 32
	MaxIPAllow       = 256
	MaxInherited     = 16
)

// ErrInvalidConstraints is wrapped by every error Constraints.Validate and
// Constraints.Compile return.
var ErrInvalidConstraints = errors.New("invalid constraints")

// RateWindow is the period a RateLimit counts over.
type RateWindow string

// Rate-limit windows.
const (
	PerMinute RateWindow = "minute"
	PerHour   RateWindow = "hour"
	PerDay    RateWindow = "day"
)

// Duration returns the window's length, or 0 for an unknown window.
func (w RateWindow) Duration() time.Duration {
	switch w {
	case PerMinute:
		return time.Minute
	case PerHour:
		return time.Hour
	case PerDay:
		return 24 * time.Hour
	}
	return 0
}

// RateLimit allows at most Max calls per Window. Evaluation only reports
// the deciding grant's limits (Outcome.RateLimits); the caller counts calls
// and refuses with CodeRateLimited, because counters are state and this
// package keeps none.
type RateLimit struct {
	Window RateWindow `json:"window"`
	Max    int        `json:"max"`
}

// ArgumentRule constrains the request argument that Pointer (RFC 6901)
// selects. A rule holds when the value is absent and not Required, or when
// it is present and passes every check the rule sets: Regex (the value is
// a string matching the whole expression), Enum (the value equals one of
// the listed scalars) and Min/Max (the value is a number within the
// inclusive bounds).
type ArgumentRule struct {
	Pointer string `json:"pointer"`
	// Regex is RE2 syntax (package regexp) and must match the whole string:
	// it is compiled as ^(?:Regex)$, so "[a-z]+" refuses "abc1".
	Regex string `json:"regex,omitempty"`
	// Enum lists allowed JSON scalars: strings, numbers, booleans, null.
	// Numbers compare by exact decimal value (1, 1.0 and 1e0 are equal);
	// pass json.Number to keep integers beyond 2^53 exact.
	Enum     []any    `json:"enum,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Required bool     `json:"required,omitempty"`
}

// TimeWindow is a daily span of wall-clock time in a time zone. The span
// is half-open, [Start, End): "09:00"–"17:00" allows 09:00:00 through
// 16:59:59. End may be "24:00" for the end of the day. When Start is later
// than End the window crosses midnight and Days names the day it starts
// on: {Days: [Friday], Start: "22:00", End: "06:00"} allows Friday 22:00
// through Saturday 05:59.
type TimeWindow struct {
	// Days the window starts on; empty means every day.
	Days  []time.Weekday `json:"days,omitempty"`
	Start string         `json:"start"` // "HH:MM", 00:00–23:59
	End   string         `json:"end"`   // "HH:MM", 00:01–24:00, not equal to Start
	// Zone is an IANA name such as "Europe/Berlin"; empty means UTC, never
	// the server's local zone.
	Zone string `json:"zone,omitempty"`
}

// Condition is a set of time windows and an IP allowlist that must hold
// together with a grant's own. Delegation records a parent's windows and
// allowlist here so that a child is held to both (see Intersect).
type Condition struct {
	TimeWindows []TimeWindow `json:"timeWindows,omitempty"`
	IPAllow     []string     `json:"ipAllow,omitempty"`
}

// Constraints narrow an allow grant. Every field must hold for the grant
// to allow a request; within TimeWindows (and within IPAllow) one matching
// entry is enough.
type Constraints struct {
	RateLimits []RateLimit    `json:"rateLimits,omitempty"`
	Arguments  []ArgumentRule `json:"arguments,omitempty"`
	// TimeWindows: the request time must fall in at least one.
	TimeWindows []TimeWindow `json:"timeWindows,omitempty"`
	// IPAllow lists CIDRs ("10.0.0.0/8", "2001:db8::/32") or single
	// addresses; the client IP must be in at least one, and a request
	// without an IP is refused.
	IPAllow []string `json:"ipAllow,omitempty"`
	// RequireApproval makes the grant answer APPROVAL_REQUIRED once every
	// other constraint holds.
	RequireApproval bool `json:"requireApproval,omitempty"`
	// Inherited conditions must each hold as well (AND).
	Inherited []Condition `json:"inherited,omitempty"`
}

// IsZero reports whether c constrains nothing.
func (c Constraints) IsZero() bool {
	return len(c.RateLimits) == 0 && len(c.Arguments) == 0 && len(c.TimeWindows) == 0 &&
		len(c.IPAllow) == 0 && !c.RequireApproval && len(c.Inherited) == 0
}

// Validate checks c as Compile would.
func (c Constraints) Validate() error {
	_, err := c.Compile()
	return err
}

// CompiledConstraints are validated constraints ready to check: regular
// expressions compiled, zones loaded, CIDRs parsed. They are immutable and
// safe for concurrent use. A nil *CompiledConstraints constrains nothing.
type CompiledConstraints struct {
	rateLimits      []RateLimit
	rules           []compiledRule
	timeGroups      []timeGroup
	ipGroups        []ipGroup
	requireApproval bool
}

type timeGroup struct {
	windows   []compiledWindow
	inherited bool
}

type ipGroup struct {
	prefixes  []netip.Prefix // all in 16-byte form, see normalizePrefix
	inherited bool
}

type compiledWindow struct {
	days       uint8 // bit d set when the window starts on time.Weekday(d)
	start, end int   // minutes since midnight; end may be 1440
	loc        *time.Location
}

// Compile validates c and prepares it for checking.
func (c Constraints) Compile() (*CompiledConstraints, error) {
	cc, err := c.compile()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConstraints, err)
	}
	return cc, nil
}

func (c Constraints) compile() (*CompiledConstraints, error) {
	cc := &CompiledConstraints{requireApproval: c.RequireApproval}
	var err error
	if cc.rateLimits, err = compileRateLimits(c.RateLimits); err != nil {
		return nil, err
	}
	if len(c.Arguments) > MaxArgumentRules {
		return nil, fmt.Errorf("more than %d argument rules", MaxArgumentRules)
	}
	for i, r := range c.Arguments {
		cr, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("arguments[%d]: %v", i, err)
		}
		cc.rules = append(cc.rules, cr)
	}
	if err := cc.addCondition(Condition{TimeWindows: c.TimeWindows, IPAllow: c.IPAllow}, false); err != nil {
		return nil, err
	}
	if len(c.Inherited) > MaxInherited {
		return nil, fmt.Errorf("more than %d inherited conditions", MaxInherited)
	}
	for i, cond := range c.Inherited {
		if len(cond.TimeWindows) == 0 && len(cond.IPAllow) == 0 {
			return nil, fmt.Errorf("inherited[%d]: empty condition", i)
		}
		if err := cc.addCondition(cond, true); err != nil {
			return nil, fmt.Errorf("inherited[%d]: %v", i, err)
		}
	}
	return cc, nil
}

func compileRateLimits(limits []RateLimit) ([]RateLimit, error) {
	if len(limits) > MaxRateLimits {
		return nil, fmt.Errorf("more than %d rate limits", MaxRateLimits)
	}
	for i, l := range limits {
		if l.Window.Duration() == 0 {
			return nil, fmt.Errorf("rateLimits[%d]: window %q is not minute, hour or day", i, l.Window)
		}
		if l.Max < 1 {
			return nil, fmt.Errorf("rateLimits[%d]: max must be at least 1 (use a deny grant to refuse every call)", i)
		}
		for _, prev := range limits[:i] {
			if prev.Window == l.Window {
				return nil, fmt.Errorf("rateLimits[%d]: a second limit per %s", i, l.Window)
			}
		}
	}
	return slices.Clone(limits), nil
}

func (cc *CompiledConstraints) addCondition(cond Condition, inherited bool) error {
	if len(cond.TimeWindows) > MaxTimeWindows {
		return fmt.Errorf("more than %d time windows", MaxTimeWindows)
	}
	if len(cond.TimeWindows) > 0 {
		g := timeGroup{inherited: inherited}
		for i, w := range cond.TimeWindows {
			cw, err := compileWindow(w)
			if err != nil {
				return fmt.Errorf("timeWindows[%d]: %v", i, err)
			}
			g.windows = append(g.windows, cw)
		}
		cc.timeGroups = append(cc.timeGroups, g)
	}
	if len(cond.IPAllow) > MaxIPAllow {
		return fmt.Errorf("more than %d ipAllow entries", MaxIPAllow)
	}
	if len(cond.IPAllow) > 0 {
		g := ipGroup{inherited: inherited}
		for i, s := range cond.IPAllow {
			p, err := parseAllowEntry(s)
			if err != nil {
				return fmt.Errorf("ipAllow[%d]: %v", i, err)
			}
			g.prefixes = append(g.prefixes, p)
		}
		cc.ipGroups = append(cc.ipGroups, g)
	}
	return nil
}

func compileWindow(w TimeWindow) (compiledWindow, error) {
	var cw compiledWindow
	if len(w.Days) == 0 {
		cw.days = 0x7f
	}
	for _, d := range w.Days {
		if d < time.Sunday || d > time.Saturday {
			return cw, fmt.Errorf("day %d is not 0 (Sunday) to 6 (Saturday)", d)
		}
		cw.days |= 1 << d
	}
	var err error
	if cw.start, err = parseClock(w.Start, false); err != nil {
		return cw, fmt.Errorf("start: %v", err)
	}
	if cw.end, err = parseClock(w.End, true); err != nil {
		return cw, fmt.Errorf("end: %v", err)
	}
	if cw.start == cw.end {
		// Empty or whole day? Neither reading is obvious; say it plainly.
		return cw, errors.New(`start equals end; write "00:00"–"24:00" for the whole day`)
	}
	if cw.loc, err = loadZone(w.Zone); err != nil {
		return cw, err
	}
	return cw, nil
}

// parseClock parses "HH:MM" into minutes since midnight. Only End may be
// "24:00".
func parseClock(s string, isEnd bool) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	digits := [4]byte{s[0], s[1], s[3], s[4]}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, fmt.Errorf("%q is not HH:MM", s)
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	switch {
	case h == 24 && m == 0 && isEnd:
		return 24 * 60, nil
	case h > 23 || m > 59:
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return h*60 + m, nil
}

// zones caches loaded locations: time.LoadLocation reads the zone database
// on every call, and zone data does not change while the process runs.
var zones sync.Map // string → *time.Location

func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, errors.New(`zone "Local" depends on the server; name an IANA zone`)
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("zone %q: %v", name, err)
	}
	zones.Store(name, loc)
	return loc, nil
}

// parseAllowEntry parses a CIDR or a single address into 16-byte form.
func parseAllowEntry(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, err
		}
		if p != p.Masked() {
			return p, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, err
		}
		if a.Zone() != "" {
			return p, fmt.Errorf("%q has a zone; allowlists take addresses without one", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return normalizePrefix(p), nil
}

// normalizePrefix writes IPv4 prefixes in their IPv4-mapped IPv6 form
// (10.0.0.0/8 becomes ::ffff:10.0.0.0/104). With client addresses mapped
// the same way (normalizeAddr), "10.0.0.1" and "::ffff:10.0.0.1" are the
// same client, and one containment test serves both families.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4() {
		return netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
	}
	return p
}

func normalizeAddr(a netip.Addr) netip.Addr {
	return netip.AddrFrom16(a.As16()) // drops any zone, maps IPv4
}

// clone copies c so that the copy shares no slices or pointers with c.
func (c Constraints) clone() Constraints {
	c.RateLimits = slices.Clone(c.RateLimits)
	if c.Arguments != nil {
		args := make([]ArgumentRule, len(c.Arguments))
		for i, r := range c.Arguments {
			args[i] = r.clone()
		}
		c.Arguments = args
	}
	c.TimeWindows = cloneWindows(c.TimeWindows)
	c.IPAllow = slices.Clone(c.IPAllow)
	if c.Inherited != nil {
		inh := make([]Condition, len(c.Inherited))
		for i, cond := range c.Inherited {
			inh[i] = Condition{TimeWindows: cloneWindows(cond.TimeWindows), IPAllow: slices.Clone(cond.IPAllow)}
		}
		c.Inherited = inh
	}
	return c
}

func (r ArgumentRule) clone() ArgumentRule {
	r.Enum = slices.Clone(r.Enum) // scalars only, so a shallow copy is deep
	if r.Min != nil {
		v := *r.Min
		r.Min = &v
	}
	if r.Max != nil {
		v := *r.Max
		r.Max = &v
	}
	return r
}

func cloneWindows(ws []TimeWindow) []TimeWindow {
	if ws == nil {
		return nil
	}
	out := make([]TimeWindow, len(ws))
	for i, w := range ws {
		w.Days = slices.Clone(w.Days)
		out[i] = w
	}
	return out
}

// equalRule compares rules by value (Min and Max by what they point to).
func equalRule(a, b ArgumentRule) bool { return reflect.DeepEqual(a, b) }
