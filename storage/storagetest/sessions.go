package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var sessionTests = []test{
	{"CreateGet", testSessionCreateGet},
	{"CreateDuplicateTokenHash", testSessionCreateDuplicate},
	{"GetNotFound", testSessionGetNotFound},
	{"ListByUserNewestFirst", testSessionListByUser},
	{"Touch", testSessionTouch},
	{"Delete", testSessionDelete},
	{"DeleteByUser", testSessionDeleteByUser},
	{"DeleteExpired", testSessionDeleteExpired},
}

func testSessionCreateGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	for _, persistent := range []bool{true, false} {
		x := &storage.Session{ID: newID("ses"), TokenHash: randomHex(32), UserID: u.ID,
			ExpiresAt: now().Add(24 * time.Hour), CreatedAt: now(), UpdatedAt: now(),
			IPAddress: "2001:db8::1", UserAgent: "Mozilla/5.0", Persistent: persistent, Method: "passkey+totp"}
		must(t, "create", s.Sessions().Create(ctx, x))

		got, err := s.Sessions().GetByTokenHash(ctx, x.TokenHash)
		must(t, "get by token hash", err)
		wantSame(t, "get by token hash", got, x)
		wantUTC(t, "get by token hash", got.ExpiresAt, got.CreatedAt, got.UpdatedAt)

		got, err = s.Sessions().Get(ctx, x.ID)
		must(t, "get", err)
		wantSame(t, "get", got, x)
	}
}

func testSessionCreateDuplicate(t *testing.T, s storage.Store) {
	u := createUser(t, s)
	x := createSession(t, s, u.ID, now().Add(time.Hour))
	dup := &storage.Session{ID: newID("ses"), TokenHash: x.TokenHash, UserID: u.ID, ExpiresAt: x.ExpiresAt}
	wantErr(t, "create duplicate token hash", s.Sessions().Create(t.Context(), dup), storage.ErrAlreadyExists)
	dupID := &storage.Session{ID: x.ID, TokenHash: randomHex(32), UserID: u.ID, ExpiresAt: x.ExpiresAt}
	wantErr(t, "create duplicate id", s.Sessions().Create(t.Context(), dupID), storage.ErrAlreadyExists)
}

func testSessionGetNotFound(t *testing.T, s storage.Store) {
	_, err := s.Sessions().Get(t.Context(), "missing")
	wantErr(t, "get", err, storage.ErrNotFound)
	_, err = s.Sessions().GetByTokenHash(t.Context(), randomHex(32))
	wantErr(t, "get by token hash", err, storage.ErrNotFound)
}

func testSessionListByUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	t0 := now().Add(-time.Hour)
	var want []storage.Session
	for i := range 3 {
		x := &storage.Session{ID: newID("ses"), TokenHash: randomHex(32), UserID: u.ID,
			ExpiresAt: now().Add(time.Hour), CreatedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0}
		must(t, "create", s.Sessions().Create(ctx, x))
		want = append([]storage.Session{*x}, want...)
	}
	createSession(t, s, other.ID, now().Add(time.Hour))

	got, err := s.Sessions().ListByUser(ctx, u.ID)
	must(t, "list", err)
	wantSame(t, "list", got, want)
}

func testSessionTouch(t *testing.T, s storage.Store) {
	ctx := t.Context()
	x := createSession(t, s, createUser(t, s).ID, now().Add(time.Hour))
	at := now().Add(time.Minute)
	x.ExpiresAt, x.UpdatedAt = at.Add(30*24*time.Hour), at
	must(t, "touch", s.Sessions().Touch(ctx, x.ID, x.ExpiresAt, at))
	got, err := s.Sessions().Get(ctx, x.ID)
	must(t, "get", err)
	wantSame(t, "after touch", got, x)
	wantErr(t, "touch missing", s.Sessions().Touch(ctx, "missing", at, at), storage.ErrNotFound)
}

func testSessionDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	x := createSession(t, s, createUser(t, s).ID, now().Add(time.Hour))
	must(t, "delete", s.Sessions().Delete(ctx, x.ID))
	_, err := s.Sessions().GetByTokenHash(ctx, x.TokenHash)
	wantErr(t, "get deleted", err, storage.ErrNotFound)
	wantErr(t, "delete again", s.Sessions().Delete(ctx, x.ID), storage.ErrNotFound)
}

func testSessionDeleteByUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	exp := now().Add(time.Hour)
	a, keep, b := createSession(t, s, u.ID, exp), createSession(t, s, u.ID, exp), createSession(t, s, u.ID, exp)
	others := createSession(t, s, other.ID, exp)

	hashes, err := s.Sessions().DeleteByUser(ctx, u.ID, keep.ID)
	must(t, "delete by user except one", err)
	slices.Sort(hashes)
	want := []string{a.TokenHash, b.TokenHash}
	slices.Sort(want)
	wantSame(t, "deleted hashes", hashes, want)

	_, err = s.Sessions().Get(ctx, keep.ID)
	must(t, "excepted session survives", err)
	_, err = s.Sessions().Get(ctx, others.ID)
	must(t, "other user's session survives", err)

	hashes, err = s.Sessions().DeleteByUser(ctx, u.ID, "")
	must(t, "delete by user", err)
	wantSame(t, "deleted hashes", hashes, []string{keep.TokenHash})

	hashes, err = s.Sessions().DeleteByUser(ctx, u.ID, "")
	must(t, "delete by user with none left", err)
	if len(hashes) != 0 {
		t.Fatalf("second delete returned %v", hashes)
	}
}

func testSessionDeleteExpired(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	at := now()
	createSession(t, s, u.ID, at.Add(-time.Hour))
	createSession(t, s, u.ID, at) // expiring exactly now counts as expired
	live := createSession(t, s, u.ID, at.Add(time.Millisecond))

	n, err := s.Sessions().DeleteExpired(ctx, at)
	must(t, "delete expired", err)
	if n != 2 {
		t.Fatalf("delete expired removed %d, want 2", n)
	}
	got, err := s.Sessions().ListByUser(ctx, u.ID)
	must(t, "list", err)
	if len(got) != 1 || got[0].ID != live.ID {
		t.Fatalf("left %d sessions, want only the live one", len(got))
	}
}
