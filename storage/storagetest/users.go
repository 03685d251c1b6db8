package storagetest

import (
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var userTests = []test{
	{"CreateGet", testUserCreateGet},
	{"CreateStampsZeroTimes", testUserCreateStampsZeroTimes},
	{"CreateDuplicateID", testUserCreateDuplicateID},
	{"CreateDuplicateEmailAnyCase", testUserCreateDuplicateEmail},
	{"GetNotFound", testUserGetNotFound},
	{"GetByEmailAnyCase", testUserGetByEmail},
	{"Update", testUserUpdate},
	{"UpdateNotFound", testUserUpdateNotFound},
	{"UpdateDuplicateEmail", testUserUpdateDuplicateEmail},
	{"DeleteCascades", testUserDeleteCascades},
	{"DeleteNotFound", testUserDeleteNotFound},
	{"List", testUserList},
}

func testUserCreateGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	created := now().Add(-time.Hour)
	u := &storage.User{ID: newID("usr"), Email: "ada@example.com", Name: "Ada Lovelace", EmailVerified: true,
		Image: new("https://example.com/ada.png"), CreatedAt: created, UpdatedAt: created.Add(time.Minute)}
	must(t, "create", s.Users().Create(ctx, u))

	got, err := s.Users().Get(ctx, u.ID)
	must(t, "get", err)
	wantSame(t, "get", got, u)
	wantUTC(t, "get", got.CreatedAt, got.UpdatedAt)

	// The zero values of the optional fields round-trip too.
	plain := &storage.User{ID: newID("usr"), Email: "plain@example.com", CreatedAt: created, UpdatedAt: created}
	must(t, "create plain", s.Users().Create(ctx, plain))
	got, err = s.Users().Get(ctx, plain.ID)
	must(t, "get plain", err)
	wantSame(t, "get plain", got, plain)
}

func testUserCreateStampsZeroTimes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	before := now()
	u := &storage.User{ID: newID("usr"), Email: "stamp@example.com"}
	must(t, "create", s.Users().Create(ctx, u))
	if u.CreatedAt.Before(before) || u.UpdatedAt.Before(before) {
		t.Fatalf("create left times %v / %v, want >= %v", u.CreatedAt, u.UpdatedAt, before)
	}
	got, err := s.Users().Get(ctx, u.ID)
	must(t, "get", err)
	wantSame(t, "get", got, u)
}

func testUserCreateDuplicateID(t *testing.T, s storage.Store) {
	u := createUser(t, s)
	dup := &storage.User{ID: u.ID, Email: "other@example.com"}
	wantErr(t, "create duplicate id", s.Users().Create(t.Context(), dup), storage.ErrAlreadyExists)
}

func testUserCreateDuplicateEmail(t *testing.T, s storage.Store) {
	u := createUser(t, s)
	dup := &storage.User{ID: newID("usr"), Email: strings.ToUpper(u.Email)}
	wantErr(t, "create duplicate email", s.Users().Create(t.Context(), dup), storage.ErrAlreadyExists)
}

func testUserGetNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.Users().Get(ctx, "missing")
	wantErr(t, "get", err, storage.ErrNotFound)
	_, err = s.Users().GetByEmail(ctx, "missing@example.com")
	wantErr(t, "get by email", err, storage.ErrNotFound)
}

func testUserGetByEmail(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := &storage.User{ID: newID("usr"), Email: "Grace.Hopper@Example.com", CreatedAt: now(), UpdatedAt: now()}
	must(t, "create", s.Users().Create(ctx, u))
	for _, email := range []string{"Grace.Hopper@Example.com", "grace.hopper@example.com", "GRACE.HOPPER@EXAMPLE.COM"} {
		got, err := s.Users().GetByEmail(ctx, email)
		must(t, "get by email "+email, err)
		wantSame(t, "get by email "+email, got, u)
	}
}

func testUserUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	u.Email = newID("new") + "@example.com"
	u.Name = "Renamed"
	u.EmailVerified = true
	u.Image = new("https://example.com/new.png")
	u.UpdatedAt = u.UpdatedAt.Add(time.Hour)
	must(t, "update", s.Users().Update(ctx, u))

	got, err := s.Users().Get(ctx, u.ID)
	must(t, "get", err)
	wantSame(t, "after update", got, u)

	u.Image = nil
	must(t, "clear image", s.Users().Update(ctx, u))
	got, err = s.Users().Get(ctx, u.ID)
	must(t, "get", err)
	if got.Image != nil {
		t.Fatalf("image = %q, want nil", *got.Image)
	}
}

func testUserUpdateNotFound(t *testing.T, s storage.Store) {
	u := &storage.User{ID: "missing", Email: "missing@example.com", UpdatedAt: now()}
	wantErr(t, "update", s.Users().Update(t.Context(), u), storage.ErrNotFound)
}

func testUserUpdateDuplicateEmail(t *testing.T, s storage.Store) {
	a, b := createUser(t, s), createUser(t, s)
	b.Email = strings.ToUpper(a.Email)
	wantErr(t, "update to taken email", s.Users().Update(t.Context(), b), storage.ErrAlreadyExists)
}

func testUserDeleteCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	exp := now().Add(time.Hour)
	acc := createAccount(t, s, u.ID, "github")
	ses := createSession(t, s, u.ID, exp)
	ver := createVerification(t, s, u, storage.PurposePasswordReset, exp)
	otherAcc := createAccount(t, s, other.ID, "github")
	otherSes := createSession(t, s, other.ID, exp)

	must(t, "delete", s.Users().Delete(ctx, u.ID))

	_, err := s.Users().Get(ctx, u.ID)
	wantErr(t, "get deleted user", err, storage.ErrNotFound)
	_, err = s.Accounts().GetByProvider(ctx, acc.ProviderID, acc.ProviderAccountID)
	wantErr(t, "account of deleted user", err, storage.ErrNotFound)
	_, err = s.Sessions().Get(ctx, ses.ID)
	wantErr(t, "session of deleted user", err, storage.ErrNotFound)
	_, err = s.Verifications().Consume(ctx, ver.Purpose, ver.TokenHash, now())
	wantErr(t, "verification of deleted user", err, storage.ErrNotFound)

	_, err = s.Accounts().GetByProvider(ctx, otherAcc.ProviderID, otherAcc.ProviderAccountID)
	must(t, "other user's account survives", err)
	_, err = s.Sessions().Get(ctx, otherSes.ID)
	must(t, "other user's session survives", err)
}

func testUserDeleteNotFound(t *testing.T, s storage.Store) {
	wantErr(t, "delete", s.Users().Delete(t.Context(), "missing"), storage.ErrNotFound)
}

func testUserList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now().Add(-time.Hour)
	// Created out of order; b and c share a timestamp and sort by id.
	spec := []struct {
		id string
		at time.Time
	}{{"usr_d", t0.Add(2 * time.Second)}, {"usr_c", t0.Add(time.Second)}, {"usr_a", t0}, {"usr_b", t0.Add(time.Second)}}
	for _, x := range spec {
		u := &storage.User{ID: x.id, Email: x.id + "@example.com", CreatedAt: x.at, UpdatedAt: x.at}
		must(t, "create", s.Users().Create(ctx, u))
	}
	ids := func(us []storage.User) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = u.ID
		}
		return out
	}
	tests := []struct {
		name          string
		limit, offset int
		want          []string
	}{
		{"all", 10, 0, []string{"usr_a", "usr_b", "usr_c", "usr_d"}},
		{"page", 2, 1, []string{"usr_b", "usr_c"}},
		{"past the end", 10, 4, []string{}},
		{"no limit", 0, 0, []string{"usr_a", "usr_b", "usr_c", "usr_d"}},
	}
	for _, tc := range tests {
		got, err := s.Users().List(ctx, tc.limit, tc.offset)
		must(t, "list "+tc.name, err)
		wantSame(t, "list "+tc.name, ids(got), tc.want)
	}
}
