package agents_test

import (
	"errors"
	"testing"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// An agent may join an organization its owner belongs to (in any role),
// and no other; the organization's agents are listed together.
func TestCreateInOrganization(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		org := &storage.Organization{ID: id.New("org"), Name: "Acme", Slug: "acme"}
		if err := e.store.Organizations().Create(ctx, org); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Organizations().AddMember(ctx, &storage.OrgMember{OrganizationID: org.ID, UserID: e.owner, Role: storage.OrgRoleMember}); err != nil {
			t.Fatal(err)
		}
		a, _, _ := e.create(t, agents.CreateInput{OwnerUserID: e.owner, Name: "org bot", OrganizationID: org.ID})
		if a.OrganizationID == nil || *a.OrganizationID != org.ID {
			t.Fatalf("created %+v", a)
		}
		got, _, err := e.svc.Get(ctx, a.ID)
		if err != nil || got.OrganizationID == nil || *got.OrganizationID != org.ID {
			t.Fatalf("get %+v %v", got, err)
		}
		e.create(t, agents.CreateInput{OwnerUserID: e.owner, Name: "personal bot"})

		outsider := e.newUser(t)
		for _, tc := range []struct{ what, owner, org string }{
			{"not a member", outsider, org.ID},
			{"no such organization", e.owner, id.New("org")},
			{"garbage id", e.owner, "org\x00"},
		} {
			_, _, _, err := e.svc.Create(ctx, agents.CreateInput{OwnerUserID: tc.owner, Name: "x", OrganizationID: tc.org})
			var ve *agents.ValidationError
			if !errors.As(err, &ve) || ve.Field != "organizationId" {
				t.Fatalf("%s: err = %v, want a validation error about organizationId", tc.what, err)
			}
		}

		list, err := e.svc.ListByOrganization(ctx, org.ID)
		if err != nil || len(list) != 1 || list[0].ID != a.ID {
			t.Fatalf("list by organization: %+v %v", list, err)
		}
	})
}
