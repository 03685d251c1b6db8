package agents

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Grant effects. An empty Effect means EffectAllow.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
)

// AnyAction in a grant's Actions allows or denies every action. It must be
// the only entry: ["read", "*"] says the same as ["*"] and hides that.
const AnyAction = "*"

// Limits on a grant's actions.
const (
	MaxActionBytes  = 128
	MaxGrantActions = 64
	MaxGrantIDBytes = 128
)

// ErrInvalidGrant is wrapped by every error Grant.Validate and
// CompileGrants return.
var ErrInvalidGrant = errors.New("invalid grant")

// Grant gives a principal (or takes away from it) the listed actions on
// every resource its pattern matches, under its constraints.
//
// Grants are values: CompileGrants copies them, so changing a Grant after
// compiling does not change a GrantSet.
type Grant struct {
	ID string `json:"id,omitempty"`
	// Resource is a pattern; see Pattern for the grammar.
	Resource string `json:"resource"`
	// Actions are compared exactly and case-sensitively; ["*"] means all.
	Actions []string `json:"actions"`
	// Effect is "allow" (the default when empty) or "deny". A matching deny
	// wins over every allow; see Evaluate.
	Effect string `json:"effect,omitempty"`
	// Constraints apply when this grant is the deciding allow. Deny grants
	// take none: a deny is unconditional.
	Constraints Constraints `json:"constraints,omitzero"`
	// ExpiresAt ends the grant: it is ignored from that instant on.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// IsDeny reports whether the grant denies.
func (g *Grant) IsDeny() bool { return g.Effect == EffectDeny }

// Validate checks the grant as CompileGrants would.
func (g Grant) Validate() error {
	_, err := compileGrant(&g)
	return err
}

// expiredAt reports whether the grant no longer applies at now: a grant is
// in force while now is before ExpiresAt.
func (g *Grant) expiredAt(now time.Time) bool {
	return g.ExpiresAt != nil && !now.Before(*g.ExpiresAt)
}

// compiledGrant is a validated grant prepared for Evaluate.
type compiledGrant struct {
	grant       *Grant // the GrantSet's own copy
	pattern     Pattern
	anyAction   bool
	actions     []string
	constraints *CompiledConstraints // nil when the grant has none
	index       int                  // position in the input, the last tie-breaker
}

func compileGrant(g *Grant) (compiledGrant, error) {
	wrap := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidGrant, g.ID, fmt.Sprintf(format, args...))
	}
	if len(g.ID) > MaxGrantIDBytes {
		return compiledGrant{}, wrap("id longer than %d bytes", MaxGrantIDBytes)
	}
	switch g.Effect {
	case "", EffectAllow, EffectDeny:
	default:
		return compiledGrant{}, wrap("effect %q is neither %q nor %q", g.Effect, EffectAllow, EffectDeny)
	}
	p, err := ParsePattern(g.Resource)
	if err != nil {
		return compiledGrant{}, wrap("%v", err)
	}
	cg := compiledGrant{grant: g, pattern: p}
	if cg.anyAction, err = checkGrantActions(g.Actions); err != nil {
		return compiledGrant{}, wrap("%v", err)
	}
	if !cg.anyAction {
		cg.actions = g.Actions
	}
	if g.IsDeny() {
		if !g.Constraints.IsZero() {
			return compiledGrant{}, wrap("a deny grant takes no constraints: a deny is unconditional")
		}
		return cg, nil
	}
	if !g.Constraints.IsZero() {
		if cg.constraints, err = g.Constraints.Compile(); err != nil {
			return compiledGrant{}, wrap("%v", err)
		}
	}
	return cg, nil
}

func checkGrantActions(actions []string) (any bool, err error) {
	if len(actions) == 0 {
		return false, errors.New("no actions")
	}
	if len(actions) > MaxGrantActions {
		return false, fmt.Errorf("more than %d actions", MaxGrantActions)
	}
	for _, a := range actions {
		if a == AnyAction {
			if len(actions) > 1 {
				return false, fmt.Errorf("%q listed with other actions; use [%q] alone", AnyAction, AnyAction)
			}
			return true, nil
		}
		if err := checkAction(a); err != nil {
			return false, err
		}
	}
	return false, nil
}

// checkAction validates one concrete action, in a grant or a request.
func checkAction(a string) error {
	if a == "" {
		return errors.New("empty action")
	}
	if len(a) > MaxActionBytes {
		return fmt.Errorf("action longer than %d bytes", MaxActionBytes)
	}
	if err := checkName(a); err != nil {
		return fmt.Errorf("action %q: %v", a, err)
	}
	return nil
}

func (cg *compiledGrant) matchesAction(action string) bool {
	return cg.anyAction || slices.Contains(cg.actions, action)
}

// coversActions reports whether every action in child is one of cg's.
func (cg *compiledGrant) coversActions(child *compiledGrant) bool {
	if cg.anyAction {
		return true
	}
	if child.anyAction {
		return false
	}
	for _, a := range child.actions {
		if !slices.Contains(cg.actions, a) {
			return false
		}
	}
	return true
}

// sharesAction reports whether some action matches both grants.
func (cg *compiledGrant) sharesAction(other *compiledGrant) bool {
	if cg.anyAction || other.anyAction {
		return true
	}
	for _, a := range other.actions {
		if slices.Contains(cg.actions, a) {
			return true
		}
	}
	return false
}

// compareGrants is the precedence order among grants of one effect: the
// more specific pattern first (see Pattern.compareSpecificity), then a
// grant naming actions before one with "*", then the smaller ID (byte
// order), then the order the grants were given in. The first grant in this
// order that matches a request decides it, so the order is total and the
// decision never depends on how storage happened to return the rows.
func compareGrants(a, b *compiledGrant) int {
	if c := a.pattern.compareSpecificity(&b.pattern); c != 0 {
		return c
	}
	if a.anyAction != b.anyAction {
		if b.anyAction {
			return -1
		}
		return 1
	}
	if a.grant.ID != b.grant.ID {
		if a.grant.ID < b.grant.ID {
			return -1
		}
		return 1
	}
	return a.index - b.index
}

// cloneGrant copies g deeply enough that changes to the caller's slices and
// pointers do not reach the copy.
func cloneGrant(g Grant) Grant {
	g.Actions = slices.Clone(g.Actions)
	g.Constraints = g.Constraints.clone()
	if g.ExpiresAt != nil {
		t := *g.ExpiresAt
		g.ExpiresAt = &t
	}
	return g
}
