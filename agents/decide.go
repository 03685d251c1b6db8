package agents

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Reason codes. They are part of the wire contract and the audit log: add
// new ones, never rename or reuse one.
const (
	CodeAllowed            = "ALLOWED"
	CodePermissionDenied   = "PERMISSION_DENIED"    // a deny grant matched, or no allow did
	CodeOutsideTimeWindow  = "OUTSIDE_TIME_WINDOW"  // see CompiledConstraints.CheckTime
	CodeIPNotAllowed       = "IP_NOT_ALLOWED"       // see CompiledConstraints.CheckIP
	CodeArgumentNotAllowed = "ARGUMENT_NOT_ALLOWED" // see CompiledConstraints.CheckArguments
	CodeApprovalRequired   = "APPROVAL_REQUIRED"    // the deciding grant asks a human first
	// CodeRateLimited is never returned by Evaluate: the caller answers
	// with it when its counters refuse one of Outcome.RateLimits.
	CodeRateLimited    = "RATE_LIMITED"
	CodeInvalidRequest = "INVALID_REQUEST" // the action or resource is malformed
	CodeInvalidGrant   = "INVALID_GRANT"   // Evaluate was given a grant that does not validate
)

// MaxGrants bounds a GrantSet. A principal with more grants has a modelling
// problem, and evaluation time grows with the count.
const MaxGrants = 10_000

// Request is what a principal asks to do.
type Request struct {
	Action   string
	Resource string // a concrete resource: no '*' (see ValidateResource)
	// Arguments are the call's JSON arguments; they are parsed only when
	// the deciding grant has argument rules.
	Arguments json.RawMessage
	// IP is the client address; the zero Addr means unknown.
	IP netip.Addr
}

// Outcome is a decision.
type Outcome struct {
	Allowed bool
	Code    string // one of the Code constants; CodeAllowed when Allowed
	Reason  string // a sentence for people; do not parse it
	// Grant is the deciding grant: the deny that matched, or the allow
	// whose constraints were checked. Nil when no grant matched or the
	// request was invalid. It belongs to the GrantSet: do not modify it.
	Grant *Grant
	// RequireApproval is set with Code CodeApprovalRequired: every other
	// constraint held, and a human must approve.
	RequireApproval bool
	// RateLimits are the deciding allow grant's limits. When Allowed, the
	// caller counts the call against them (per principal and grant ID) and
	// refuses with CodeRateLimited when one is exhausted. Shared: do not
	// modify.
	RateLimits []RateLimit
}

// GrantSet is a principal's grants, validated and ordered for evaluation.
// It is immutable and safe for concurrent use; build it once per change to
// the grants, not per request.
type GrantSet struct {
	denies []compiledGrant // in precedence order, see compareGrants
	allows []compiledGrant // in precedence order
}

// CompileGrants validates grants and prepares them for Evaluate. It
// refuses the whole set if one grant is invalid, since silently dropping a
// deny would widen access, and refuses two grants with the same non-empty
// ID, since IDs break ties and name the deciding grant in the audit log.
// Exact copies of one grant (same ID, same content) count once: a grant
// copied into two delegation chains reaches a principal twice.
func CompileGrants(grants []Grant) (*GrantSet, error) {
	if len(grants) > MaxGrants {
		return nil, fmt.Errorf("%w: more than %d grants", ErrInvalidGrant, MaxGrants)
	}
	own := make([]Grant, len(grants))
	seen := make(map[string]int, len(grants))
	gs := &GrantSet{}
	for i := range grants {
		own[i] = cloneGrant(grants[i])
		if id := own[i].ID; id != "" {
			if j, dup := seen[id]; dup {
				if sameGrant(own[i], own[j]) {
					continue // the same grant reached through two delegation chains
				}
				return nil, fmt.Errorf("%w: two different grants have the ID %q", ErrInvalidGrant, id)
			}
			seen[id] = i
		}
		cg, err := compileGrant(&own[i])
		if err != nil {
			return nil, err
		}
		cg.index = i
		if own[i].IsDeny() {
			gs.denies = append(gs.denies, cg)
		} else {
			gs.allows = append(gs.allows, cg)
		}
	}
	sortGrants(gs.denies)
	sortGrants(gs.allows)
	return gs, nil
}

// sameGrant compares grants by content, expiry by instant.
func sameGrant(a, b Grant) bool {
	ae, be := a.ExpiresAt, b.ExpiresAt
	if (ae == nil) != (be == nil) || ae != nil && !ae.Equal(*be) {
		return false
	}
	a.ExpiresAt, b.ExpiresAt = nil, nil
	return reflect.DeepEqual(a, b)
}

func sortGrants(gs []compiledGrant) {
	slices.SortFunc(gs, func(a, b compiledGrant) int { return compareGrants(&a, &b) })
}

// Len returns the number of grants in the set.
func (gs *GrantSet) Len() int { return len(gs.denies) + len(gs.allows) }

// Evaluate compiles grants and evaluates req against them at now. It is
// the reference statement of the rules; hot paths should compile once with
// CompileGrants and call GrantSet.Evaluate. If a grant is invalid the
// answer is a denial with CodeInvalidGrant.
func Evaluate(grants []Grant, req Request, now time.Time) Outcome {
	gs, err := CompileGrants(grants)
	if err != nil {
		return Outcome{Code: CodeInvalidGrant, Reason: err.Error()}
	}
	return gs.Evaluate(req, now)
}

// Evaluate decides req at now:
//
//  1. A malformed action or resource is refused with CodeInvalidRequest.
//  2. Grants that have expired at now are ignored.
//  3. If any deny grant matches the action and resource, the request is
//     refused with CodePermissionDenied; a deny wins over every allow.
//  4. Otherwise the first matching allow in precedence order decides: the
//     most specific pattern (more literal segments, then fewer wildcards,
//     then the longer pattern), then a grant naming the action before one
//     with "*", then the smaller grant ID, then input order. Only that
//     grant's constraints are checked — time windows, IP allowlist,
//     argument rules, approval, in that order — and the first that fails
//     gives the code. Less specific allows are not consulted, even if
//     their constraints would pass.
//  5. No matching allow: CodePermissionDenied.
//
// Evaluate reads no clock and keeps no state; it allocates nothing unless
// it refuses or parses arguments.
func (gs *GrantSet) Evaluate(req Request, now time.Time) Outcome {
	if err := checkAction(req.Action); err != nil {
		return Outcome{Code: CodeInvalidRequest, Reason: "invalid action: " + err.Error()}
	}
	var buf [MaxResourceSegments]string
	n, err := splitSegments(req.Resource, &buf, false)
	if err != nil {
		return Outcome{Code: CodeInvalidRequest, Reason: fmt.Sprintf("invalid resource: %v", err)}
	}
	res := buf[:n]
	for i := range gs.denies {
		d := &gs.denies[i]
		if d.matches(req.Action, res, now) {
			return Outcome{
				Code:   CodePermissionDenied,
				Reason: fmt.Sprintf("grant %q denies %q on %q", d.grant.ID, req.Action, req.Resource),
				Grant:  d.grant,
			}
		}
	}
	for i := range gs.allows {
		a := &gs.allows[i]
		if !a.matches(req.Action, res, now) {
			continue
		}
		out := Outcome{Grant: a.grant, RateLimits: a.constraints.RateLimits()}
		out.Code, out.Reason = a.constraints.Check(req.Arguments, now, req.IP)
		switch out.Code {
		case "":
			out.Allowed, out.Code = true, CodeAllowed
		case CodeApprovalRequired:
			out.RequireApproval = true
		}
		return out
	}
	return Outcome{
		Code:   CodePermissionDenied,
		Reason: fmt.Sprintf("no grant allows %q on %q", req.Action, req.Resource),
	}
}

func (cg *compiledGrant) matches(action string, res []string, now time.Time) bool {
	return cg.matchesAction(action) && cg.pattern.matchSegments(res) && !cg.grant.expiredAt(now)
}

// Outside reports whether resource lies outside every allow grant's first
// segment (the namespace: "mcp" in "mcp:github:issues"; a pattern starting
// with "*" covers every namespace). A request refused because it is
// outside all of them is a probe rather than a near miss, for the trust
// signals. A malformed resource is outside.
func (gs *GrantSet) Outside(resource string) bool {
	first, _, _ := strings.Cut(resource, ":")
	if first == "" {
		return true
	}
	for i := range gs.allows {
		if seg := gs.allows[i].pattern.segs[0]; seg == "*" || seg == first {
			return false
		}
	}
	return true
}
