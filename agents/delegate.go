package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Delegation: an agent hands part of what it may do to a sub-agent. The
// sub-agent's grants are computed once, when it is created, by
// DelegatedGrants (a subset of the parent's grants in force, constraints
// intersected, never widened), and every decision about it also asks each
// agent above it in the chain: an ancestor that is no longer active, or
// whose grants no longer allow the request, stops the sub-agent too. So
// narrowing, suspending or revoking a parent takes effect on its whole
// chain at once, and revoking one also revokes every agent below it.

// DefaultMaxDelegationDepth is the default limit on delegation chains: an
// agent a user created is depth 0, its sub-agents depth 1, and so on.
// HardMaxDelegationDepth bounds what configuration may set.
const (
	DefaultMaxDelegationDepth = 3
	HardMaxDelegationDepth    = 10
)

// EventAgentDelegated is the outbox event (and audit event) of a new
// sub-agent.
const EventAgentDelegated = "agent.delegated"

// ErrDelegationDepth refuses a sub-agent deeper than
// Config.MaxDelegationDepth.
var ErrDelegationDepth = errors.New("delegation depth limit reached")

// DelegateInput describes a sub-agent.
type DelegateInput struct {
	Name string
	// Permissions are what the parent hands down; each must be covered by
	// the parent's grants in force (see Subset), and is narrowed by them
	// (see DelegatedGrants).
	Permissions []Grant
	// ExpiresAt is capped at the parent's expiry; nil means the parent's.
	ExpiresAt *time.Time
	Metadata  json.RawMessage
}

// Delegate creates a sub-agent of parentID: same owner and type as the
// parent, a depth one more than the parent's, the delegated grants, and
// one API key (returned only here). The parent and every agent above it
// must be active. Errors: ErrAgentNotFound, ErrAgentSuspended,
// ErrAgentRevoked, ErrAgentExpired (the parent or its chain),
// ErrDelegationDepth, ErrQuotaExceeded (the owner's), and a
// *ValidationError wrapping ErrNotSubset for permissions the parent does
// not have.
func (s *Service) Delegate(ctx context.Context, parentID string, in DelegateInput) (storage.Agent, []Grant, string, error) {
	now := s.now()
	name, err := checkAgentName(in.Name)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	md, err := checkMetadata(in.Metadata)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	expires, err := checkExpiry(in.ExpiresAt, now)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	requested, err := checkGrants(in.Permissions)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	parent, parentGrants, err := s.delegator(ctx, s.store, parentID, now)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	if parent.DelegationDepth+1 > s.cfg.MaxDelegationDepth {
		return storage.Agent{}, nil, "", ErrDelegationDepth
	}
	delegated, err := narrow(parentGrants, requested, now)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	child := storage.Agent{
		ID: id.New("agt"), Type: parent.Type, Name: name, OwnerUserID: clonePtr(parent.OwnerUserID),
		Status: storage.AgentActive, Metadata: md, CreatedAt: now, UpdatedAt: now,
		ExpiresAt: earliest(parent.ExpiresAt, expires), ParentID: &parent.ID, DelegationDepth: parent.DelegationDepth + 1,
		OrganizationID: clonePtr(parent.OrganizationID),
	}
	grants, rows, err := grantRows(child.ID, delegated, nil, now)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	key, k := s.newKey(child.ID, now)
	payload := map[string]any{"agentId": child.ID, "parentId": parent.ID, "ownerUserId": *child.OwnerUserID,
		"name": child.Name, "depth": child.DelegationDepth, "keyPrefix": k.Prefix}
	extra := map[string]any{"parentId": parent.ID, "depth": child.DelegationDepth, "grants": len(grants), "keyPrefix": k.Prefix}
	// The parent may have been suspended or revoked since it was read.
	// Its row stays locked until the child is stored: a concurrent Revoke
	// either finishes first (and the check sees it) or waits, and then
	// finds the child to revoke with it.
	recheck := func(tx storage.Store) error {
		if err := tx.Agents().Lock(ctx, parentID); err != nil {
			return agentErr("lock delegating agent", err)
		}
		_, _, err := s.delegator(ctx, tx, parentID, now)
		return err
	}
	if err := s.insert(ctx, &child, rows, &k, EventAgentDelegated, payload, extra, recheck); err != nil {
		return storage.Agent{}, nil, "", fmt.Errorf("delegate: %w", err)
	}
	return child, grants, key, nil
}

// delegator loads an agent that is to delegate (or whose sub-agent's
// grants are being changed) with its grants, from st, and checks that it
// and every agent above it are active and that it has an owner.
func (s *Service) delegator(ctx context.Context, st storage.Store, agentID string, now time.Time) (*storage.Agent, []Grant, error) {
	a, err := st.Agents().Get(ctx, agentID)
	if err != nil {
		return nil, nil, agentErr("get delegating agent", err)
	}
	if a.OwnerUserID == nil {
		return nil, nil, invalid("agent", "an agent nobody owns cannot delegate")
	}
	for cur, hops := a, 0; ; hops++ {
		if err := statusErr(effectiveStatus(cur, now)); err != nil {
			return nil, nil, err
		}
		if cur.ParentID == nil || hops > HardMaxDelegationDepth {
			break
		}
		if cur, err = st.Agents().Get(ctx, *cur.ParentID); err != nil {
			return nil, nil, agentErr("get delegating agent's parent", err)
		}
	}
	rows, err := st.AgentGrants().List(ctx, a.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("get delegating agent's grants: %w", err)
	}
	grants, err := decodeGrants(rows)
	if err != nil {
		return nil, nil, err
	}
	return a, grants, nil
}

// statusErr maps an effective status to the Service's error.
func statusErr(status string) error {
	switch status {
	case storage.AgentActive:
		return nil
	case storage.AgentSuspended:
		return ErrAgentSuspended
	case storage.AgentExpired:
		return ErrAgentExpired
	default:
		return ErrAgentRevoked
	}
}

// narrow is DelegatedGrants over the parent's grants in force at now, with
// a refusal reported as a client mistake in "permissions".
func narrow(parentGrants, requested []Grant, now time.Time) ([]Grant, error) {
	inForce := slices.DeleteFunc(slices.Clone(parentGrants), func(g Grant) bool { return g.expiredAt(now) })
	out, err := DelegatedGrants(inForce, requested)
	if err != nil {
		return nil, &ValidationError{Field: "permissions", Message: err.Error(), Err: err}
	}
	return out, nil
}

// ancestors returns the agents above p, nearest first, from the decision
// cache. If one of them is missing or may not act, it returns the
// decision that refuses p instead.
func (s *Service) ancestors(ctx context.Context, p *principal, now time.Time) ([]*principal, *Decision) {
	var out []*principal
	for next := p.agent.ParentID; next != nil; {
		if len(out) > HardMaxDelegationDepth {
			return nil, &Decision{Code: CodeInvalidGrant, Reason: "the delegation chain is too long"}
		}
		ap, err := s.principal(ctx, *next, now)
		if errors.Is(err, ErrAgentNotFound) {
			return nil, &Decision{Code: CodeAgentRevoked, Reason: "the agent that delegated to this one no longer exists"}
		}
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Error("agents: load delegating agent for a decision", "agent", *next, "err", err)
			}
			return nil, &Decision{Code: CodeUnavailable, Reason: "the delegation chain could not be loaded; try again"}
		}
		if d := inactiveDecision(&ap.agent, now); d != nil {
			d.Reason = fmt.Sprintf("delegating agent %q: %s", ap.agent.ID, d.Reason)
			return nil, d
		}
		out = append(out, ap)
		next = ap.agent.ParentID
	}
	return out, nil
}

// inactiveDecision refuses an agent that may not act; nil when it may.
func inactiveDecision(a *storage.Agent, now time.Time) *Decision {
	switch effectiveStatus(a, now) {
	case storage.AgentActive:
		return nil
	case storage.AgentSuspended:
		return &Decision{Code: CodeAgentSuspended, Reason: "the agent is suspended"}
	case storage.AgentExpired:
		return &Decision{Code: CodeAgentExpired, Reason: "the agent has expired"}
	default:
		return &Decision{Code: CodeAgentRevoked, Reason: "the agent is revoked"}
	}
}

// allowedByAncestors asks each ancestor's grants about req. An ancestor
// that refuses refuses the sub-agent; one that requires approval makes the
// sub-agent's allow an approval request. It returns the rate limits of
// each ancestor's deciding grant: a sub-agent's calls count against them
// too, so a chain together stays within every ancestor's limits.
func allowedByAncestors(chain []*principal, req Request, now time.Time, d Decision) (Decision, []rateCharge) {
	var charges []rateCharge
	for _, ap := range chain {
		if ap.setErr != nil {
			return Decision{Code: CodeInvalidGrant, Reason: ap.who() + " has invalid stored permissions"}, nil
		}
		out := ap.set.Evaluate(req, now)
		switch {
		case out.Allowed:
		case out.RequireApproval:
			if d.Allowed {
				d = Decision{Code: CodeApprovalRequired, Reason: out.Reason, ApprovalRequired: true}
			}
		default:
			return Decision{Code: out.Code, Reason: ap.who() + ": " + out.Reason}, nil
		}
		if len(out.RateLimits) > 0 {
			charges = append(charges, rateCharge{agent: ap.agent.ID, grant: out.Grant.ID, limits: out.RateLimits})
		}
	}
	return d, charges
}

// ActiveAgent reports whether the agent and every agent above it may act
// now, from the decision cache: nil, or ErrAgentNotFound,
// ErrAgentSuspended, ErrAgentRevoked or ErrAgentExpired. Resource servers
// call it for each token an agent presents, so that suspending or
// revoking an agent (or one above it) stops its tokens at once.
func (s *Service) ActiveAgent(ctx context.Context, agentID string) error {
	_, _, err := s.activeChain(ctx, agentID, s.now())
	return err
}

// activeChain returns the agent and the agents above it (nearest first)
// if all of them may act, else the error ActiveAgent documents.
func (s *Service) activeChain(ctx context.Context, agentID string, now time.Time) (*principal, []*principal, error) {
	p, err := s.principal(ctx, agentID, now)
	if err != nil {
		return nil, nil, err
	}
	if err := statusErr(effectiveStatus(&p.agent, now)); err != nil {
		return nil, nil, err
	}
	chain, d := s.ancestors(ctx, p, now)
	if d != nil {
		switch d.Code {
		case CodeAgentSuspended:
			return nil, nil, ErrAgentSuspended
		case CodeAgentExpired:
			return nil, nil, ErrAgentExpired
		case CodeUnavailable:
			return nil, nil, errors.New("agents: the delegation chain could not be loaded")
		default:
			return nil, nil, ErrAgentRevoked
		}
	}
	return p, chain, nil
}

// Chain returns the IDs of the agents from the root of agentID's
// delegation chain down to agentID itself (just agentID for an agent a
// user created), from the decision cache.
func (s *Service) Chain(ctx context.Context, agentID string) ([]string, error) {
	now := s.now()
	p, err := s.principal(ctx, agentID, now)
	if err != nil {
		return nil, err
	}
	out := []string{p.agent.ID}
	for next, hops := p.agent.ParentID, 0; next != nil && hops <= HardMaxDelegationDepth; hops++ {
		ap, err := s.principal(ctx, *next, now)
		if err != nil {
			return nil, err
		}
		out = append(out, ap.agent.ID)
		next = ap.agent.ParentID
	}
	slices.Reverse(out)
	return out, nil
}

// who names a principal above an agent in refusal reasons (built only
// when a call is refused, not on every decision).
func (p *principal) who() string {
	if p.isUser {
		return fmt.Sprintf("owner %q", p.agent.ID)
	}
	return fmt.Sprintf("delegating agent %q", p.agent.ID)
}
