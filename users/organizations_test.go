package users_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
	"github.com/kavachos/kavach/users"
)

// orgEnv is a users service on a real store with a few users.
type orgEnv struct {
	t     *testing.T
	store storage.Store
	svc   *users.Service
	orgs  users.Organizations
}

func newOrgEnv(t *testing.T, open func(testing.TB) storage.Store, cfg users.Config) *orgEnv {
	store := open(t)
	cfg.BaseURL, cfg.Logger = "http://localhost", slog.New(slog.DiscardHandler)
	svc := users.NewService(store, cfg)
	t.Cleanup(svc.Close)
	return &orgEnv{t: t, store: store, svc: svc, orgs: svc.Organizations()}
}

func (e *orgEnv) user(email string) users.OrgActor {
	e.t.Helper()
	u, err := e.svc.CreateUser(e.t.Context(), users.CreateUserInput{Email: email, Name: strings.Split(email, "@")[0]})
	if err != nil {
		e.t.Fatalf("create user %s: %v", email, err)
	}
	return users.OrgActor{UserID: u.ID}
}

func (e *orgEnv) create(creator users.OrgActor, name, slug string) storage.Organization {
	e.t.Helper()
	o, err := e.orgs.Create(e.t.Context(), creator.UserID, users.CreateOrgInput{Name: name, Slug: slug})
	if err != nil {
		e.t.Fatalf("create organization %s: %v", name, err)
	}
	return o
}

func (e *orgEnv) add(actor users.OrgActor, orgID string, who users.OrgActor, role string) {
	e.t.Helper()
	if _, err := e.orgs.AddMember(e.t.Context(), actor, orgID, users.AddMemberInput{UserID: who.UserID, Role: role}); err != nil {
		e.t.Fatalf("add %s as %s: %v", who.UserID, role, err)
	}
}

// events returns the types of the pending outbox events.
func (e *orgEnv) events() []string {
	e.t.Helper()
	list, err := e.store.Events().Pending(e.t.Context(), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range list {
		if strings.HasPrefix(ev.Type, "organization.") {
			out = append(out, ev.Type)
		}
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var ie *users.InputError
	if !errors.As(err, &ie) || ie.Field != field {
		t.Fatalf("%s: err = %v, want an input error about %s", what, err, field)
	}
}

func forEachDriver(t *testing.T, f func(t *testing.T, open func(testing.TB) storage.Store)) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			f(t, d.Open)
		})
	}
}

func TestOrganizationCreate(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newOrgEnv(t, open, users.Config{})
		ctx := t.Context()
		alice := e.user("alice@example.com")
		org, err := e.orgs.Create(ctx, alice.UserID, users.CreateOrgInput{Name: "  Acme Ünï Corp!  ", Metadata: json.RawMessage(`{ "plan": "pro" }`)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(org.ID, "org_") || org.Name != "Acme Ünï Corp!" || org.Slug != "acme-n-corp" ||
			string(org.Metadata) != `{"plan":"pro"}` || org.CreatedBy == nil || *org.CreatedBy != alice.UserID {
			t.Fatalf("created %+v", org)
		}
		got, role, err := e.orgs.Get(ctx, alice, org.ID)
		if err != nil || role != storage.OrgRoleOwner || got.Slug != org.Slug {
			t.Fatalf("get: %+v %q %v", got, role, err)
		}
		mine, err := e.orgs.ListForUser(ctx, alice.UserID)
		if err != nil || len(mine) != 1 || mine[0].ID != org.ID || mine[0].Role != storage.OrgRoleOwner {
			t.Fatalf("list: %+v %v", mine, err)
		}

		// A derived slug that is taken gets a suffix; a chosen one is refused.
		again := e.create(alice, "Acme ünï corp", "")
		if !strings.HasPrefix(again.Slug, "acme-n-corp-") || len(again.Slug) != len("acme-n-corp-")+6 {
			t.Fatalf("second derived slug %q", again.Slug)
		}
		_, err = e.orgs.Create(ctx, alice.UserID, users.CreateOrgInput{Name: "Other", Slug: "ACME-N-CORP"})
		wantErr(t, "taken slug", err, users.ErrOrgSlugTaken)
		if o := e.create(alice, "!!!", ""); o.Slug != "org" {
			t.Fatalf("slug of a name without letters: %q", o.Slug)
		}

		bad := []struct {
			in    users.CreateOrgInput
			field string
		}{
			{users.CreateOrgInput{Name: "  "}, "name"},
			{users.CreateOrgInput{Name: "a\x00b"}, "name"},
			{users.CreateOrgInput{Name: "a\u200bb"}, "name"},
			{users.CreateOrgInput{Name: strings.Repeat("n", users.MaxOrgNameRunes+1)}, "name"},
			{users.CreateOrgInput{Name: "ok", Slug: "-acme"}, "slug"},
			{users.CreateOrgInput{Name: "ok", Slug: "acme_inc"}, "slug"},
			{users.CreateOrgInput{Name: "ok", Slug: "ácme"}, "slug"},
			{users.CreateOrgInput{Name: "ok", Slug: strings.Repeat("a", users.MaxOrgSlugLength+1)}, "slug"},
			{users.CreateOrgInput{Name: "ok", Metadata: json.RawMessage(`[1]`)}, "metadata"},
			{users.CreateOrgInput{Name: "ok", Metadata: json.RawMessage(`{"a":`)}, "metadata"},
		}
		for _, b := range bad {
			_, err := e.orgs.Create(ctx, alice.UserID, b.in)
			wantField(t, "create "+b.in.Name+" "+b.in.Slug, err, b.field)
		}
		if got := e.events(); !slices.Equal(got, []string{users.EventOrgCreated, users.EventOrgCreated, users.EventOrgCreated}) {
			t.Fatalf("events %v", got)
		}
	})
}

func TestOrganizationRoles(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newOrgEnv(t, open, users.Config{})
		ctx := t.Context()
		owner, admin, member, other, outsider := e.user("owner@example.com"), e.user("admin@example.com"),
			e.user("member@example.com"), e.user("other@example.com"), e.user("outsider@example.com")
		org := e.create(owner, "Acme", "acme")
		e.add(owner, org.ID, admin, storage.OrgRoleAdmin)
		// By email, with the default role.
		p, err := e.orgs.AddMember(ctx, admin, org.ID, users.AddMemberInput{Email: " Member@Example.com "})
		if err != nil || p.UserID != member.UserID || p.Role != storage.OrgRoleMember || p.Email != "member@example.com" {
			t.Fatalf("add by email: %+v %v", p, err)
		}

		// Outsiders see nothing.
		_, _, err = e.orgs.Get(ctx, outsider, org.ID)
		wantErr(t, "outsider get", err, users.ErrOrganizationNotFound)
		_, err = e.orgs.ListMembers(ctx, outsider, org.ID)
		wantErr(t, "outsider members", err, users.ErrOrganizationNotFound)
		_, err = e.orgs.AddMember(ctx, outsider, org.ID, users.AddMemberInput{UserID: outsider.UserID})
		wantErr(t, "outsider adds self", err, users.ErrOrganizationNotFound)
		wantErr(t, "outsider delete", e.orgs.Delete(ctx, outsider, org.ID), users.ErrOrganizationNotFound)
		_, _, err = e.orgs.Get(ctx, owner, "org_notanid")
		wantErr(t, "malformed id", err, users.ErrOrganizationNotFound)

		// Members see, but may not change.
		if ms, err := e.orgs.ListMembers(ctx, member, org.ID); err != nil || len(ms) != 3 {
			t.Fatalf("member lists %+v %v", ms, err)
		}
		_, err = e.orgs.AddMember(ctx, member, org.ID, users.AddMemberInput{UserID: other.UserID})
		wantErr(t, "member adds", err, users.ErrOrgForbidden)
		_, err = e.orgs.Update(ctx, member, org.ID, users.UpdateOrgInput{Name: new("Renamed")})
		wantErr(t, "member updates", err, users.ErrOrgForbidden)
		wantErr(t, "member removes admin", e.orgs.RemoveMember(ctx, member, org.ID, admin.UserID), users.ErrOrgForbidden)

		// Admins manage admins and members, never owners.
		_, err = e.orgs.AddMember(ctx, admin, org.ID, users.AddMemberInput{UserID: other.UserID, Role: storage.OrgRoleOwner})
		wantErr(t, "admin adds an owner", err, users.ErrOrgForbidden)
		_, err = e.orgs.UpdateRole(ctx, admin, org.ID, admin.UserID, storage.OrgRoleOwner)
		wantErr(t, "admin promotes self to owner", err, users.ErrOrgForbidden)
		_, err = e.orgs.UpdateRole(ctx, admin, org.ID, owner.UserID, storage.OrgRoleMember)
		wantErr(t, "admin demotes the owner", err, users.ErrOrgForbidden)
		wantErr(t, "admin removes the owner", e.orgs.RemoveMember(ctx, admin, org.ID, owner.UserID), users.ErrOrgForbidden)
		wantErr(t, "admin deletes", e.orgs.Delete(ctx, admin, org.ID), users.ErrOrgForbidden)
		if p, err := e.orgs.UpdateRole(ctx, admin, org.ID, member.UserID, storage.OrgRoleAdmin); err != nil || p.Role != storage.OrgRoleAdmin {
			t.Fatalf("admin promotes member: %+v %v", p, err)
		}
		if _, err := e.orgs.Update(ctx, admin, org.ID, users.UpdateOrgInput{Name: new("Acme Inc"), Slug: new("acme-inc")}); err != nil {
			t.Fatalf("admin updates: %v", err)
		}

		// Bad input names the field; duplicates and unknown users are refused.
		_, err = e.orgs.AddMember(ctx, owner, org.ID, users.AddMemberInput{UserID: other.UserID, Role: "org:admin"})
		wantField(t, "Clerk role", err, "role")
		_, err = e.orgs.AddMember(ctx, owner, org.ID, users.AddMemberInput{UserID: other.UserID, Email: "other@example.com"})
		wantField(t, "both id and email", err, "userId")
		_, err = e.orgs.AddMember(ctx, owner, org.ID, users.AddMemberInput{UserID: admin.UserID})
		wantErr(t, "add twice", err, users.ErrAlreadyMember)
		_, err = e.orgs.AddMember(ctx, owner, org.ID, users.AddMemberInput{Email: "nobody@example.com"})
		wantErr(t, "unknown email", err, users.ErrUserNotFound)
		_, err = e.orgs.AddMember(ctx, owner, org.ID, users.AddMemberInput{UserID: "usr_x"})
		wantErr(t, "malformed user id", err, users.ErrUserNotFound)
		_, err = e.orgs.AddMember(ctx, owner, org.ID, users.AddMemberInput{UserID: "usr_\x00"})
		wantErr(t, "user id with NUL", err, users.ErrUserNotFound)
		_, _, err = e.orgs.Get(ctx, owner, "org_\xff")
		wantErr(t, "organization id not UTF-8", err, users.ErrOrganizationNotFound)
		_, err = e.orgs.UpdateRole(ctx, owner, org.ID, outsider.UserID, storage.OrgRoleAdmin)
		wantErr(t, "re-role a non-member", err, users.ErrMemberNotFound)

		// Users imported from Clerk keep their user_… ids.
		imported := &storage.User{ID: "user_2abcClerk", Email: "imported@example.com", Name: "Imported"}
		if err := e.store.Users().Create(ctx, imported); err != nil {
			t.Fatal(err)
		}
		e.add(owner, org.ID, users.OrgActor{UserID: imported.ID}, storage.OrgRoleMember)

		// A server admin acts as an owner without being a member.
		root := users.OrgActor{UserID: outsider.UserID, ServerAdmin: true}
		if _, role, err := e.orgs.Get(ctx, root, org.ID); err != nil || role != "" {
			t.Fatalf("server admin get: %q %v", role, err)
		}
		e.add(root, org.ID, other, storage.OrgRoleOwner)
		wantErr(t, "server admin removes a member", e.orgs.RemoveMember(ctx, root, org.ID, other.UserID), nil)
	})
}

func TestOrganizationLastOwner(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newOrgEnv(t, open, users.Config{})
		ctx := t.Context()
		owner, second, member := e.user("owner@example.com"), e.user("second@example.com"), e.user("member@example.com")
		org := e.create(owner, "Acme", "acme")
		e.add(owner, org.ID, member, storage.OrgRoleMember)

		wantErr(t, "last owner leaves", e.orgs.RemoveMember(ctx, owner, org.ID, owner.UserID), users.ErrLastOwner)
		_, err := e.orgs.UpdateRole(ctx, owner, org.ID, owner.UserID, storage.OrgRoleAdmin)
		wantErr(t, "last owner steps down", err, users.ErrLastOwner)
		root := users.OrgActor{UserID: member.UserID, ServerAdmin: true}
		wantErr(t, "server admin removes the last owner", e.orgs.RemoveMember(ctx, root, org.ID, owner.UserID), users.ErrLastOwner)

		// With a second owner, the first may step down, then leave.
		e.add(owner, org.ID, second, storage.OrgRoleOwner)
		if _, err := e.orgs.UpdateRole(ctx, owner, org.ID, owner.UserID, storage.OrgRoleAdmin); err != nil {
			t.Fatalf("step down: %v", err)
		}
		if err := e.orgs.RemoveMember(ctx, owner, org.ID, owner.UserID); err != nil {
			t.Fatalf("leave: %v", err)
		}
		// A plain member may leave too.
		if err := e.orgs.RemoveMember(ctx, member, org.ID, member.UserID); err != nil {
			t.Fatalf("member leaves: %v", err)
		}
		ms, err := e.orgs.ListMembers(ctx, second, org.ID)
		if err != nil || len(ms) != 1 || ms[0].UserID != second.UserID || ms[0].Role != storage.OrgRoleOwner {
			t.Fatalf("members %+v %v", ms, err)
		}
		_, _, err = e.orgs.Get(ctx, owner, org.ID)
		wantErr(t, "former member", err, users.ErrOrganizationNotFound)
		want := []string{users.EventOrgCreated, users.EventOrgMemberAdded, users.EventOrgMemberAdded,
			users.EventOrgMemberRoleChanged, users.EventOrgMemberRemoved, users.EventOrgMemberRemoved}
		if got := e.events(); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
	})
}

func TestOrganizationLimits(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newOrgEnv(t, open, users.Config{MaxOrgMembers: 2, MaxOrgsPerUser: 2})
		ctx := t.Context()
		a, b, c := e.user("a@example.com"), e.user("b@example.com"), e.user("c@example.com")
		org := e.create(a, "One", "one")
		e.add(a, org.ID, b, storage.OrgRoleMember)
		_, err := e.orgs.AddMember(ctx, a, org.ID, users.AddMemberInput{UserID: c.UserID})
		wantErr(t, "third member", err, users.ErrOrgMemberLimit)

		e.create(a, "Two", "two")
		_, err = e.orgs.Create(ctx, a.UserID, users.CreateOrgInput{Name: "Three"})
		wantErr(t, "third organization", err, users.ErrOrgLimitReached)
		two := e.create(c, "C's", "cs")
		_, err = e.orgs.AddMember(ctx, c, two.ID, users.AddMemberInput{UserID: a.UserID})
		wantErr(t, "adding a user already in the maximum", err, users.ErrOrgLimitReached)
	})
}

func TestOrganizationUpdateAndDelete(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newOrgEnv(t, open, users.Config{})
		ctx := t.Context()
		owner := e.user("owner@example.com")
		org := e.create(owner, "Acme", "acme")
		e.create(owner, "Beta", "beta")

		_, err := e.orgs.Update(ctx, owner, org.ID, users.UpdateOrgInput{Slug: new("beta")})
		wantErr(t, "taken slug", err, users.ErrOrgSlugTaken)
		_, err = e.orgs.Update(ctx, owner, org.ID, users.UpdateOrgInput{Slug: new("no spaces")})
		wantField(t, "bad slug", err, "slug")
		md := json.RawMessage(`{"tier":"gold"}`)
		got, err := e.orgs.Update(ctx, owner, org.ID, users.UpdateOrgInput{Name: new("Acme"), Metadata: &md})
		if err != nil || got.Name != "Acme" || string(got.Metadata) != `{"tier":"gold"}` {
			t.Fatalf("update %+v %v", got, err)
		}
		if _, err := e.orgs.Update(ctx, owner, org.ID, users.UpdateOrgInput{Name: new("Acme")}); err != nil {
			t.Fatalf("no-op update: %v", err)
		}

		// An agent that is not revoked keeps the organization alive.
		ag := &storage.Agent{ID: "agt_org", Type: storage.AgentAutonomous, Name: "bot", OwnerUserID: &owner.UserID,
			Status: storage.AgentSuspended, OrganizationID: &org.ID}
		if err := e.store.Agents().Create(ctx, ag); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "delete with a live agent", e.orgs.Delete(ctx, owner, org.ID), users.ErrOrgHasAgents)
		if err := e.store.Agents().SetStatus(ctx, ag.ID, storage.AgentRevoked, ag.CreatedAt); err != nil {
			t.Fatal(err)
		}
		if err := e.orgs.Delete(ctx, owner, org.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, _, err = e.orgs.Get(ctx, owner, org.ID)
		wantErr(t, "get after delete", err, users.ErrOrganizationNotFound)
		if kept, err := e.store.Agents().Get(ctx, ag.ID); err != nil || kept.OrganizationID != nil {
			t.Fatalf("revoked agent after delete: %+v %v", kept, err)
		}
		want := []string{users.EventOrgCreated, users.EventOrgCreated, users.EventOrgUpdated, users.EventOrgDeleted}
		if got := e.events(); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
	})
}

// Two owners leaving at once: exactly one may go, on PostgreSQL too (the
// organization's row lock serializes the owner count and the delete).
func TestOrganizationOwnersLeavingConcurrently(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newOrgEnv(t, open, users.Config{})
		ctx := t.Context()
		for i := range 5 {
			a, b := e.user(fmt.Sprintf("a%d@example.com", i)), e.user(fmt.Sprintf("b%d@example.com", i))
			org := e.create(a, "Race", "")
			e.add(a, org.ID, b, storage.OrgRoleOwner)
			errs := make(chan error, 2)
			var wg sync.WaitGroup
			for _, who := range []users.OrgActor{a, b} {
				wg.Go(func() { errs <- e.orgs.RemoveMember(ctx, who, org.ID, who.UserID) })
			}
			wg.Wait()
			close(errs)
			var ok, last int
			for err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, users.ErrLastOwner):
					last++
				default:
					t.Fatalf("leave: %v", err)
				}
			}
			if ok != 1 || last != 1 {
				t.Fatalf("round %d: %d left, %d refused as last owner; want 1 and 1", i, ok, last)
			}
		}
	})
}
