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
	{"RecordFailedLogin", testUserRecordFailedLogin},
	{"RecordFailedLoginNotFound", testUserRecordFailedLoginNotFound},
	{"ResetFailedLogins", testUserResetFailedLogins},
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
	if got.FailedLogins != 0 || got.LockedUntil != nil {
		t.Fatalf("new user has failed logins %d, lock %v", got.FailedLogins, got.LockedUntil)
	}

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
	_, _, err := s.Users().RecordFailedLogin(ctx, u.ID, now(), 5, time.Minute)
	must(t, "record failed login", err)

	u.Email = newID("new") + "@example.com"
	u.Name = "Renamed"
	u.EmailVerified = true
	u.Image = new("https://example.com/new.png")
	u.UpdatedAt = u.UpdatedAt.Add(time.Hour)
	must(t, "update", s.Users().Update(ctx, u))

	got, err := s.Users().Get(ctx, u.ID)
	must(t, "get", err)
	u.FailedLogins = 1 // Update must not touch the lockout counter
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

func testUserRecordFailedLogin(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	const threshold, lockFor = 3, 15 * time.Minute
	t0 := now()
	lockedUntil := t0.Add(lockFor)
	record := func(at time.Time) (int, *time.Time) {
		t.Helper()
		n, lock, err := s.Users().RecordFailedLogin(ctx, u.ID, at, threshold, lockFor)
		must(t, "record failed login", err)
		return n, lock
	}
	steps := []struct {
		name      string
		at        time.Time
		wantCount int
		wantLock  *time.Time
	}{
		{"first", t0, 1, nil},
		{"second", t0, 2, nil},
		{"threshold locks", t0, 3, &lockedUntil},
		{"while locked: counted, lock kept", t0.Add(time.Minute), 4, &lockedUntil},
		{"lock expired: count restarts", lockedUntil, 1, nil},
		{"after restart", lockedUntil, 2, nil},
	}
	for _, st := range steps {
		n, lock := record(st.at)
		if n != st.wantCount {
			t.Fatalf("%s: count = %d, want %d", st.name, n, st.wantCount)
		}
		wantSame(t, st.name+": lock", lock, st.wantLock)
		if lock != nil {
			wantUTC(t, st.name, *lock)
		}
		got, err := s.Users().Get(ctx, u.ID)
		must(t, "get", err)
		if got.FailedLogins != st.wantCount {
			t.Fatalf("%s: stored count = %d, want %d", st.name, got.FailedLogins, st.wantCount)
		}
		wantSame(t, st.name+": stored lock", got.LockedUntil, st.wantLock)
	}
}

func testUserRecordFailedLoginNotFound(t *testing.T, s storage.Store) {
	_, _, err := s.Users().RecordFailedLogin(t.Context(), "missing", now(), 3, time.Minute)
	wantErr(t, "record failed login", err, storage.ErrNotFound)
}

func testUserResetFailedLogins(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	for range 2 {
		_, _, err := s.Users().RecordFailedLogin(ctx, u.ID, now(), 2, time.Hour)
		must(t, "record failed login", err)
	}
	must(t, "reset", s.Users().ResetFailedLogins(ctx, u.ID))
	got, err := s.Users().Get(ctx, u.ID)
	must(t, "get", err)
	if got.FailedLogins != 0 || got.LockedUntil != nil {
		t.Fatalf("after reset: count %d, lock %v; want 0, nil", got.FailedLogins, got.LockedUntil)
	}
	wantErr(t, "reset missing", s.Users().ResetFailedLogins(ctx, "missing"), storage.ErrNotFound)
}
