package trust

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/text"
	"github.com/kavachos/kavach/storage"
)

// Trust policies are what platform teams set so that scores act: a
// minimum level for resources or OAuth scopes, approval below a level,
// suspension or an alert below a score. A policy applies to every agent
// (global), to an organization's agents, or to one agent and the
// sub-agents below it. Policies only add requirements: when several apply,
// the strictest decides.

// PolicyEffect is what a policy does.
type PolicyEffect string

// Policy effects.
const (
	// EffectMinimumLevel refuses calls to Resources (Decide answers
	// TRUST_TOO_LOW) and OAuth Scopes (left out of tokens) to agents below
	// Level.
	EffectMinimumLevel PolicyEffect = "minimum_level"
	// EffectRequireApproval sends calls to Resources by agents below Level
	// to a person for approval.
	EffectRequireApproval PolicyEffect = "require_approval"
	// EffectSuspend suspends an agent whose score falls below BelowScore.
	EffectSuspend PolicyEffect = "suspend"
	// EffectAlert emits a trust.alert event when an agent's score falls
	// below BelowScore.
	EffectAlert PolicyEffect = "alert"
)

// PolicyScope says whose agents a policy applies to: Type is
// storage.TrustPolicyGlobal (ID empty), TrustPolicyOrganization or
// TrustPolicyAgent.
type PolicyScope struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// Policy is a trust policy.
type Policy struct {
	ID     string       `json:"id"`
	Name   string       `json:"name"`
	Scope  PolicyScope  `json:"scope"`
	Effect PolicyEffect `json:"effect"`
	// Resources are resource patterns (the grammar of grants: "billing:*").
	Resources []string `json:"resources,omitempty"`
	// Scopes are OAuth scopes, compared exactly (minimum_level only).
	Scopes []string `json:"scopes,omitempty"`
	// Level is the level an agent needs (minimum_level, require_approval).
	Level Level `json:"level,omitempty"`
	// BelowScore is the score an agent must not fall below (suspend, alert).
	BelowScore float64 `json:"belowScore,omitempty"`
	Enabled    bool    `json:"enabled"`
	// ManagedBy says who may change the policy: ManagedByPlatform (server
	// admins and the CLI) or ManagedByOrganization (also the owners and
	// admins of the organization it is about). Set when it is created.
	ManagedBy string    `json:"managedBy"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	CreatedBy string    `json:"createdBy"`
	UpdatedBy string    `json:"updatedBy"`
}

// policyBody is what the store keeps as a policy's body: everything that
// is not a column.
type policyBody struct {
	Name       string       `json:"name"`
	Scope      PolicyScope  `json:"scope"` // the columns decide; kept for the history
	Effect     PolicyEffect `json:"effect"`
	Resources  []string     `json:"resources,omitempty"`
	Scopes     []string     `json:"scopes,omitempty"`
	Level      Level        `json:"level,omitempty"`
	BelowScore float64      `json:"belowScore,omitempty"`
	Enabled    bool         `json:"enabled"`
	ManagedBy  string       `json:"managedBy,omitempty"` // empty means ManagedByPlatform
}

// Who manages a policy.
const (
	ManagedByPlatform     = "platform"
	ManagedByOrganization = "organization"
)

// PolicyInput is a policy as written by its author: a new one, or the
// whole of an existing one's new version.
type PolicyInput struct {
	Name       string       `json:"name"`
	Scope      PolicyScope  `json:"scope"`
	Effect     PolicyEffect `json:"effect"`
	Resources  []string     `json:"resources"`
	Scopes     []string     `json:"scopes"`
	Level      Level        `json:"level"`
	BelowScore *float64     `json:"belowScore"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled"`
	// Version, on an update, is the version the author read: the update
	// is refused with ErrPolicyConflict when the policy changed since. 0
	// skips the check.
	Version int64 `json:"version"`
}

// Limits on a policy.
const (
	MaxPolicies          = 1000
	MaxPolicyNameRunes   = 128
	MaxPolicyResources   = 32
	MaxPolicyScopes      = 32
	maxScopeTokenBytes   = 128
	maxPolicyScopeIDSize = 128
)

// Errors of the policies API. ErrPolicyInvalid wraps a message that names
// the field.
var (
	ErrPolicyInvalid   = errors.New("invalid trust policy")
	ErrPolicyNotFound  = errors.New("no such trust policy")
	ErrPolicyConflict  = errors.New("the trust policy changed since it was read")
	ErrTooManyPolicies = fmt.Errorf("at most %d trust policies may exist", MaxPolicies)
	// ErrPolicyReadOnly refuses a change to a platform policy by someone
	// who is not the platform (an organization's owner, say).
	ErrPolicyReadOnly = errors.New("only server admins may change this trust policy")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPolicyInvalid, fmt.Sprintf(format, args...))
}

// Matcher matches resources against one pattern (package agents' Pattern,
// injected by package kavach so that both use one grammar).
type Matcher interface {
	Match(resource string) bool
}

// Compiler parses a resource pattern.
type Compiler func(pattern string) (Matcher, error)

// check validates in and returns the policy's body. compile checks the
// resource patterns.
func (in PolicyInput) check(compile Compiler) (policyBody, error) {
	b := policyBody{Name: strings.TrimSpace(in.Name), Scope: in.Scope, Effect: in.Effect, Level: in.Level, Enabled: in.Enabled == nil || *in.Enabled}
	switch n := utf8.RuneCountInString(b.Name); {
	case !utf8.ValidString(b.Name) || n == 0:
		return b, invalid("name: is required")
	case n > MaxPolicyNameRunes:
		return b, invalid("name: at most %d characters", MaxPolicyNameRunes)
	case strings.ContainsFunc(b.Name, unicode.IsControl):
		return b, invalid("name: control characters are not allowed")
	}
	if err := in.Scope.check(); err != nil {
		return b, err
	}
	if len(in.Resources) > MaxPolicyResources {
		return b, invalid("resources: at most %d", MaxPolicyResources)
	}
	for i, r := range in.Resources {
		if _, err := compile(r); err != nil {
			return b, invalid("resources[%d]: %v", i, err)
		}
	}
	if len(in.Scopes) > MaxPolicyScopes {
		return b, invalid("scopes: at most %d", MaxPolicyScopes)
	}
	for i, sc := range in.Scopes {
		if !validScopeToken(sc) {
			return b, invalid("scopes[%d]: %q is not an OAuth scope token", i, sc)
		}
	}
	b.Resources, b.Scopes = dedupe(in.Resources), dedupe(in.Scopes)
	switch in.Effect {
	case EffectMinimumLevel, EffectRequireApproval:
		if in.Level.Rank() < 1 {
			return b, invalid(`level: one of "limited", "standard", "trusted", "elevated"`)
		}
		if in.BelowScore != nil {
			return b, invalid("belowScore: only for the suspend and alert effects")
		}
		if in.Effect == EffectRequireApproval && len(b.Scopes) > 0 {
			return b, invalid("scopes: only for the minimum_level effect (approvals are per call)")
		}
		if len(b.Resources) == 0 && len(b.Scopes) == 0 {
			if in.Effect == EffectRequireApproval {
				return b, invalid("resources: at least one pattern")
			}
			return b, invalid("resources, scopes: at least one of them")
		}
	case EffectSuspend, EffectAlert:
		if in.BelowScore == nil {
			return b, invalid("belowScore: is required for the %s effect", in.Effect)
		}
		if s := *in.BelowScore; math.IsNaN(s) || s <= 0 || s > 100 {
			return b, invalid("belowScore: a number above 0 and at most 100")
		}
		if in.Level != "" || len(b.Resources) > 0 || len(b.Scopes) > 0 {
			return b, invalid("level, resources, scopes: not for the %s effect, which acts on the score", in.Effect)
		}
		b.BelowScore = *in.BelowScore
	default:
		return b, invalid(`effect: one of "minimum_level", "require_approval", "suspend", "alert"`)
	}
	return b, nil
}

func (sc PolicyScope) check() error {
	switch sc.Type {
	case storage.TrustPolicyGlobal:
		if sc.ID != "" {
			return invalid("scope.id: a global policy names no id")
		}
	case storage.TrustPolicyOrganization, storage.TrustPolicyAgent:
		if sc.ID == "" || len(sc.ID) > maxPolicyScopeIDSize || !utf8.ValidString(sc.ID) || strings.ContainsFunc(sc.ID, unicode.IsControl) {
			return invalid("scope.id: the %s's id is required", sc.Type)
		}
	default:
		return invalid(`scope.type: one of "global", "organization", "agent"`)
	}
	return nil
}

// validScopeToken reports whether s is a scope-token of RFC 6749 §3.3,
// of a length a policy may hold.
func validScopeToken(s string) bool {
	return len(s) <= maxScopeTokenBytes && text.ScopeToken(s)
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		seen := false
		for _, o := range out {
			seen = seen || o == s
		}
		if !seen {
			out = append(out, s)
		}
	}
	return out
}

func policyFromRecord(r storage.TrustPolicy) (Policy, error) {
	var b policyBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return Policy{}, fmt.Errorf("trust: stored policy %s does not decode: %w", r.ID, err)
	}
	return Policy{
		ID: r.ID, Name: b.Name, Scope: PolicyScope{Type: r.ScopeType, ID: r.ScopeID}, Effect: b.Effect,
		Resources: b.Resources, Scopes: b.Scopes, Level: b.Level, BelowScore: b.BelowScore, Enabled: b.Enabled,
		ManagedBy: cmp.Or(b.ManagedBy, ManagedByPlatform), Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy,
	}, nil
}
