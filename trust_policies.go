package kavach

import (
	"context"
	"fmt"
	"strings"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/trust"
)

// The wiring of trust policies: the gate Decide consults, the scopes the
// token endpoint withholds, and what follows an automatic suspension.

func compilePattern(s string) (trust.Matcher, error) {
	p, err := agents.ParsePattern(s)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// trustGate applies trust policies to decisions (agents.TrustGate).
type trustGate struct{ t *trust.Service }

func (g trustGate) Gate(ctx context.Context, agentID, orgID string, ancestors []string, resource string) (agents.TrustAnswer, error) {
	p := g.t.Policies()
	if p == nil || !p.Active() {
		return agents.TrustAnswer{}, nil
	}
	v, err := p.Gate(ctx, trust.Subject{OrganizationID: orgID, Chain: append([]string{agentID}, ancestors...)}, resource)
	if err != nil || v.Effect == "" {
		return agents.TrustAnswer{}, err
	}
	ans := agents.TrustAnswer{PolicyID: v.Policy.ID, Level: string(v.Level), Reason: verdictReason(v, agentID, "this resource")}
	if v.Effect == trust.EffectMinimumLevel {
		ans.Refuse = true
	} else {
		ans.Approval = true
	}
	return ans, nil
}

// verdictReason says why policies stand in the way, in a sentence.
func verdictReason(v trust.Verdict, agentID, what string) string {
	whose := "the agent's trust level"
	if v.AgentID != agentID {
		whose = "the trust level of " + v.AgentID + ", an agent above this one,"
	}
	act := "requires at least"
	if v.Effect == trust.EffectRequireApproval {
		act = "requires approval below"
	}
	return fmt.Sprintf("%s is %s; trust policy %q %s %s for %s", whose, v.Level, v.Policy.Name, act, v.Required, what)
}

// trustScopes withholds the scopes an agent's level does not reach from
// its tokens (authz.Config.TrustScopes).
func (k *Kavach) trustScopes(ctx context.Context, a agents.ClientAgent, scopes []string) ([]string, string, error) {
	p := k.Trust.Policies()
	if p == nil || !p.Active() {
		return nil, "", nil
	}
	sub := trust.Subject{OrganizationID: a.OrganizationID, Chain: make([]string, 0, len(a.Chain))}
	for i := len(a.Chain) - 1; i >= 0; i-- { // the agent first
		sub.Chain = append(sub.Chain, a.Chain[i])
	}
	withheld, v, err := p.RefusedScopes(ctx, sub, scopes)
	if err != nil || len(withheld) == 0 {
		return nil, "", err
	}
	return withheld, verdictReason(v, a.ID, "scope "+strings.Join(withheld, ", ")), nil
}

// trustSuspended follows an automatic suspension: this node forgets the
// agent at once (others within their cache's lifetime) and the owner is
// told by mail. Webhooks get the agent.suspended event.
func (k *Kavach) trustSuspended(_ context.Context, s trust.Suspension) {
	k.Agents.Forget(s.AgentID)
	k.cfg.Logger.Warn("agent suspended by a trust policy", "agent", s.AgentID, "policy", s.PolicyID, "score", s.Score)
	if s.OwnerUserID == "" {
		return
	}
	name := s.AgentName
	if name == "" {
		name = s.AgentID
	}
	k.Users.Notify(s.OwnerUserID, "Your agent "+name+" was suspended",
		fmt.Sprintf("Your agent %s (%s) was suspended automatically: its trust score fell to %.1f, below %.1f, "+
			"which trust policy %q does not allow.\n\nIts recent activity is in the audit log. Once you have looked into it, "+
			"you can resume it from the agents API (PATCH /api/auth/agents/%s with status \"active\") or with "+
			"`kavach agent resume --id %s`.\n", name, s.AgentID, s.Score, s.BelowScore, s.PolicyName, s.AgentID, s.AgentID))
}
