package storagetest

import (
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var organizationTests = []test{
	{"CreateGetUpdate", testOrgCreateGetUpdate},
	{"SlugUnique", testOrgSlugUnique},
	{"NotFound", testOrgNotFound},
	{"Members", testOrgMembers},
	{"ListByUser", testOrgListByUser},
	{"DeleteCascadesMembersKeepsAgents", testOrgDeleteCascades},
	{"UserDeleteLeavesOrganization", testOrgUserDelete},
	{"AgentsByOrganization", testOrgAgents},
	{"LockSerializes", testOrgLockSerializes},
}

func newOrg(id, slug string, createdBy *string) *storage.Organization {
	return &storage.Organization{ID: id, Name: "Org " + id, Slug: slug, CreatedBy: createdBy}
}

func testOrgCreateGetUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	o := newOrg("org_1", "acme", &u.ID)
	o.Metadata = []byte(`{"plan":"pro","ünï":"✓"}`)
	must(t, "create", s.Organizations().Create(ctx, o))
	wantUTC(t, "create", o.CreatedAt, o.UpdatedAt)
	b := newOrg("org_2", "beta", nil)
	must(t, "create without metadata", s.Organizations().Create(ctx, b))
	if string(b.Metadata) != "{}" {
		t.Fatalf("empty metadata stored as %q", b.Metadata)
	}
	got, err := s.Organizations().Get(ctx, o.ID)
	must(t, "get", err)
	wantSame(t, "get", got, o)
	bySlug, err := s.Organizations().GetBySlug(ctx, "acme")
	must(t, "get by slug", err)
	wantSame(t, "get by slug", bySlug, o)

	o.Name, o.Slug, o.Metadata, o.UpdatedAt = "Acme ✓", "acme-inc", []byte(`{"k":"v"}`), now().Add(time.Minute)
	must(t, "update", s.Organizations().Update(ctx, o))
	got, err = s.Organizations().Get(ctx, o.ID)
	must(t, "get after update", err)
	wantSame(t, "after update", got, o)
	wantErr(t, "old slug", errOnly(s.Organizations().GetBySlug(ctx, "acme")), storage.ErrNotFound)
}

func errOnly[T any](_ T, err error) error { return err }

func testOrgSlugUnique(t *testing.T, s storage.Store) {
	ctx := t.Context()
	must(t, "create", s.Organizations().Create(ctx, newOrg("org_1", "acme", nil)))
	wantErr(t, "duplicate slug", s.Organizations().Create(ctx, newOrg("org_2", "acme", nil)), storage.ErrAlreadyExists)
	wantErr(t, "duplicate id", s.Organizations().Create(ctx, newOrg("org_1", "other", nil)), storage.ErrAlreadyExists)
	b := newOrg("org_3", "beta", nil)
	must(t, "create b", s.Organizations().Create(ctx, b))
	b.Slug = "acme"
	wantErr(t, "update to a taken slug", s.Organizations().Update(ctx, b), storage.ErrAlreadyExists)
}

func testOrgNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	wantErr(t, "get", errOnly(s.Organizations().Get(ctx, "missing")), storage.ErrNotFound)
	wantErr(t, "update", s.Organizations().Update(ctx, newOrg("missing", "x", nil)), storage.ErrNotFound)
	wantErr(t, "delete", s.Organizations().Delete(ctx, "missing"), storage.ErrNotFound)
	wantErr(t, "lock", s.Organizations().Lock(ctx, "missing"), storage.ErrNotFound)
	wantErr(t, "add member to a missing org", s.Organizations().AddMember(ctx,
		&storage.OrgMember{OrganizationID: "missing", UserID: u.ID, Role: storage.OrgRoleOwner}), storage.ErrNotFound)
	must(t, "create", s.Organizations().Create(ctx, newOrg("org_1", "acme", nil)))
	wantErr(t, "add a missing user", s.Organizations().AddMember(ctx,
		&storage.OrgMember{OrganizationID: "org_1", UserID: "usr_missing", Role: storage.OrgRoleOwner}), storage.ErrNotFound)
	wantErr(t, "get member", errOnly(s.Organizations().GetMember(ctx, "org_1", u.ID)), storage.ErrNotFound)
	wantErr(t, "set role", s.Organizations().SetMemberRole(ctx, "org_1", u.ID, storage.OrgRoleAdmin), storage.ErrNotFound)
	wantErr(t, "remove", s.Organizations().RemoveMember(ctx, "org_1", u.ID), storage.ErrNotFound)
}

func testOrgMembers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice, bob := createUser(t, s), createUser(t, s)
	must(t, "create", s.Organizations().Create(ctx, newOrg("org_1", "acme", &alice.ID)))
	m1 := &storage.OrgMember{OrganizationID: "org_1", UserID: alice.ID, Role: storage.OrgRoleOwner, CreatedAt: now()}
	m2 := &storage.OrgMember{OrganizationID: "org_1", UserID: bob.ID, Role: storage.OrgRoleMember, CreatedAt: now().Add(time.Second)}
	must(t, "add alice", s.Organizations().AddMember(ctx, m1))
	must(t, "add bob", s.Organizations().AddMember(ctx, m2))
	wantErr(t, "add bob twice", s.Organizations().AddMember(ctx,
		&storage.OrgMember{OrganizationID: "org_1", UserID: bob.ID, Role: storage.OrgRoleAdmin}), storage.ErrAlreadyExists)
	got, err := s.Organizations().GetMember(ctx, "org_1", bob.ID)
	must(t, "get member", err)
	wantSame(t, "get member", got, m2)

	must(t, "promote bob", s.Organizations().SetMemberRole(ctx, "org_1", bob.ID, storage.OrgRoleAdmin))
	m2.Role = storage.OrgRoleAdmin
	members, err := s.Organizations().ListMembers(ctx, "org_1")
	must(t, "list", err)
	wantSame(t, "list", members, []storage.OrgMemberProfile{
		{OrgMember: *m1, Email: alice.Email, Name: alice.Name, Image: alice.Image},
		{OrgMember: *m2, Email: bob.Email, Name: bob.Name, Image: bob.Image},
	})
	if err := s.Organizations().SetMemberRole(ctx, "org_1", bob.ID, "org:admin"); err == nil {
		t.Fatal("a role outside owner, admin and member was stored")
	}
	must(t, "remove bob", s.Organizations().RemoveMember(ctx, "org_1", bob.ID))
	members, err = s.Organizations().ListMembers(ctx, "org_1")
	must(t, "list after remove", err)
	if len(members) != 1 || members[0].UserID != alice.ID {
		t.Fatalf("members after remove: %+v", members)
	}
}

func testOrgListByUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	a, b, c := newOrg("org_a", "a", nil), newOrg("org_b", "b", nil), newOrg("org_c", "c", nil)
	a.CreatedAt, b.CreatedAt = now().Add(-time.Second), now().Add(time.Second)
	for _, o := range []*storage.Organization{b, a, c} {
		must(t, "create "+o.ID, s.Organizations().Create(ctx, o))
	}
	must(t, "add to b", s.Organizations().AddMember(ctx, &storage.OrgMember{OrganizationID: "org_b", UserID: u.ID, Role: storage.OrgRoleMember}))
	must(t, "add to a", s.Organizations().AddMember(ctx, &storage.OrgMember{OrganizationID: "org_a", UserID: u.ID, Role: storage.OrgRoleOwner}))
	must(t, "other to c", s.Organizations().AddMember(ctx, &storage.OrgMember{OrganizationID: "org_c", UserID: other.ID, Role: storage.OrgRoleOwner}))
	got, err := s.Organizations().ListByUser(ctx, u.ID)
	must(t, "list by user", err)
	wantSame(t, "list by user", got, []storage.UserOrganization{{Organization: *a, Role: storage.OrgRoleOwner}, {Organization: *b, Role: storage.OrgRoleMember}})
	none, err := s.Organizations().ListByUser(ctx, "usr_nobody")
	must(t, "list by unknown user", err)
	if len(none) != 0 {
		t.Fatalf("unknown user has %+v", none)
	}
}

func testOrgDeleteCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	must(t, "create", s.Organizations().Create(ctx, newOrg("org_1", "acme", &u.ID)))
	must(t, "add", s.Organizations().AddMember(ctx, &storage.OrgMember{OrganizationID: "org_1", UserID: u.ID, Role: storage.OrgRoleOwner}))
	a := newAgent("agt_1", storage.AgentAutonomous, &u.ID, nil)
	a.OrganizationID = new("org_1")
	must(t, "create agent", s.Agents().Create(ctx, a))
	must(t, "delete", s.Organizations().Delete(ctx, "org_1"))
	wantErr(t, "member after delete", errOnly(s.Organizations().GetMember(ctx, "org_1", u.ID)), storage.ErrNotFound)
	got, err := s.Agents().Get(ctx, "agt_1")
	must(t, "agent after delete", err)
	if got.OrganizationID != nil {
		t.Fatalf("agent still names the deleted organization %q", *got.OrganizationID)
	}
}

func testOrgUserDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	must(t, "create", s.Organizations().Create(ctx, newOrg("org_1", "acme", &u.ID)))
	must(t, "add", s.Organizations().AddMember(ctx, &storage.OrgMember{OrganizationID: "org_1", UserID: u.ID, Role: storage.OrgRoleOwner}))
	must(t, "delete user", s.Users().Delete(ctx, u.ID))
	o, err := s.Organizations().Get(ctx, "org_1")
	must(t, "org outlives its creator", err)
	if o.CreatedBy != nil {
		t.Fatalf("created_by still names the deleted user")
	}
	members, err := s.Organizations().ListMembers(ctx, "org_1")
	must(t, "list", err)
	if len(members) != 0 {
		t.Fatalf("membership survived its user: %+v", members)
	}
}

func testOrgAgents(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	must(t, "create org", s.Organizations().Create(ctx, newOrg("org_1", "acme", nil)))
	a := newAgent("agt_1", storage.AgentAutonomous, &u.ID, nil)
	a.OrganizationID = new("org_1")
	must(t, "create org agent", s.Agents().Create(ctx, a))
	b := newAgent("agt_2", storage.AgentAutonomous, &u.ID, nil)
	b.CreatedAt = a.CreatedAt.Add(time.Second)
	must(t, "create personal agent", s.Agents().Create(ctx, b))
	got, err := s.Agents().Get(ctx, a.ID)
	must(t, "get", err)
	wantSame(t, "get", got, a)
	inOrg, err := s.Agents().ListByOrganization(ctx, "org_1")
	must(t, "list by organization", err)
	wantSame(t, "list by organization", inOrg, []storage.Agent{*a})
	mine, err := s.Agents().ListByOwner(ctx, u.ID)
	must(t, "list by owner", err)
	wantSame(t, "list by owner", mine, []storage.Agent{*a, *b})
	a.OrganizationID = nil
	must(t, "update", s.Agents().Update(ctx, a))
	if got, _ = s.Agents().Get(ctx, a.ID); got.OrganizationID == nil || *got.OrganizationID != "org_1" {
		t.Fatalf("Update wrote the organization: %+v", got)
	}
	bad := newAgent("agt_3", storage.AgentAutonomous, &u.ID, nil)
	bad.OrganizationID = new("org_missing")
	if err := s.Agents().Create(ctx, bad); err == nil {
		t.Fatal("an agent of a missing organization was stored")
	}
}

// testOrgLockSerializes checks that Lock holds until the transaction
// ends: while one transaction holds it, a second one's Lock does not
// return, and once it does, the second reads what the first wrote. (On
// SQLite the second transaction cannot even begin while the first is open:
// BEGIN IMMEDIATE serializes write transactions.)
func testOrgLockSerializes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	must(t, "create", s.Organizations().Create(ctx, newOrg("org_1", "acme", nil)))
	u := createUser(t, s)
	began, locked := make(chan struct{}), make(chan struct{})
	seen := make(chan int, 1)
	var wg sync.WaitGroup
	err := s.InTx(ctx, func(tx storage.Store) error {
		if err := tx.Organizations().Lock(ctx, "org_1"); err != nil {
			return err
		}
		wg.Go(func() {
			err := s.InTx(ctx, func(tx2 storage.Store) error {
				close(began)
				if err := tx2.Organizations().Lock(ctx, "org_1"); err != nil {
					return err
				}
				close(locked)
				members, err := tx2.Organizations().ListMembers(ctx, "org_1")
				seen <- len(members)
				return err
			})
			if err != nil {
				t.Errorf("second transaction: %v", err)
			}
		})
		if s.Dialect() != "sqlite" {
			<-began
		}
		// Give the second transaction time (two round trips) to pass a
		// Lock that does not wait.
		if err := tx.Organizations().AddMember(ctx, &storage.OrgMember{OrganizationID: "org_1", UserID: u.ID, Role: storage.OrgRoleOwner}); err != nil {
			return err
		}
		if _, err := tx.Organizations().ListMembers(ctx, "org_1"); err != nil {
			return err
		}
		select {
		case <-locked:
			t.Error("a second Lock returned while the first transaction held it")
		default:
		}
		return nil
	})
	must(t, "first transaction", err)
	wg.Wait()
	if n := <-seen; n != 1 {
		t.Fatalf("the second transaction saw %d members, want 1", n)
	}
}
