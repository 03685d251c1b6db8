package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var oauthClientTests = []test{
	{"CreateGet", testOAuthClientCreateGet},
	{"CreateStampsZeroTimes", testOAuthClientCreateStampsZeroTimes},
	{"CreateDuplicateID", testOAuthClientCreateDuplicateID},
	{"GetNotFound", testOAuthClientGetNotFound},
	{"MetadataByteExact", testOAuthClientMetadataByteExact},
	{"Update", testOAuthClientUpdate},
	{"UpdateNotFound", testOAuthClientUpdateNotFound},
	{"DeleteCascades", testOAuthClientDeleteCascades},
	{"DeleteNotFound", testOAuthClientDeleteNotFound},
	{"List", testOAuthClientList},
}

func testOAuthClientCreateGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	created := now().Add(-time.Hour)
	clients := []*storage.OAuthClient{
		{ID: newID("cli"), SecretHash: randomHex(32), RegistrationTokenHash: randomHex(32),
			Source: storage.ClientSourceDynamic, Metadata: []byte(`{"client_name":"Dynamic"}`),
			CreatedAt: created, UpdatedAt: created.Add(time.Minute)},
		// A public client: no secret, no registration token.
		{ID: "https://app.example/client.json", Source: storage.ClientSourceMetadataDoc,
			Metadata: []byte(`{"token_endpoint_auth_method":"none"}`), CreatedAt: created, UpdatedAt: created},
	}
	for _, c := range clients {
		must(t, "create "+c.ID, s.OAuthClients().Create(ctx, c))
		got, err := s.OAuthClients().Get(ctx, c.ID)
		must(t, "get "+c.ID, err)
		wantSame(t, "get "+c.ID, got, c)
		wantUTC(t, "get "+c.ID, got.CreatedAt, got.UpdatedAt)
	}
}

func testOAuthClientCreateStampsZeroTimes(t *testing.T, s storage.Store) {
	before := now()
	c := &storage.OAuthClient{ID: newID("cli"), Source: storage.ClientSourcePreregistered, Metadata: []byte(`{}`)}
	must(t, "create", s.OAuthClients().Create(t.Context(), c))
	if c.CreatedAt.Before(before) || c.UpdatedAt.Before(before) {
		t.Fatalf("create left times %v / %v, want >= %v", c.CreatedAt, c.UpdatedAt, before)
	}
	got, err := s.OAuthClients().Get(t.Context(), c.ID)
	must(t, "get", err)
	wantSame(t, "get", got, c)
}

func testOAuthClientCreateDuplicateID(t *testing.T, s storage.Store) {
	c := createOAuthClient(t, s)
	dup := &storage.OAuthClient{ID: c.ID, Source: storage.ClientSourceDynamic, Metadata: []byte(`{}`)}
	wantErr(t, "create duplicate id", s.OAuthClients().Create(t.Context(), dup), storage.ErrAlreadyExists)
}

func testOAuthClientGetNotFound(t *testing.T, s storage.Store) {
	_, err := s.OAuthClients().Get(t.Context(), "missing")
	wantErr(t, "get", err, storage.ErrNotFound)
}

// testOAuthClientMetadataByteExact checks that metadata comes back as it
// went in, not re-encoded: authz may verify a signature over it, and
// RFC 7592 reads return what was registered.
func testOAuthClientMetadataByteExact(t *testing.T, s storage.Store) {
	ctx := t.Context()
	tests := []struct{ name, metadata string }{
		{"key order and spacing", "{\"z\": 1,  \"a\" :[ true ,null]}\n"},
		{"non-ASCII", `{"client_name":"Zoë's app — 日本語 😀","logo_uri":"https://exämple.com/ü.png"}`},
		{"escapes kept", `{"client_name":"\u00e9\u0000\ud83d\ude00","x":"a\\b\"c\t"}`},
		{"tabs and CRLF", "{\r\n\t\"a\": \"b\"\r\n}"},
		{"empty", ""},
	}
	for _, tc := range tests {
		c := &storage.OAuthClient{ID: newID("cli"), Source: storage.ClientSourceDynamic, Metadata: []byte(tc.metadata)}
		must(t, "create "+tc.name, s.OAuthClients().Create(ctx, c))
		got, err := s.OAuthClients().Get(ctx, c.ID)
		must(t, "get "+tc.name, err)
		if !bytes.Equal(got.Metadata, []byte(tc.metadata)) {
			t.Fatalf("%s: metadata = %q, want %q", tc.name, got.Metadata, tc.metadata)
		}
		// Update writes it as exactly.
		c.Metadata = []byte(tc.metadata + " ")
		must(t, "update "+tc.name, s.OAuthClients().Update(ctx, c))
		got, err = s.OAuthClients().Get(ctx, c.ID)
		must(t, "get after update "+tc.name, err)
		if !bytes.Equal(got.Metadata, c.Metadata) {
			t.Fatalf("%s: metadata after update = %q, want %q", tc.name, got.Metadata, c.Metadata)
		}
	}
}

func testOAuthClientUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	want := *c
	want.SecretHash = ""
	want.RegistrationTokenHash = randomHex(32)
	want.Metadata = []byte(`{"redirect_uris":["https://new.example/cb"]}`)
	want.UpdatedAt = c.UpdatedAt.Add(time.Hour)

	// Update writes only the fields it names: Source and CreatedAt stay.
	edited := want
	edited.Source = storage.ClientSourceDynamic
	edited.CreatedAt = c.CreatedAt.Add(time.Hour)
	must(t, "update", s.OAuthClients().Update(ctx, &edited))
	got, err := s.OAuthClients().Get(ctx, c.ID)
	must(t, "get", err)
	wantSame(t, "after update", got, &want)
}

func testOAuthClientUpdateNotFound(t *testing.T, s storage.Store) {
	c := &storage.OAuthClient{ID: "missing", Source: storage.ClientSourceDynamic, Metadata: []byte(`{}`), UpdatedAt: now()}
	wantErr(t, "update", s.OAuthClients().Update(t.Context(), c), storage.ErrNotFound)
}

func testOAuthClientDeleteCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c, other := createOAuthClient(t, s), createOAuthClient(t, s)
	u := createUser(t, s)
	exp := now().Add(time.Hour)
	code := createOAuthToken(t, s, c.ID, storage.TokenKindCode, newID("req"), exp)
	refresh := createOAuthToken(t, s, c.ID, storage.TokenKindRefresh, newID("req"), exp)
	putConsent(t, s, u.ID, c.ID, "", "openid")
	otherToken := createOAuthToken(t, s, other.ID, storage.TokenKindAccess, newID("req"), exp)
	putConsent(t, s, u.ID, other.ID, "", "openid")

	must(t, "delete", s.OAuthClients().Delete(ctx, c.ID))

	_, err := s.OAuthClients().Get(ctx, c.ID)
	wantErr(t, "get deleted client", err, storage.ErrNotFound)
	for _, x := range []*storage.OAuthToken{code, refresh} {
		_, err = s.OAuthTokens().Get(ctx, x.Kind, x.Signature)
		wantErr(t, x.Kind+" token of deleted client", err, storage.ErrNotFound)
	}
	_, err = s.OAuthConsents().Get(ctx, u.ID, c.ID, "")
	wantErr(t, "consent to deleted client", err, storage.ErrNotFound)

	_, err = s.OAuthTokens().Get(ctx, otherToken.Kind, otherToken.Signature)
	must(t, "other client's token survives", err)
	_, err = s.OAuthConsents().Get(ctx, u.ID, other.ID, "")
	must(t, "other client's consent survives", err)
	_, err = s.Users().Get(ctx, u.ID)
	must(t, "user survives", err)
}

func testOAuthClientDeleteNotFound(t *testing.T, s storage.Store) {
	wantErr(t, "delete", s.OAuthClients().Delete(t.Context(), "missing"), storage.ErrNotFound)
}

func testOAuthClientList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now().Add(-time.Hour)
	// Created out of order; b and c share a timestamp and sort by id.
	spec := []struct {
		id string
		at time.Time
	}{{"cli_d", t0.Add(2 * time.Second)}, {"cli_c", t0.Add(time.Second)}, {"cli_a", t0}, {"cli_b", t0.Add(time.Second)}}
	for _, x := range spec {
		c := &storage.OAuthClient{ID: x.id, Source: storage.ClientSourceDynamic, Metadata: []byte(`{}`), CreatedAt: x.at, UpdatedAt: x.at}
		must(t, "create", s.OAuthClients().Create(ctx, c))
	}
	ids := func(cs []storage.OAuthClient) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.ID
		}
		return out
	}
	tests := []struct {
		name          string
		limit, offset int
		want          []string
	}{
		{"all", 10, 0, []string{"cli_a", "cli_b", "cli_c", "cli_d"}},
		{"page", 2, 1, []string{"cli_b", "cli_c"}},
		{"past the end", 10, 4, []string{}},
		{"no limit", 0, 0, []string{"cli_a", "cli_b", "cli_c", "cli_d"}},
	}
	for _, tc := range tests {
		got, err := s.OAuthClients().List(ctx, tc.limit, tc.offset)
		must(t, "list "+tc.name, err)
		wantSame(t, "list "+tc.name, ids(got), tc.want)
	}
}
