package kavach_test

import (
	"strings"
	"testing"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

type orgJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
	Role string `json:"role"`
}

type orgMemberJSON struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

type orgAgentJSON struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	Status         string  `json:"status"`
	OrganizationID *string `json:"organizationId"`
}

func (c *client) createOrgAgent(t *testing.T, name, orgID string) orgAgentJSON {
	t.Helper()
	var created struct {
		Agent orgAgentJSON `json:"agent"`
	}
	c.do("POST", "/api/auth/agents", map[string]any{"name": name, "organizationId": orgID,
		"permissions": []map[string]any{{"resource": "mcp:docs:*", "actions": []string{"read"}}}}).
		must(t, 201).decode(t, &created)
	if created.Agent.OrganizationID == nil || *created.Agent.OrganizationID != orgID {
		t.Fatalf("agent %+v is not in organization %s", created.Agent, orgID)
	}
	return created.Agent
}

func agentIDs(t *testing.T, r *response) []string {
	t.Helper()
	var list []orgAgentJSON
	r.must(t, 200).decode(t, &list)
	ids := make([]string, len(list))
	for i, a := range list {
		ids[i] = a.ID
	}
	return ids
}

// Organizations end to end over HTTP: an owner builds an organization,
// members create agents in it, its admin manages them (and reads their
// audit records), plain members and outsiders see only what is theirs,
// the last owner stays, and the organization cannot be deleted while it
// has live agents.
func TestOrganizationsAPI(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner, admin, bob, carol, eve := e.client(), e.client(), e.client(), e.client(), e.client()
		ownerID := owner.signUp("owner@example.com").User.ID
		admin.signUp("admin@example.com")
		bobID := bob.signUp("bob@example.com").User.ID
		carol.signUp("carol@example.com")
		eve.signUp("eve@example.com")

		var org orgJSON
		owner.do("POST", "/api/auth/organizations", map[string]any{"name": "Acme Inc", "metadata": map[string]any{"plan": "pro"}}).
			must(t, 201).decode(t, &org)
		if org.Slug != "acme-inc" || org.Role != "owner" {
			t.Fatalf("created %+v", org)
		}
		base := "/api/auth/organizations/" + org.ID
		owner.do("POST", "/api/auth/organizations", map[string]any{"name": "Other", "slug": "acme-inc"}).mustError(t, 409, "ORGANIZATION_SLUG_TAKEN")
		owner.do("POST", "/api/auth/organizations", map[string]any{"name": " "}).mustError(t, 400, "INVALID_REQUEST")

		// Members by email or id; Clerk's org: prefix is refused.
		var m orgMemberJSON
		owner.do("POST", base+"/members", map[string]any{"email": "admin@example.com", "role": "admin"}).must(t, 201).decode(t, &m)
		if m.Role != "admin" || m.Email != "admin@example.com" {
			t.Fatalf("added %+v", m)
		}
		owner.do("POST", base+"/members", map[string]any{"userId": bobID, "role": "org:member"}).mustError(t, 400, "INVALID_REQUEST")
		admin.do("POST", base+"/members", map[string]any{"userId": bobID}).must(t, 201)
		admin.do("POST", base+"/members", map[string]any{"email": "carol@example.com", "role": "member"}).must(t, 201)
		admin.do("POST", base+"/members", map[string]any{"email": "carol@example.com"}).mustError(t, 409, "ALREADY_MEMBER")
		admin.do("POST", base+"/members", map[string]any{"email": "nobody@example.com"}).mustError(t, 404, "USER_NOT_FOUND")
		var members []orgMemberJSON
		carol.do("GET", base+"/members", nil).must(t, 200).decode(t, &members)
		roles := map[string]string{}
		for _, m := range members {
			roles[m.Email] = m.Role
		}
		if len(members) != 4 || roles["owner@example.com"] != "owner" || roles["admin@example.com"] != "admin" || roles["carol@example.com"] != "member" {
			t.Fatalf("members %+v", members)
		}
		var mine []orgJSON
		bob.do("GET", "/api/auth/organizations", nil).must(t, 200).decode(t, &mine)
		if len(mine) != 1 || mine[0].ID != org.ID || mine[0].Role != "member" {
			t.Fatalf("bob's organizations %+v", mine)
		}

		// Members create agents in the organization; outsiders cannot.
		bobAgent := bob.createOrgAgent(t, "Bob's bot", org.ID)
		carolAgent := carol.createOrgAgent(t, "Carol's bot", org.ID)
		eve.do("POST", "/api/auth/agents", map[string]any{"name": "x", "organizationId": org.ID}).mustError(t, 400, "INVALID_REQUEST")

		// The organization's admin manages every agent of it.
		admin.do("GET", "/api/auth/agents/"+bobAgent.ID, nil).must(t, 200)
		var renamed orgAgentJSON
		admin.do("PATCH", "/api/auth/agents/"+bobAgent.ID, map[string]any{"name": "Team bot"}).must(t, 200).decode(t, &renamed)
		if renamed.Name != "Team bot" {
			t.Fatalf("renamed %+v", renamed)
		}
		if ids := agentIDs(t, admin.do("GET", "/api/auth/agents?organizationId="+org.ID, nil)); len(ids) != 2 {
			t.Fatalf("admin lists %v", ids)
		}
		var audit struct {
			Records []struct {
				AgentID string `json:"agentId"`
				Event   string `json:"event"`
			} `json:"records"`
		}
		admin.do("GET", "/api/auth/audit?agentId="+bobAgent.ID, nil).must(t, 200).decode(t, &audit)
		if len(audit.Records) == 0 || audit.Records[0].AgentID != bobAgent.ID {
			t.Fatalf("admin's audit view %+v", audit)
		}

		// A plain member sees only their own agents, an outsider nothing.
		carol.do("GET", "/api/auth/agents/"+bobAgent.ID, nil).mustError(t, 404, "AGENT_NOT_FOUND")
		carol.do("PATCH", "/api/auth/agents/"+bobAgent.ID, map[string]any{"name": "mine now"}).mustError(t, 404, "AGENT_NOT_FOUND")
		carol.do("GET", "/api/auth/audit?agentId="+bobAgent.ID, nil).mustError(t, 403, "FORBIDDEN")
		if ids := agentIDs(t, carol.do("GET", "/api/auth/agents?organizationId="+org.ID, nil)); len(ids) != 1 || ids[0] != carolAgent.ID {
			t.Fatalf("carol lists %v", ids)
		}
		for _, path := range []string{base, base + "/members", "/api/auth/agents?organizationId=" + org.ID} {
			eve.do("GET", path, nil).mustError(t, 404, "ORGANIZATION_NOT_FOUND")
		}
		eve.do("PATCH", base, map[string]any{"name": "Mine"}).mustError(t, 404, "ORGANIZATION_NOT_FOUND")
		eve.do("DELETE", base, nil).mustError(t, 404, "ORGANIZATION_NOT_FOUND")
		eve.do("DELETE", base+"/members/"+bobID, nil).mustError(t, 404, "ORGANIZATION_NOT_FOUND")
		eve.do("GET", "/api/auth/agents/"+bobAgent.ID, nil).mustError(t, 404, "AGENT_NOT_FOUND")
		carol.do("PATCH", base, map[string]any{"name": "Carol Inc"}).mustError(t, 403, "FORBIDDEN")

		// Owners are beyond admins, and the last owner stays.
		admin.do("DELETE", base+"/members/"+ownerID, nil).mustError(t, 403, "FORBIDDEN")
		admin.do("PATCH", base+"/members/"+ownerID, map[string]any{"role": "member"}).mustError(t, 403, "FORBIDDEN")
		owner.do("DELETE", base+"/members/"+ownerID, nil).mustError(t, 409, "LAST_OWNER")
		owner.do("PATCH", base+"/members/"+ownerID, map[string]any{"role": "admin"}).mustError(t, 409, "LAST_OWNER")
		admin.do("PATCH", base, map[string]any{"slug": "acme"}).must(t, 200)

		// A member who leaves keeps their agent; the admin still manages it.
		bob.do("DELETE", base+"/members/"+bobID, nil).must(t, 200)
		bob.do("GET", base, nil).mustError(t, 404, "ORGANIZATION_NOT_FOUND")
		admin.do("GET", "/api/auth/agents/"+bobAgent.ID, nil).must(t, 200)

		// No delete while agents live; revoke them (admin and owner of the
		// agent alike may), then it goes.
		admin.do("DELETE", base, nil).mustError(t, 403, "FORBIDDEN")
		owner.do("DELETE", base, nil).mustError(t, 409, "ORGANIZATION_HAS_AGENTS")
		admin.do("DELETE", "/api/auth/agents/"+bobAgent.ID, nil).must(t, 200)
		carol.do("DELETE", "/api/auth/agents/"+carolAgent.ID, nil).must(t, 200)
		owner.do("DELETE", base, nil).must(t, 200)
		owner.do("GET", base, nil).mustError(t, 404, "ORGANIZATION_NOT_FOUND")
		var kept orgAgentJSON
		bob.do("GET", "/api/auth/agents/"+bobAgent.ID, nil).must(t, 200).decode(t, &kept)
		if kept.Status != "revoked" || kept.OrganizationID != nil {
			t.Fatalf("bob's agent after the organization went: %+v", kept)
		}
		admin.do("GET", "/api/auth/agents/"+bobAgent.ID, nil).mustError(t, 404, "AGENT_NOT_FOUND")
	})
}

// A server admin manages any organization and its agents without being a
// member.
func TestOrganizationsServerAdmin(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		owner := e.client()
		owner.signUp("owner@example.com")
		var org orgJSON
		owner.do("POST", "/api/auth/organizations", map[string]any{"name": "Acme"}).must(t, 201).decode(t, &org)
		agent := owner.createOrgAgent(t, "bot", org.ID)

		root := e.client()
		root.signUp("root@example.com")
		root.do("GET", "/api/auth/organizations/"+org.ID, nil).mustError(t, 404, "ORGANIZATION_NOT_FOUND") // not verified: no admin yet
		link := e.waitMail("root@example.com", "Verify your email")
		root.do("GET", strings.TrimPrefix(link, e.url), nil).must(t, 200)
		var got orgJSON
		root.do("GET", "/api/auth/organizations/"+org.ID, nil).must(t, 200).decode(t, &got)
		if got.ID != org.ID || got.Role != "" {
			t.Fatalf("server admin sees %+v", got)
		}
		if ids := agentIDs(t, root.do("GET", "/api/auth/agents?organizationId="+org.ID, nil)); len(ids) != 1 || ids[0] != agent.ID {
			t.Fatalf("server admin lists %v", ids)
		}
		root.do("DELETE", "/api/auth/agents/"+agent.ID, nil).must(t, 200)
		root.do("DELETE", "/api/auth/organizations/"+org.ID, nil).must(t, 200)
	})
}
