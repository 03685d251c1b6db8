package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var oauthTokenTests = []test{
	{"CreateGet", testOAuthTokenCreateGet},
	{"CreateStampsRequestedAt", testOAuthTokenCreateStampsRequestedAt},
	{"CreateDuplicate", testOAuthTokenCreateDuplicate},
	{"GetNotFound", testOAuthTokenGetNotFound},
	{"DataByteExact", testOAuthTokenDataByteExact},
	{"Delete", testOAuthTokenDelete},
	{"Deactivate", testOAuthTokenDeactivate},
	{"DeactivateRequest", testOAuthTokenDeactivateRequest},
	{"DeleteRequest", testOAuthTokenDeleteRequest},
	{"DeleteExpired", testOAuthTokenDeleteExpired},
	{"DeactivateSubjectAndClient", testOAuthTokenDeactivateSubjectAndClient},
}

func testOAuthTokenDeactivateSubjectAndClient(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c1, c2 := createOAuthClient(t, s), createOAuthClient(t, s)
	mk := func(client, subject string) *storage.OAuthToken {
		x := &storage.OAuthToken{Kind: storage.TokenKindAccess, Signature: randomHex(32), RequestID: newID("req"), ClientID: client,
			Subject: subject, Active: true, ExpiresAt: now().Add(time.Hour), Data: []byte(`{}`)}
		must(t, "create", s.OAuthTokens().Create(ctx, x))
		return x
	}
	aliceC1, aliceC2, bobC1, machineC2 := mk(c1.ID, "alice"), mk(c2.ID, "alice"), mk(c1.ID, "bob"), mk(c2.ID, "")
	active := func(x *storage.OAuthToken) bool {
		got, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
		must(t, "get", err)
		return got.Active
	}
	if n, err := s.OAuthTokens().DeactivateSubject(ctx, "alice"); err != nil || n != 2 {
		t.Fatalf("deactivate subject: %d %v", n, err)
	}
	if active(aliceC1) || active(aliceC2) || !active(bobC1) || !active(machineC2) {
		t.Fatal("DeactivateSubject touched the wrong rows")
	}
	if n, err := s.OAuthTokens().DeactivateSubject(ctx, ""); err != nil || n != 0 || !active(machineC2) {
		t.Fatalf("an empty subject deactivated %d rows (%v)", n, err)
	}
	if n, err := s.OAuthTokens().DeactivateClient(ctx, c2.ID); err != nil || n != 1 {
		t.Fatalf("deactivate client: %d %v", n, err)
	}
	if active(machineC2) || !active(bobC1) {
		t.Fatal("DeactivateClient touched the wrong rows")
	}
}

func testOAuthTokenCreateGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	requestID := newID("req")
	kinds := []string{storage.TokenKindCode, storage.TokenKindAccess, storage.TokenKindRefresh,
		storage.TokenKindPKCE, storage.TokenKindOIDC}
	for i, kind := range kinds {
		x := &storage.OAuthToken{Kind: kind, Signature: randomHex(32), RequestID: requestID, ClientID: c.ID,
			Subject: "usr_1", Active: i%2 == 0, RequestedAt: now().Add(-time.Minute), ExpiresAt: now().Add(time.Hour),
			Data: []byte(`{"kind":"` + kind + `"}`)}
		if kind == storage.TokenKindAccess {
			x.Subject = "" // client_credentials
		}
		must(t, "create "+kind, s.OAuthTokens().Create(ctx, x))
		// Get returns the row whatever its Active flag.
		got, err := s.OAuthTokens().Get(ctx, kind, x.Signature)
		must(t, "get "+kind, err)
		wantSame(t, "get "+kind, got, x)
		wantUTC(t, "get "+kind, got.RequestedAt, got.ExpiresAt)
	}
}

func testOAuthTokenCreateStampsRequestedAt(t *testing.T, s storage.Store) {
	c := createOAuthClient(t, s)
	before := now()
	x := &storage.OAuthToken{Kind: storage.TokenKindCode, Signature: randomHex(32), RequestID: newID("req"),
		ClientID: c.ID, Active: true, ExpiresAt: now().Add(time.Minute), Data: []byte(`{}`)}
	must(t, "create", s.OAuthTokens().Create(t.Context(), x))
	if x.RequestedAt.Before(before) {
		t.Fatalf("create left RequestedAt %v, want >= %v", x.RequestedAt, before)
	}
	got, err := s.OAuthTokens().Get(t.Context(), x.Kind, x.Signature)
	must(t, "get", err)
	wantSame(t, "get", got, x)
}

func testOAuthTokenCreateDuplicate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	x := createOAuthToken(t, s, c.ID, storage.TokenKindCode, newID("req"), now().Add(time.Minute))
	dup := *x
	dup.RequestID = newID("req")
	wantErr(t, "create duplicate (kind, signature)", s.OAuthTokens().Create(ctx, &dup), storage.ErrAlreadyExists)

	// The key is the pair: the same signature under another kind is another row.
	other := *x
	other.Kind = storage.TokenKindPKCE
	must(t, "create same signature, other kind", s.OAuthTokens().Create(ctx, &other))
	got, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
	must(t, "get", err)
	wantSame(t, "first row unchanged", got, x)
}

func testOAuthTokenGetNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	x := createOAuthToken(t, s, createOAuthClient(t, s).ID, storage.TokenKindCode, newID("req"), now().Add(time.Minute))
	_, err := s.OAuthTokens().Get(ctx, storage.TokenKindCode, randomHex(32))
	wantErr(t, "get unknown signature", err, storage.ErrNotFound)
	_, err = s.OAuthTokens().Get(ctx, storage.TokenKindAccess, x.Signature)
	wantErr(t, "get signature under another kind", err, storage.ErrNotFound)
}

func testOAuthTokenDataByteExact(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	for _, data := range []string{
		"{\"z\": 1,  \"a\" :[ true ,null]}\n",
		`{"form":{"state":["é 日本 😀"]},"session":{"\u0000":"\ud83d\ude00"}}`,
		"",
	} {
		x := &storage.OAuthToken{Kind: storage.TokenKindAccess, Signature: randomHex(32), RequestID: newID("req"),
			ClientID: c.ID, Active: true, RequestedAt: now(), ExpiresAt: now().Add(time.Hour), Data: []byte(data)}
		must(t, "create", s.OAuthTokens().Create(ctx, x))
		got, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
		must(t, "get", err)
		if !bytes.Equal(got.Data, []byte(data)) {
			t.Fatalf("data = %q, want %q", got.Data, data)
		}
	}
}

func testOAuthTokenDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	x := createOAuthToken(t, s, createOAuthClient(t, s).ID, storage.TokenKindRefresh, newID("req"), now().Add(time.Hour))
	wantErr(t, "delete under another kind", s.OAuthTokens().Delete(ctx, storage.TokenKindAccess, x.Signature), storage.ErrNotFound)
	must(t, "delete", s.OAuthTokens().Delete(ctx, x.Kind, x.Signature))
	_, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
	wantErr(t, "get deleted", err, storage.ErrNotFound)
	wantErr(t, "delete again", s.OAuthTokens().Delete(ctx, x.Kind, x.Signature), storage.ErrNotFound)
}

func testOAuthTokenDeactivate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	x := createOAuthToken(t, s, c.ID, storage.TokenKindCode, newID("req"), now().Add(time.Minute))
	sibling := createOAuthToken(t, s, c.ID, storage.TokenKindCode, x.RequestID, now().Add(time.Minute))

	changed, err := s.OAuthTokens().Deactivate(ctx, x.Kind, x.Signature)
	must(t, "deactivate", err)
	if !changed {
		t.Fatal("deactivate of an active row reported false")
	}
	got, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
	must(t, "get deactivated", err)
	x.Active = false
	wantSame(t, "deactivated row", got, x)

	changed, err = s.OAuthTokens().Deactivate(ctx, x.Kind, x.Signature)
	must(t, "deactivate again", err)
	if changed {
		t.Fatal("deactivate of an inactive row reported true")
	}
	// An unknown row was not active either.
	changed, err = s.OAuthTokens().Deactivate(ctx, x.Kind, randomHex(32))
	must(t, "deactivate unknown", err)
	if changed {
		t.Fatal("deactivate of an unknown row reported true")
	}
	got, err = s.OAuthTokens().Get(ctx, sibling.Kind, sibling.Signature)
	must(t, "get sibling", err)
	wantSame(t, "row of the same request untouched", got, sibling)
}

// requestFixture is one grant's rows plus rows that share its kind or its
// request but not both, which bulk operations must leave alone.
type requestFixture struct {
	requestID  string
	access     []*storage.OAuthToken // kind access in the request
	bystanders []*storage.OAuthToken // everything else
}

func newRequestFixture(t *testing.T, s storage.Store) requestFixture {
	c := createOAuthClient(t, s)
	exp := now().Add(time.Hour)
	f := requestFixture{requestID: newID("req")}
	for range 2 {
		f.access = append(f.access, createOAuthToken(t, s, c.ID, storage.TokenKindAccess, f.requestID, exp))
	}
	f.bystanders = []*storage.OAuthToken{
		createOAuthToken(t, s, c.ID, storage.TokenKindRefresh, f.requestID, exp),
		createOAuthToken(t, s, c.ID, storage.TokenKindCode, f.requestID, exp),
		createOAuthToken(t, s, c.ID, storage.TokenKindAccess, newID("req"), exp),
	}
	return f
}

func (f requestFixture) wantBystandersUntouched(t *testing.T, s storage.Store) {
	t.Helper()
	for _, x := range f.bystanders {
		got, err := s.OAuthTokens().Get(t.Context(), x.Kind, x.Signature)
		must(t, "get "+x.Kind+" bystander", err)
		wantSame(t, x.Kind+" bystander", got, x)
	}
}

func testOAuthTokenDeactivateRequest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newRequestFixture(t, s)
	// One row is inactive already: it is not counted.
	_, err := s.OAuthTokens().Deactivate(ctx, storage.TokenKindAccess, f.access[0].Signature)
	must(t, "deactivate one", err)

	n, err := s.OAuthTokens().DeactivateRequest(ctx, storage.TokenKindAccess, f.requestID)
	must(t, "deactivate request", err)
	if n != 1 {
		t.Fatalf("deactivate request changed %d rows, want 1", n)
	}
	for _, x := range f.access {
		got, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
		must(t, "get", err)
		if got.Active {
			t.Fatalf("access token %s still active", x.Signature)
		}
	}
	f.wantBystandersUntouched(t, s)

	n, err = s.OAuthTokens().DeactivateRequest(ctx, storage.TokenKindAccess, f.requestID)
	must(t, "deactivate request again", err)
	if n != 0 {
		t.Fatalf("second deactivate request changed %d rows, want 0", n)
	}
}

func testOAuthTokenDeleteRequest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newRequestFixture(t, s)
	n, err := s.OAuthTokens().DeleteRequest(ctx, storage.TokenKindAccess, f.requestID)
	must(t, "delete request", err)
	if n != len(f.access) {
		t.Fatalf("delete request removed %d rows, want %d", n, len(f.access))
	}
	for _, x := range f.access {
		_, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
		wantErr(t, "get deleted", err, storage.ErrNotFound)
	}
	f.wantBystandersUntouched(t, s)

	n, err = s.OAuthTokens().DeleteRequest(ctx, storage.TokenKindAccess, f.requestID)
	must(t, "delete request again", err)
	if n != 0 {
		t.Fatalf("second delete request removed %d rows, want 0", n)
	}
}

func testOAuthTokenDeleteExpired(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	at := now()
	expired := []*storage.OAuthToken{
		createOAuthToken(t, s, c.ID, storage.TokenKindCode, newID("req"), at.Add(-time.Hour)),
		createOAuthToken(t, s, c.ID, storage.TokenKindRefresh, newID("req"), at), // expiring exactly now counts
	}
	live := createOAuthToken(t, s, c.ID, storage.TokenKindAccess, newID("req"), at.Add(time.Millisecond))

	n, err := s.OAuthTokens().DeleteExpired(ctx, at)
	must(t, "delete expired", err)
	if n != len(expired) {
		t.Fatalf("delete expired removed %d, want %d", n, len(expired))
	}
	for _, x := range expired {
		_, err := s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
		wantErr(t, "get expired", err, storage.ErrNotFound)
	}
	_, err = s.OAuthTokens().Get(ctx, live.Kind, live.Signature)
	must(t, "live token survives", err)
}
