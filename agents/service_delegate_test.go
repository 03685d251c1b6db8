package agents_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

func (e *env) delegate(t testing.TB, parentID string, in agents.DelegateInput) (storage.Agent, []agents.Grant) {
	t.Helper()
	if in.Name == "" {
		in.Name = "sub-agent"
	}
	a, grants, key, err := e.svc.Delegate(t.Context(), parentID, in)
	if err != nil {
		t.Fatalf("delegate: %v", err)
	}
	if key == "" {
		t.Fatal("a sub-agent got no key")
	}
	return a, grants
}

// TestDelegation: a sub-agent gets a narrowed subset of its parent's
// grants, cannot exceed them, is bounded in depth, and its parent's later
// changes — narrower grants, suspension, revocation — reach it.
func TestDelegation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		limited := agents.Grant{Resource: "mcp:github:*", Actions: []string{"read", "create_issue"}, Constraints: agents.Constraints{
			RateLimits: []agents.RateLimit{{Window: agents.PerMinute, Max: 5}},
		}}
		parentExp := t0.Add(48 * time.Hour)
		p, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{limited, denyAdmin, readSlack}, ExpiresAt: &parentExp})

		// More than the parent has is refused, naming the grant.
		_, _, _, err := e.svc.Delegate(ctx, p.ID, agents.DelegateInput{Name: "greedy", Permissions: []agents.Grant{
			{Resource: "mcp:*", Actions: []string{"read"}},
		}})
		var ve *agents.ValidationError
		if !errors.As(err, &ve) || ve.Field != "permissions" || !errors.Is(err, agents.ErrNotSubset) {
			t.Fatalf("wider grant: %v", err)
		}

		// A subset is narrowed: rate limit carried over, parent's deny copied,
		// expiry capped at the parent's.
		later := t0.Add(30 * 24 * time.Hour)
		c, grants := e.delegate(t, p.ID, agents.DelegateInput{ExpiresAt: &later, Permissions: []agents.Grant{
			{Resource: "mcp:github:*", Actions: []string{"read"}},
		}})
		if c.ParentID == nil || *c.ParentID != p.ID || c.DelegationDepth != 1 || *c.OwnerUserID != e.owner ||
			c.ExpiresAt == nil || !c.ExpiresAt.Equal(parentExp) || c.Type != p.Type {
			t.Fatalf("sub-agent %+v", c)
		}
		if len(grants) != 2 || len(grants[0].Constraints.RateLimits) != 1 || grants[0].Constraints.RateLimits[0].Max != 5 ||
			!grants[1].IsDeny() {
			t.Fatalf("delegated grants %+v", grants)
		}
		wantDecision(t, "child reads", e.decide(t, c.ID, "read", "mcp:github:issues"), true, agents.CodeAllowed)
		wantDecision(t, "child cannot create", e.decide(t, c.ID, "create_issue", "mcp:github:issues"), false, agents.CodePermissionDenied)
		wantDecision(t, "child inherits the deny", e.decide(t, c.ID, "read", "mcp:github:admin"), false, agents.CodePermissionDenied)
		wantDecision(t, "child has no slack", e.decide(t, c.ID, "read", "mcp:slack:general"), false, agents.CodePermissionDenied)

		// The audit record carries the chain, outermost first.
		d := e.decide(t, c.ID, "read", "mcp:github:pulls")
		rec := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: c.ID}))[d.AuditID]
		if !slices.Equal(rec.Chain, []string{p.ID, c.ID}) {
			t.Fatalf("chain in the audit record: %v", rec.Chain)
		}

		// Depth: 1 → 2 → 3 allowed, 4 refused (default limit 3).
		g, _ := e.delegate(t, c.ID, agents.DelegateInput{Permissions: []agents.Grant{{Resource: "mcp:github:issues", Actions: []string{"read"}}}})
		gg, _ := e.delegate(t, g.ID, agents.DelegateInput{Permissions: []agents.Grant{{Resource: "mcp:github:issues", Actions: []string{"read"}}}})
		if gg.DelegationDepth != 3 {
			t.Fatalf("depth %d", gg.DelegationDepth)
		}
		if _, _, _, err := e.svc.Delegate(ctx, gg.ID, agents.DelegateInput{Name: "too deep", Permissions: []agents.Grant{{Resource: "mcp:github:issues", Actions: []string{"read"}}}}); !errors.Is(err, agents.ErrDelegationDepth) {
			t.Fatalf("depth 4: %v", err)
		}
		wantDecision(t, "grandchild reads", e.decide(t, gg.ID, "read", "mcp:github:issues"), true, agents.CodeAllowed)

		// Narrowing the parent narrows the chain at once.
		narrower := []agents.Grant{{Resource: "mcp:github:pulls", Actions: []string{"read"}}}
		if _, _, err := e.svc.Update(ctx, p.ID, agents.UpdateInput{Permissions: &narrower}); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "child after the parent lost issues", e.decide(t, c.ID, "read", "mcp:github:issues"), false, agents.CodePermissionDenied)
		wantDecision(t, "child keeps pulls", e.decide(t, c.ID, "read", "mcp:github:pulls"), true, agents.CodeAllowed)
		wantDecision(t, "grandchild after the root lost issues", e.decide(t, gg.ID, "read", "mcp:github:issues"), false, agents.CodePermissionDenied)
		// A sub-agent's own permissions cannot be widened past its parent's.
		wider := []agents.Grant{{Resource: "mcp:slack:*", Actions: []string{"read"}}}
		if _, _, err := e.svc.Update(ctx, c.ID, agents.UpdateInput{Permissions: &wider}); !errors.Is(err, agents.ErrNotSubset) {
			t.Fatalf("widening a sub-agent: %v", err)
		}
		farExp := t0.Add(100 * 24 * time.Hour)
		farPtr := &farExp
		if _, _, err := e.svc.Update(ctx, c.ID, agents.UpdateInput{ExpiresAt: &farPtr}); err == nil {
			t.Fatal("a sub-agent was made to outlive its parent")
		}

		// Suspending the parent stops the chain; resuming it restores it.
		suspended, active := storage.AgentSuspended, storage.AgentActive
		if _, _, err := e.svc.Update(ctx, p.ID, agents.UpdateInput{Status: &suspended}); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "child of a suspended parent", e.decide(t, c.ID, "read", "mcp:github:pulls"), false, agents.CodeAgentSuspended)
		if err := e.svc.ActiveAgent(ctx, gg.ID); !errors.Is(err, agents.ErrAgentSuspended) {
			t.Fatalf("ActiveAgent under a suspended root: %v", err)
		}
		if _, _, _, err := e.svc.Delegate(ctx, c.ID, agents.DelegateInput{Name: "x", Permissions: narrower}); !errors.Is(err, agents.ErrAgentSuspended) {
			t.Fatalf("delegating under a suspended root: %v", err)
		}
		if _, _, err := e.svc.Update(ctx, p.ID, agents.UpdateInput{Status: &active}); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "child after resume", e.decide(t, c.ID, "read", "mcp:github:pulls"), true, agents.CodeAllowed)
		if err := e.svc.ActiveAgent(ctx, gg.ID); err != nil {
			t.Fatalf("ActiveAgent after resume: %v", err)
		}
		chain, err := e.svc.Chain(ctx, gg.ID)
		if err != nil || !slices.Equal(chain, []string{p.ID, c.ID, g.ID, gg.ID}) {
			t.Fatalf("Chain = %v, %v", chain, err)
		}

		// Revoking the middle revokes everything below it, not above.
		if err := e.svc.Revoke(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{c.ID, g.ID, gg.ID} {
			a, _, err := e.svc.Get(ctx, id)
			if err != nil || a.Status != storage.AgentRevoked {
				t.Fatalf("%s after revoking the chain: %+v %v", id, a, err)
			}
			wantDecision(t, "revoked chain", e.decide(t, id, "read", "mcp:github:pulls"), false, agents.CodeAgentRevoked)
		}
		if a, _, _ := e.svc.Get(ctx, p.ID); a.Status != storage.AgentActive {
			t.Fatalf("parent after revoking its child: %s", a.Status)
		}
		revokes := e.auditRecords(t, storage.AuditFilter{Event: agents.EventAgentRevoked})
		if len(revokes) != 3 {
			t.Fatalf("%d agent.revoked records, want 3", len(revokes))
		}
	})
}

// A parent whose grant requires approval passes that on, and a sub-agent
// of an agent nobody owns cannot exist.
func TestDelegationApprovalAndLimits(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{MaxDelegationDepth: 1})
	approve := agents.Grant{Resource: "mcp:deploy:*", Actions: []string{"run"}, Constraints: agents.Constraints{RequireApproval: true}}
	p, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{approve}})
	c, grants := e.delegate(t, p.ID, agents.DelegateInput{Permissions: []agents.Grant{{Resource: "mcp:deploy:staging", Actions: []string{"run"}}}})
	if !grants[0].Constraints.RequireApproval {
		t.Fatalf("approval not carried over: %+v", grants)
	}
	wantDecision(t, "child needs approval", e.decide(t, c.ID, "run", "mcp:deploy:staging"), false, agents.CodeApprovalRequired)
	if _, _, _, err := e.svc.Delegate(t.Context(), c.ID, agents.DelegateInput{Name: "x", Permissions: grants[:1]}); !errors.Is(err, agents.ErrDelegationDepth) {
		t.Fatalf("configured depth 1: %v", err)
	}
	if err := (agents.Config{MaxDelegationDepth: agents.HardMaxDelegationDepth + 1}).Validate(); err == nil {
		t.Fatal("a depth above the hard cap validated")
	}
	if _, _, _, err := e.svc.Delegate(t.Context(), "agt_missing", agents.DelegateInput{Name: "x", Permissions: grants[:1]}); !errors.Is(err, agents.ErrAgentNotFound) {
		t.Fatalf("missing parent: %v", err)
	}
}

// Revoking a parent while sub-agents are being created under it never
// leaves an active sub-agent of a revoked parent (on PostgreSQL the two
// meet on the parent's row lock).
func TestRevokeRacesDelegate(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		sub := []agents.Grant{{Resource: "mcp:github:issues", Actions: []string{"read"}}}
		for round := range 8 {
			p, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					_, _, _, err := e.svc.Delegate(ctx, p.ID, agents.DelegateInput{Name: "racer", Permissions: sub})
					if err != nil && !errors.Is(err, agents.ErrAgentRevoked) && !errors.Is(err, agents.ErrQuotaExceeded) {
						t.Errorf("delegate: %v", err)
					}
				})
			}
			wg.Go(func() {
				if err := e.svc.Revoke(ctx, p.ID); err != nil {
					t.Errorf("revoke: %v", err)
				}
			})
			wg.Wait()
			kids, err := e.store.Agents().ListChildren(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range kids {
				if k.Status != storage.AgentRevoked {
					t.Fatalf("round %d: sub-agent %s is %s under a revoked parent", round, k.ID, k.Status)
				}
			}
		}
	})
}

// A chain shares its ancestors' rate limits: sub-agents together stay
// within the parent's grant, and a parent limit lowered later binds them.
func TestDelegationSharesRateLimits(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		limited := agents.Grant{ID: "gh", Resource: "mcp:github:*", Actions: []string{"read"}, Constraints: agents.Constraints{
			RateLimits: []agents.RateLimit{{Window: agents.PerMinute, Max: 4}},
		}}
		p, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{limited}})
		var kids []string
		for range 3 {
			c, _ := e.delegate(t, p.ID, agents.DelegateInput{Permissions: []agents.Grant{{Resource: "mcp:github:issues", Actions: []string{"read"}}}})
			kids = append(kids, c.ID)
		}
		allowed := 0
		for range 3 {
			for _, id := range kids {
				if d := e.decide(t, id, "read", "mcp:github:issues"); d.Allowed {
					allowed++
				} else if d.Code != agents.CodeRateLimited {
					t.Fatalf("refusal %+v", d)
				}
			}
		}
		if allowed != 4 {
			t.Fatalf("%d calls allowed across three sub-agents, want the parent's 4 per minute", allowed)
		}
		wantDecision(t, "the parent shares its own limit", e.decide(t, p.ID, "read", "mcp:github:pulls"), false, agents.CodeRateLimited)

		// A lower parent limit binds existing sub-agents.
		e.clock.Advance(time.Minute)
		limited.Constraints.RateLimits[0].Max = 1
		if _, _, err := e.svc.Update(ctx, p.ID, agents.UpdateInput{Permissions: &[]agents.Grant{limited}}); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "first call after narrowing", e.decide(t, kids[0], "read", "mcp:github:issues"), true, agents.CodeAllowed)
		wantDecision(t, "second call after narrowing", e.decide(t, kids[1], "read", "mcp:github:issues"), false, agents.CodeRateLimited)
	})
}
