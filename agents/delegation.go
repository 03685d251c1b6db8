package agents

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// ErrNotSubset is wrapped by the errors Subset and DelegatedGrants return
// when a requested grant asks for more than the delegating principal has.
var ErrNotSubset = errors.New("grant exceeds the delegating principal's")

// Intersect narrows a child grant by the parent grant it is delegated
// under. It reports false unless the parent is a valid allow grant that
// covers the child — the parent's pattern contains the child's (every
// resource the child matches, the parent matches) and the parent's actions
// include all of the child's ("*" only under "*") — or when the narrowed
// grant would exceed the limits on constraints.
//
// The result keeps the child's ID, pattern and actions, and is never wider
// than either grant:
//
//   - rate limits: per window, the smaller maximum; a window only one side
//     limits is kept;
//   - argument rules: the union, so every rule of both must hold;
//   - time windows and IP allowlists: both must hold. When the child has
//     none of its own it takes the parent's; when they differ, the parent's
//     are recorded as an inherited Condition;
//   - inherited conditions: the union;
//   - approval: required if either requires it;
//   - expiry: the earlier of the two.
//
// A child deny grant is returned unchanged with true: a deny only narrows.
func Intersect(parent, child Grant) (Grant, bool) {
	pc, err := compileGrant(&parent)
	if err != nil || parent.IsDeny() {
		return Grant{}, false
	}
	cc, err := compileGrant(&child)
	if err != nil {
		return Grant{}, false
	}
	if child.IsDeny() {
		return cloneGrant(child), true
	}
	if !pc.covers(&cc) {
		return Grant{}, false
	}
	out := cloneGrant(child)
	out.Constraints = intersectConstraints(parent.Constraints, child.Constraints)
	out.ExpiresAt = earliest(parent.ExpiresAt, child.ExpiresAt)
	if out.Validate() != nil {
		return Grant{}, false
	}
	return out, true
}

// covers reports whether the allow grant cg covers every request child can
// match.
func (cg *compiledGrant) covers(child *compiledGrant) bool {
	return cg.pattern.Contains(child.pattern) && cg.coversActions(child)
}

// Subset checks that a principal holding parentEffective may delegate
// childGrants: every child allow grant must be covered by some parent
// allow grant (see Intersect) and must not be wholly inside a parent deny
// grant. Child deny grants are always acceptable. Constraints do not take
// part: delegation narrows them (DelegatedGrants), it does not compare
// them. Expiry does not either; pass only the parent grants in force.
//
// The error lists every offending grant and wraps ErrNotSubset, or
// ErrInvalidGrant when a grant does not validate.
func Subset(childGrants, parentEffective []Grant) error {
	ps, err := CompileGrants(parentEffective)
	if err != nil {
		return fmt.Errorf("delegating principal's grants: %w", err)
	}
	_, err = ps.subset(childGrants)
	return err
}

// subset implements Subset and returns the compiled child grants.
func (ps *GrantSet) subset(childGrants []Grant) ([]compiledGrant, error) {
	var errs []error
	out := make([]compiledGrant, len(childGrants))
	for i := range childGrants {
		c := cloneGrant(childGrants[i])
		cc, err := compileGrant(&c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[i] = cc
		if c.IsDeny() {
			continue
		}
		if ps.coveringAllow(&cc) < 0 {
			errs = append(errs, fmt.Errorf("%w: grant %q (%v on %q) is not covered by any allow grant",
				ErrNotSubset, c.ID, c.Actions, c.Resource))
			continue
		}
		for j := range ps.denies {
			if d := &ps.denies[j]; d.pattern.Contains(cc.pattern) && d.coversActions(&cc) {
				errs = append(errs, fmt.Errorf("%w: grant %q (%v on %q) is wholly denied by grant %q",
					ErrNotSubset, c.ID, c.Actions, c.Resource, d.grant.ID))
				break
			}
		}
	}
	return out, errors.Join(errs...)
}

// coveringAllow returns the index in ps.allows of the first (most
// specific) allow grant that covers child, or -1.
func (ps *GrantSet) coveringAllow(child *compiledGrant) int {
	for i := range ps.allows {
		if ps.allows[i].covers(child) {
			return i
		}
	}
	return -1
}

// DelegatedGrants returns the grants a child principal receives when a
// principal holding parentEffective delegates requested. It checks Subset
// first, then narrows each requested allow grant so that the child can
// never do what the parent could not:
//
//   - It is intersected (see Intersect) with the most specific parent allow
//     grant that covers it, C.
//   - Parent allow grants more specific than C decide the parent's requests
//     for the resources they match, with their own constraints. The
//     constraints (not the expiry) of every one of them that overlaps the
//     requested grant — some request matches both — are intersected in as
//     well. Intersecting with the one grant that
//     covers the child is not enough: with parent grants "mcp:*" and
//     "mcp:github:*" (approval required), a child grant "mcp:*" would
//     otherwise reach mcp:github without approval. The child may end up
//     stricter than the parent on the part of its pattern those grants do
//     not match; it asks for a narrower grant to avoid that.
//   - Parent deny grants that overlap a requested allow grant are copied
//     to the child unchanged, IDs included (the caller may give them new
//     IDs when it stores them).
//
// Requested deny grants are kept as they are. Pass only the parent grants
// in force (not expired); the result keeps the earliest expiry.
func DelegatedGrants(parentEffective, requested []Grant) ([]Grant, error) {
	ps, err := CompileGrants(parentEffective)
	if err != nil {
		return nil, fmt.Errorf("delegating principal's grants: %w", err)
	}
	compiled, err := ps.subset(requested)
	if err != nil {
		return nil, err
	}
	out := make([]Grant, 0, len(requested))
	for i := range compiled {
		rc := &compiled[i]
		if rc.grant.IsDeny() {
			out = append(out, cloneGrant(*rc.grant))
			continue
		}
		k := ps.coveringAllow(rc)
		g, ok := Intersect(*ps.allows[k].grant, *rc.grant)
		if !ok {
			return nil, fmt.Errorf("%w: grant %q: narrowing it exceeds the limits on constraints", ErrInvalidGrant, rc.grant.ID)
		}
		for j := 0; j < k; j++ {
			if h := &ps.allows[j]; h.pattern.Overlaps(rc.pattern) && h.sharesAction(rc) {
				g.Constraints = intersectConstraints(h.grant.Constraints, g.Constraints)
			}
		}
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("grant %q: narrowing it: %w", rc.grant.ID, err)
		}
		out = append(out, g)
	}
	for j := range ps.denies {
		d := &ps.denies[j]
		if slices.ContainsFunc(compiled, func(rc compiledGrant) bool {
			return !rc.grant.IsDeny() && d.pattern.Overlaps(rc.pattern) && d.sharesAction(&rc)
		}) {
			out = append(out, cloneGrant(*d.grant))
		}
	}
	if _, err := CompileGrants(out); err != nil {
		return nil, err
	}
	return out, nil
}

// intersectConstraints narrows child by parent; see Intersect.
func intersectConstraints(parent, child Constraints) Constraints {
	out := child.clone()
	out.RateLimits = intersectRateLimits(parent.RateLimits, child.RateLimits)
	for _, r := range parent.Arguments {
		if !slices.ContainsFunc(out.Arguments, func(o ArgumentRule) bool { return equalRule(o, r) }) {
			out.Arguments = append(out.Arguments, r.clone())
		}
	}
	out.RequireApproval = parent.RequireApproval || child.RequireApproval

	// Windows and allowlists are sets of alternatives; two sets cannot be
	// merged into one without computing their intersection (across zones
	// and daylight-saving rules, for windows), so the parent's are kept
	// beside the child's and both must hold.
	if len(parent.TimeWindows) > 0 {
		switch {
		case len(out.TimeWindows) == 0:
			out.TimeWindows = cloneWindows(parent.TimeWindows)
		case !reflect.DeepEqual(out.TimeWindows, parent.TimeWindows):
			out.Inherited = addCondition(out.Inherited, Condition{TimeWindows: cloneWindows(parent.TimeWindows)})
		}
	}
	if len(parent.IPAllow) > 0 {
		switch {
		case len(out.IPAllow) == 0:
			out.IPAllow = slices.Clone(parent.IPAllow)
		case !slices.Equal(out.IPAllow, parent.IPAllow):
			out.Inherited = addCondition(out.Inherited, Condition{IPAllow: slices.Clone(parent.IPAllow)})
		}
	}
	for _, cond := range parent.clone().Inherited {
		out.Inherited = addCondition(out.Inherited, cond)
	}
	return out
}

func addCondition(conds []Condition, c Condition) []Condition {
	for _, have := range conds {
		if reflect.DeepEqual(have, c) {
			return conds
		}
	}
	return append(conds, c)
}

// intersectRateLimits keeps, per window, the smaller maximum, in the order
// minute, hour, day.
func intersectRateLimits(a, b []RateLimit) []RateLimit {
	var out []RateLimit
	for _, w := range []RateWindow{PerMinute, PerHour, PerDay} {
		limit, found := 0, false
		for _, l := range slices.Concat(a, b) {
			if l.Window == w && (!found || l.Max < limit) {
				limit, found = l.Max, true
			}
		}
		if found {
			out = append(out, RateLimit{Window: w, Max: limit})
		}
	}
	return out
}

func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil || b != nil && b.Before(*a):
		t := *b
		return &t
	}
	t := *a
	return &t
}
