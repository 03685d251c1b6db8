package agents

import (
	"context"
	"fmt"

	"github.com/kavachos/kavach/storage"
)

// trustGate asks the trust policies about a call the grants allow (or
// send to approval). It is consulted before approvals, rate limits and
// budgets, so a refused call consumes none of them. refused is true when
// the answer is final.
func (s *Service) trustGate(ctx context.Context, req DecideRequest, p *principal, chain []*principal, d Decision) (Decision, bool) {
	var ancestors []string
	if len(chain) > 0 {
		ancestors = make([]string, len(chain))
		for i, c := range chain {
			ancestors[i] = c.agent.ID
		}
	}
	org := ""
	if p.agent.OrganizationID != nil {
		org = *p.agent.OrganizationID
	}
	ans, err := s.cfg.TrustGate.Gate(ctx, p.agent.ID, org, ancestors, req.Resource)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.cfg.Logger.Error("agents: trust policies for a decision", "agent", p.agent.ID, "err", err)
		}
		return Decision{Code: CodeUnavailable, Reason: "the trust policies could not be applied; try again"}, true
	case ans.Refuse:
		return Decision{Code: CodeTrustTooLow, Reason: ans.Reason, trust: &ans}, true
	case ans.Approval && d.Allowed:
		return Decision{Code: CodeApprovalRequired, Reason: ans.Reason, ApprovalRequired: true, trust: &ans}, false
	}
	return d, false
}

// SuspendForTrust suspends an active agent in tx because a trust policy
// says so, with the agent.suspended event and audit record carrying why
// (reason "trust", the policy, the score). It is false when the agent was
// not active. Call Forget once tx has committed.
func (s *Service) SuspendForTrust(ctx context.Context, tx storage.Store, agentID string, why map[string]any) (bool, error) {
	return suspendInTx(WithActor(ctx, "system", "trust"), tx, agentID, why, s.now())
}

// Forget drops what this process caches about an agent, after a change
// made outside its own methods (SuspendForTrust).
func (s *Service) Forget(agentID string) {
	s.cache.invalidate(agentID)
	s.keys.clear()
}

// SuspendOwned suspends, in tx, every active agent the user owns, with
// reason: "owner_banned" when an admin bans the user, "account_reclaimed"
// when the owner of an address takes over an account someone else made
// with it. It returns the suspended ids: call Forget with each once tx
// has committed. Nothing resumes them by itself; the owner or an admin
// resumes the agents they want.
func (s *Service) SuspendOwned(ctx context.Context, tx storage.Store, userID, reason string) ([]string, error) {
	list, err := tx.Agents().ListByOwner(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	ctx = WithActor(ctx, "system", reason)
	var done []string
	for _, a := range list {
		ok, err := suspendInTx(ctx, tx, a.ID, map[string]any{"reason": reason}, s.now())
		if err != nil {
			return nil, err
		}
		if ok {
			done = append(done, a.ID)
		}
	}
	return done, nil
}
