package storagetest

import (
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var accountTests = []test{
	{"CreateGetByProvider", testAccountCreateGet},
	{"CreateDuplicateProviderAccount", testAccountCreateDuplicate},
	{"GetByProviderNotFound", testAccountGetNotFound},
	{"GetCredential", testAccountGetCredential},
	{"ListByUser", testAccountListByUser},
	{"UpdatePassword", testAccountUpdatePassword},
	{"ReplacePassword", testAccountReplacePassword},
	{"Delete", testAccountDelete},
}

func testAccountCreateGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := &storage.Account{ID: newID("acc"), UserID: u.ID, ProviderID: "google", ProviderAccountID: "1234567890",
		AccessToken: new("sealed-access"), RefreshToken: new("sealed-refresh"),
		CreatedAt: now().Add(-time.Minute), UpdatedAt: now()}
	must(t, "create", s.Accounts().Create(ctx, a))
	got, err := s.Accounts().GetByProvider(ctx, "google", "1234567890")
	must(t, "get by provider", err)
	wantSame(t, "get by provider", got, a)
	wantUTC(t, "get by provider", got.CreatedAt, got.UpdatedAt)

	stamped := &storage.Account{ID: newID("acc"), UserID: u.ID, ProviderID: "github", ProviderAccountID: "42"}
	must(t, "create with zero times", s.Accounts().Create(ctx, stamped))
	if stamped.CreatedAt.IsZero() || stamped.UpdatedAt.IsZero() {
		t.Fatal("create left zero times")
	}
	got, err = s.Accounts().GetByProvider(ctx, "github", "42")
	must(t, "get stamped", err)
	wantSame(t, "get stamped", got, stamped)
}

func testAccountCreateDuplicate(t *testing.T, s storage.Store) {
	a := createAccount(t, s, createUser(t, s).ID, "github")
	other := createUser(t, s)
	dup := &storage.Account{ID: newID("acc"), UserID: other.ID, ProviderID: a.ProviderID, ProviderAccountID: a.ProviderAccountID}
	wantErr(t, "create duplicate", s.Accounts().Create(t.Context(), dup), storage.ErrAlreadyExists)
	dupID := &storage.Account{ID: a.ID, UserID: other.ID, ProviderID: "gitlab", ProviderAccountID: "7"}
	wantErr(t, "create duplicate id", s.Accounts().Create(t.Context(), dupID), storage.ErrAlreadyExists)
}

func testAccountGetNotFound(t *testing.T, s storage.Store) {
	a := createAccount(t, s, createUser(t, s).ID, "github")
	_, err := s.Accounts().GetByProvider(t.Context(), "gitlab", a.ProviderAccountID)
	wantErr(t, "get by provider", err, storage.ErrNotFound)
}

func testAccountGetCredential(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	createAccount(t, s, u.ID, "github")
	cred := createAccount(t, s, u.ID, storage.ProviderCredential)
	got, err := s.Accounts().GetCredential(ctx, u.ID)
	must(t, "get credential", err)
	wantSame(t, "get credential", got, cred)

	social := createUser(t, s)
	createAccount(t, s, social.ID, "github")
	_, err = s.Accounts().GetCredential(ctx, social.ID)
	wantErr(t, "get credential of social-only user", err, storage.ErrNotFound)
}

func testAccountListByUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	first := createAccount(t, s, u.ID, "github")
	second := &storage.Account{ID: newID("acc"), UserID: u.ID, ProviderID: "google", ProviderAccountID: "g-1",
		CreatedAt: first.CreatedAt.Add(time.Second), UpdatedAt: first.CreatedAt.Add(time.Second)}
	must(t, "create second", s.Accounts().Create(ctx, second))
	createAccount(t, s, other.ID, "github")

	got, err := s.Accounts().ListByUser(ctx, u.ID)
	must(t, "list", err)
	wantSame(t, "list", got, []storage.Account{*first, *second})

	got, err = s.Accounts().ListByUser(ctx, "missing")
	must(t, "list missing", err)
	if len(got) != 0 {
		t.Fatalf("list of unknown user returned %d accounts", len(got))
	}
}

func testAccountUpdatePassword(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	cred := createAccount(t, s, u.ID, storage.ProviderCredential)
	at := now().Add(time.Minute)
	must(t, "update password", s.Accounts().UpdatePassword(ctx, u.ID, "hash-2", at))
	got, err := s.Accounts().GetCredential(ctx, u.ID)
	must(t, "get credential", err)
	cred.Password, cred.UpdatedAt = new("hash-2"), at
	wantSame(t, "after update", got, cred)

	social := createUser(t, s)
	createAccount(t, s, social.ID, "github")
	wantErr(t, "update password without credential",
		s.Accounts().UpdatePassword(ctx, social.ID, "hash", at), storage.ErrNotFound)
}

func testAccountReplacePassword(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	createAccount(t, s, u.ID, storage.ProviderCredential) // password "hash-1"
	at := now()

	changed, err := s.Accounts().ReplacePassword(ctx, u.ID, "stale", "hash-2", at)
	must(t, "replace with stale old", err)
	if changed {
		t.Fatal("replace with a stale old hash reported a change")
	}
	changed, err = s.Accounts().ReplacePassword(ctx, u.ID, "hash-1", "hash-2", at)
	must(t, "replace", err)
	if !changed {
		t.Fatal("replace with the current hash reported no change")
	}
	got, err := s.Accounts().GetCredential(ctx, u.ID)
	must(t, "get credential", err)
	wantSame(t, "password", got.Password, new("hash-2"))

	changed, err = s.Accounts().ReplacePassword(ctx, "missing", "hash-1", "hash-2", at)
	must(t, "replace for unknown user", err)
	if changed {
		t.Fatal("replace for an unknown user reported a change")
	}
}

func testAccountDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := createAccount(t, s, createUser(t, s).ID, "github")
	must(t, "delete", s.Accounts().Delete(ctx, a.ID))
	_, err := s.Accounts().GetByProvider(ctx, a.ProviderID, a.ProviderAccountID)
	wantErr(t, "get deleted", err, storage.ErrNotFound)
	wantErr(t, "delete again", s.Accounts().Delete(ctx, a.ID), storage.ErrNotFound)
}
