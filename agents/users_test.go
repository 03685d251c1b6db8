package agents_test

import (
	"errors"
	"testing"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/storage"
)

// Users go through the same decision point, and a user's grants, once
// set, bound the agents they own: at creation, on update, and at every
// decision (so agents created before are narrowed too).
func TestUserGrants(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		decideUser := func(userID, action, resource string) agents.Decision {
			return e.svc.Decide(ctx, agents.DecideRequest{UserID: userID, Action: action, Resource: resource})
		}
		// Before the user has grants: their agents are unbounded, and the
		// user is allowed nothing.
		early, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{{Resource: "mcp:*", Actions: []string{"read"}}}})
		wantDecision(t, "user without grants", decideUser(e.owner, "read", "mcp:github:issues"), false, agents.CodePermissionDenied)
		wantDecision(t, "unknown user", decideUser("usr_nobody", "read", "mcp:github:issues"), false, agents.CodeUserNotFound)
		wantDecision(t, "an agent id in the users' key space", e.decide(t, "user:"+e.owner, "read", "mcp:x"), false, agents.CodeAgentNotFound)
		wantDecision(t, "early agent, unbounded", e.decide(t, early.ID, "read", "mcp:slack:general"), true, agents.CodeAllowed)

		limited := agents.Grant{Resource: "mcp:github:*", Actions: []string{"read", "create_issue"}, Constraints: agents.Constraints{
			RateLimits: []agents.RateLimit{{Window: agents.PerMinute, Max: 3}},
		}}
		if _, err := e.svc.SetUserGrants(ctx, e.owner, []agents.Grant{limited}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SetUserGrants(ctx, "usr_nobody", nil); !errors.Is(err, agents.ErrUserNotFound) {
			t.Fatalf("grants for a missing user: %v", err)
		}
		got, err := e.svc.UserGrants(ctx, e.owner)
		if err != nil || len(got) != 1 || got[0].Resource != "mcp:github:*" {
			t.Fatalf("user grants %+v %v", got, err)
		}
		wantDecision(t, "user reads", decideUser(e.owner, "read", "mcp:github:issues"), true, agents.CodeAllowed)
		wantDecision(t, "user outside their grants", decideUser(e.owner, "read", "mcp:slack:general"), false, agents.CodePermissionDenied)

		// The early agent is now bounded by its owner at every decision.
		wantDecision(t, "early agent beyond its owner", e.decide(t, early.ID, "read", "mcp:slack:general"), false, agents.CodePermissionDenied)
		wantDecision(t, "early agent within its owner", e.decide(t, early.ID, "read", "mcp:github:pulls"), true, agents.CodeAllowed)
		// The owner's rate limit is shared: 3 per minute in all (2 used above).
		wantDecision(t, "third call against the owner's limit", e.decide(t, early.ID, "read", "mcp:github:pulls"), true, agents.CodeAllowed)
		wantDecision(t, "fourth call against the owner's limit", e.decide(t, early.ID, "read", "mcp:github:pulls"), false, agents.CodeRateLimited)

		// New agents and updates are narrowed at once.
		_, _, _, err = e.svc.Create(ctx, agents.CreateInput{OwnerUserID: e.owner, Name: "greedy", Permissions: []agents.Grant{{Resource: "mcp:*", Actions: []string{"read"}}}})
		if !errors.Is(err, agents.ErrNotSubset) {
			t.Fatalf("an agent beyond its owner's grants: %v", err)
		}
		a, grants, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{{Resource: "mcp:github:issues", Actions: []string{"read"}}}})
		if len(grants) != 1 || len(grants[0].Constraints.RateLimits) != 1 {
			t.Fatalf("agent grants not narrowed by the owner's: %+v", grants)
		}
		wider := []agents.Grant{{Resource: "mcp:slack:*", Actions: []string{"read"}}}
		if _, _, err := e.svc.Update(ctx, a.ID, agents.UpdateInput{Permissions: &wider}); !errors.Is(err, agents.ErrNotSubset) {
			t.Fatalf("widening an agent past its owner: %v", err)
		}

		// The change is audited; clearing the grants unbounds the agents.
		recs := e.auditRecords(t, storage.AuditFilter{Event: agents.EventUserPermissionsChanged})
		if len(recs) != 1 {
			t.Fatalf("%d user.permissions_changed records", len(recs))
		}
		if _, err := e.svc.SetUserGrants(ctx, e.owner, nil); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(61e9)
		wantDecision(t, "early agent after the owner's grants are cleared", e.decide(t, early.ID, "read", "mcp:slack:general"), true, agents.CodeAllowed)
		recsUser := e.auditRecords(t, storage.AuditFilter{PrincipalID: e.owner, Event: agents.AuditEventAuthorize})
		if len(recsUser) == 0 || recsUser[0].PrincipalType != "user" || recsUser[0].AgentID != "" {
			t.Fatalf("user decision records %+v", recsUser)
		}
	})
}
