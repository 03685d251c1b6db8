package storagetest

import (
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var oauthConsentTests = []test{
	{"DeleteByClient", testOAuthConsentDeleteByClient},
	{"PutGet", testOAuthConsentPutGet},
	{"PutSortsScopes", testOAuthConsentPutSortsScopes},
	{"PutReplaces", testOAuthConsentPutReplaces},
	{"PutInvalidScopeRefused", testOAuthConsentPutInvalidScope},
	{"GetNotFound", testOAuthConsentGetNotFound},
	{"ListByUser", testOAuthConsentListByUser},
	{"DeleteEveryResource", testOAuthConsentDelete},
	{"UserDeleteCascades", testOAuthConsentUserDeleteCascades},
}

func testOAuthConsentPutGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, c := createUser(t, s), createOAuthClient(t, s)
	created := now().Add(-time.Hour)
	consents := []*storage.OAuthConsent{
		{UserID: u.ID, ClientID: c.ID, Resource: "", Scopes: []string{"email", "openid", "profile"},
			CreatedAt: created, UpdatedAt: created.Add(time.Minute)},
		// Same pair, another resource: another row.
		{UserID: u.ID, ClientID: c.ID, Resource: "https://api.example/mcp", Scopes: []string{"tools:read"},
			CreatedAt: created, UpdatedAt: created},
		{UserID: u.ID, ClientID: c.ID, Resource: "https://api.example/none", Scopes: []string{},
			CreatedAt: created, UpdatedAt: created},
	}
	for _, x := range consents {
		must(t, "put "+x.Resource, s.OAuthConsents().Put(ctx, x))
	}
	for _, x := range consents {
		got, err := s.OAuthConsents().Get(ctx, u.ID, c.ID, x.Resource)
		must(t, "get "+x.Resource, err)
		wantSame(t, "get "+x.Resource, got, x)
		wantUTC(t, "get "+x.Resource, got.CreatedAt, got.UpdatedAt)
	}
}

func testOAuthConsentPutSortsScopes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, c := createUser(t, s), createOAuthClient(t, s)
	given := []string{"profile", "openid", "email", "openid", "Ärger", "offline_access"}
	x := &storage.OAuthConsent{UserID: u.ID, ClientID: c.ID, Scopes: given}
	must(t, "put", s.OAuthConsents().Put(ctx, x))
	want := []string{"email", "offline_access", "openid", "profile", "Ärger"}
	wantSame(t, "scopes after put", x.Scopes, want)
	wantSame(t, "caller's slice untouched", given, []string{"profile", "openid", "email", "openid", "Ärger", "offline_access"})
	got, err := s.OAuthConsents().Get(ctx, u.ID, c.ID, "")
	must(t, "get", err)
	wantSame(t, "stored scopes", got.Scopes, want)
}

func testOAuthConsentPutReplaces(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, c := createUser(t, s), createOAuthClient(t, s)
	first := putConsent(t, s, u.ID, c.ID, "https://api.example", "openid", "profile")

	second := &storage.OAuthConsent{UserID: u.ID, ClientID: c.ID, Resource: first.Resource,
		Scopes: []string{"email"}, CreatedAt: first.CreatedAt.Add(time.Hour), UpdatedAt: first.UpdatedAt.Add(time.Hour)}
	must(t, "put again", s.OAuthConsents().Put(ctx, second))
	// The row keeps when consent was first given, and Put says so.
	want := *second
	want.CreatedAt = first.CreatedAt
	wantSame(t, "put again", second, &want)

	got, err := s.OAuthConsents().Get(ctx, u.ID, c.ID, first.Resource)
	must(t, "get", err)
	wantSame(t, "replaced", got, &want)
	all, err := s.OAuthConsents().ListByUser(ctx, u.ID)
	must(t, "list", err)
	if len(all) != 1 {
		t.Fatalf("%d consents after replacing, want 1", len(all))
	}
}

// A scope is stored space-separated, so one that is empty or holds a space
// would not come back as given.
func testOAuthConsentPutInvalidScope(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, c := createUser(t, s), createOAuthClient(t, s)
	for _, scopes := range [][]string{{"openid", ""}, {"openid profile"}} {
		x := &storage.OAuthConsent{UserID: u.ID, ClientID: c.ID, Scopes: scopes}
		wantErr(t, "put scopes "+render(scopes), s.OAuthConsents().Put(ctx, x), storage.ErrInvalidValue)
	}
	_, err := s.OAuthConsents().Get(ctx, u.ID, c.ID, "")
	wantErr(t, "get after refused puts", err, storage.ErrNotFound)
}

func testOAuthConsentGetNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, c := createUser(t, s), createOAuthClient(t, s)
	putConsent(t, s, u.ID, c.ID, "https://api.example", "openid")
	_, err := s.OAuthConsents().Get(ctx, u.ID, c.ID, "")
	wantErr(t, "get another resource", err, storage.ErrNotFound)
	_, err = s.OAuthConsents().Get(ctx, "missing", c.ID, "https://api.example")
	wantErr(t, "get another user", err, storage.ErrNotFound)
}

func testOAuthConsentListByUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	a, b := createOAuthClient(t, s), createOAuthClient(t, s)
	t0 := now().Add(-time.Hour)
	put := func(userID, clientID, resource string, at time.Time) storage.OAuthConsent {
		x := &storage.OAuthConsent{UserID: userID, ClientID: clientID, Resource: resource,
			Scopes: []string{"openid"}, CreatedAt: at, UpdatedAt: at}
		must(t, "put", s.OAuthConsents().Put(ctx, x))
		return *x
	}
	newest := put(u.ID, a.ID, "", t0.Add(time.Minute))
	oldest := put(u.ID, b.ID, "https://api.example", t0)
	put(other.ID, a.ID, "", t0)

	got, err := s.OAuthConsents().ListByUser(ctx, u.ID)
	must(t, "list", err)
	wantSame(t, "list", got, []storage.OAuthConsent{oldest, newest})

	got, err = s.OAuthConsents().ListByUser(ctx, "missing")
	must(t, "list unknown user", err)
	if len(got) != 0 {
		t.Fatalf("unknown user has %d consents", len(got))
	}
}

func testOAuthConsentDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	c, otherClient := createOAuthClient(t, s), createOAuthClient(t, s)
	putConsent(t, s, u.ID, c.ID, "", "openid")
	putConsent(t, s, u.ID, c.ID, "https://api.example", "tools:read")
	keepClient := putConsent(t, s, u.ID, otherClient.ID, "", "openid")
	keepUser := putConsent(t, s, other.ID, c.ID, "", "openid")

	n, err := s.OAuthConsents().Delete(ctx, u.ID, c.ID)
	must(t, "delete", err)
	if n != 2 {
		t.Fatalf("delete removed %d consents, want 2", n)
	}
	got, err := s.OAuthConsents().ListByUser(ctx, u.ID)
	must(t, "list", err)
	wantSame(t, "consents left", got, []storage.OAuthConsent{*keepClient})
	_, err = s.OAuthConsents().Get(ctx, other.ID, c.ID, keepUser.Resource)
	must(t, "other user's consent survives", err)

	n, err = s.OAuthConsents().Delete(ctx, u.ID, c.ID)
	must(t, "delete again", err)
	if n != 0 {
		t.Fatalf("second delete removed %d consents, want 0", n)
	}
}

func testOAuthConsentUserDeleteCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	c := createOAuthClient(t, s)
	putConsent(t, s, u.ID, c.ID, "", "openid")
	putConsent(t, s, u.ID, c.ID, "https://api.example", "openid")
	kept := putConsent(t, s, other.ID, c.ID, "", "openid")

	must(t, "delete user", s.Users().Delete(ctx, u.ID))
	got, err := s.OAuthConsents().ListByUser(ctx, u.ID)
	must(t, "list", err)
	if len(got) != 0 {
		t.Fatalf("deleted user keeps %d consents", len(got))
	}
	_, err = s.OAuthConsents().Get(ctx, other.ID, c.ID, kept.Resource)
	must(t, "other user's consent survives", err)
	_, err = s.OAuthClients().Get(ctx, c.ID)
	must(t, "client survives", err)
}

func testOAuthConsentDeleteByClient(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u1, u2 := createUser(t, s), createUser(t, s)
	c1, c2 := createOAuthClient(t, s), createOAuthClient(t, s)
	for _, p := range [][2]string{{u1.ID, c1.ID}, {u2.ID, c1.ID}, {u1.ID, c2.ID}} {
		must(t, "put", s.OAuthConsents().Put(ctx, &storage.OAuthConsent{UserID: p[0], ClientID: p[1], Resource: "r", Scopes: []string{"mcp"}}))
	}
	if n, err := s.OAuthConsents().DeleteByClient(ctx, c1.ID); err != nil || n != 2 {
		t.Fatalf("delete by client: %d %v", n, err)
	}
	if _, err := s.OAuthConsents().Get(ctx, u1.ID, c2.ID, "r"); err != nil {
		t.Fatalf("another client's consent was deleted: %v", err)
	}
}
