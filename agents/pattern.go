package agents

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on resource patterns and on the resources in requests. They bound
// the work one match does and keep stored grants readable; nothing
// legitimate needs more.
const (
	MaxResourceBytes    = 512
	MaxResourceSegments = 32
)

// ErrInvalidPattern is wrapped by every error ParsePattern returns.
var ErrInvalidPattern = errors.New("invalid resource pattern")

// ErrInvalidResource is wrapped by every error ValidateResource returns.
var ErrInvalidResource = errors.New("invalid resource")

// Pattern is a parsed resource pattern. The zero Pattern matches nothing.
//
// A pattern is a list of segments separated by ':'. A segment is either a
// literal, compared exactly and case-sensitively with the resource's
// segment at the same position, or '*'. A '*' before the last position
// matches exactly one segment; a '*' in the last position matches one or
// more segments, so "mcp:github:*" matches "mcp:github:issues" and
// "mcp:github:issues:42" but not "mcp:github". A lone "*" therefore matches
// every valid resource. Matching never crosses segment boundaries: a literal
// segment cannot contain ':' or '*'.
type Pattern struct {
	raw  string
	segs []string // "*" marks a wildcard; literals never contain '*'
	wild uint32   // bit i set when segs[i] is "*" (MaxResourceSegments ≤ 32)
	open bool     // the last segment is "*" and matches one or more segments
	lits int      // literal segments, for specificity
}

// ParsePattern parses and validates a resource pattern. It refuses empty
// patterns and empty segments ("a::b", "a:"), '*' inside a literal segment
// ("file*"), whitespace, control and invisible formatting characters,
// invalid UTF-8, and patterns over MaxResourceBytes bytes or
// MaxResourceSegments segments.
func ParsePattern(s string) (Pattern, error) {
	var buf [MaxResourceSegments]string
	n, err := splitSegments(s, &buf, true)
	if err != nil {
		return Pattern{}, fmt.Errorf("%w %q: %v", ErrInvalidPattern, s, err)
	}
	p := Pattern{raw: s, segs: make([]string, n)}
	copy(p.segs, buf[:n])
	for i, seg := range p.segs {
		if seg == "*" {
			p.wild |= 1 << i
		} else {
			p.lits++
		}
	}
	p.open = p.segs[n-1] == "*"
	return p, nil
}

// MustParsePattern is ParsePattern for patterns known to be valid, such as
// constants in code and tests; it panics on an invalid pattern.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// ValidateResource reports whether s is a valid concrete resource: the
// pattern rules without wildcards, since a request names one resource.
func ValidateResource(s string) error {
	var buf [MaxResourceSegments]string
	if _, err := splitSegments(s, &buf, false); err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidResource, s, err)
	}
	return nil
}

// String returns the pattern as it was written.
func (p Pattern) String() string { return p.raw }

// Literals returns the number of literal segments.
func (p Pattern) Literals() int { return p.lits }

// Wildcards returns the number of '*' segments.
func (p Pattern) Wildcards() int { return len(p.segs) - p.lits }

// Match reports whether the resource matches the pattern. An invalid
// resource (see ValidateResource) matches nothing.
func (p Pattern) Match(resource string) bool {
	var buf [MaxResourceSegments]string
	n, err := splitSegments(resource, &buf, false)
	if err != nil {
		return false
	}
	return p.matchSegments(buf[:n])
}

// matchSegments matches an already split and validated resource; it is the
// hot path of Evaluate and allocates nothing.
func (p *Pattern) matchSegments(res []string) bool {
	n := len(p.segs)
	if n == 0 {
		return false
	}
	if p.open {
		if len(res) < n {
			return false
		}
		n-- // the trailing '*' takes whatever remains
	} else if len(res) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if p.wild&(1<<i) == 0 && p.segs[i] != res[i] {
			return false
		}
	}
	return true
}

// fixed returns how many leading segments constrain a position each: all
// of them for a closed pattern, all but the trailing '*' for an open one.
func (p *Pattern) fixed() int {
	if p.open {
		return len(p.segs) - 1
	}
	return len(p.segs)
}

// Contains reports whether every resource q matches is also matched by p.
// Delegation uses it: a child's pattern must be contained in a parent's.
func (p Pattern) Contains(q Pattern) bool {
	if len(p.segs) == 0 || len(q.segs) == 0 {
		return false
	}
	// The lengths q matches must be lengths p matches.
	if p.open {
		if len(q.segs) < len(p.segs) {
			return false
		}
	} else if q.open || len(q.segs) != len(p.segs) {
		return false
	}
	// Wherever p has a literal, q must have the same literal; a wildcard in
	// q there would match resources p does not.
	for i := 0; i < p.fixed(); i++ {
		if p.wild&(1<<i) != 0 {
			continue
		}
		if q.wild&(1<<i) != 0 || p.segs[i] != q.segs[i] {
			return false
		}
	}
	return true
}

// Overlaps reports whether some resource matches both p and q.
func (p Pattern) Overlaps(q Pattern) bool {
	if len(p.segs) == 0 || len(q.segs) == 0 {
		return false
	}
	switch {
	case !p.open && !q.open && len(p.segs) != len(q.segs):
		return false
	case p.open && !q.open && len(q.segs) < len(p.segs):
		return false
	case q.open && !p.open && len(p.segs) < len(q.segs):
		return false
	}
	n := min(p.fixed(), q.fixed())
	for i := 0; i < n; i++ {
		if p.wild&(1<<i) != 0 || q.wild&(1<<i) != 0 {
			continue
		}
		if p.segs[i] != q.segs[i] {
			return false
		}
	}
	return true
}

// compareSpecificity orders patterns from most to least specific: more
// literal segments first, then fewer wildcards, then the longer pattern.
// It returns a negative number when p is more specific than q, zero when
// the three keys tie.
func (p *Pattern) compareSpecificity(q *Pattern) int {
	if p.lits != q.lits {
		return q.lits - p.lits
	}
	if pw, qw := p.Wildcards(), q.Wildcards(); pw != qw {
		return pw - qw
	}
	return len(q.raw) - len(p.raw)
}

// splitSegments validates s as a pattern (wildcards true) or a concrete
// resource and writes its segments into buf without allocating.
func splitSegments(s string, buf *[MaxResourceSegments]string, wildcards bool) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	if len(s) > MaxResourceBytes {
		return 0, fmt.Errorf("longer than %d bytes", MaxResourceBytes)
	}
	n := 0
	for {
		i := strings.IndexByte(s, ':')
		seg := s
		if i >= 0 {
			seg = s[:i]
		}
		if n == MaxResourceSegments {
			return 0, fmt.Errorf("more than %d segments", MaxResourceSegments)
		}
		if err := checkSegment(seg, wildcards); err != nil {
			return 0, fmt.Errorf("segment %d: %v", n+1, err)
		}
		buf[n] = seg
		n++
		if i < 0 {
			return n, nil
		}
		s = s[i+1:]
	}
}

func checkSegment(seg string, wildcards bool) error {
	if seg == "" {
		return errors.New("empty segment")
	}
	if seg == "*" {
		if !wildcards {
			return errors.New("a resource cannot contain '*'")
		}
		return nil
	}
	return checkName(seg)
}

// checkName accepts printable text without whitespace, '*', control or
// invisible formatting characters (zero-width spaces, bidi overrides),
// which would let two different names look the same in a review or a log.
func checkName(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '*':
				return errors.New("'*' must be a whole segment")
			case c <= ' ' || c == 0x7f:
				return fmt.Errorf("whitespace or control character at byte %d", i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("invalid UTF-8 at byte %d", i)
		case unicode.IsSpace(r), unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return fmt.Errorf("whitespace, control or formatting character %U at byte %d", r, i)
		}
		i += size
	}
	return nil
}
