package storagetest

import (
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var invalidValueTests = []test{
	{"UserCreate", testInvalidUserCreate},
	{"SessionCreate", testInvalidSessionCreate},
	{"Lookups", testInvalidLookups},
	{"OAuthJSON", testInvalidOAuthJSON},
	{"ValidUnicodeAccepted", testValidUnicodeAccepted},
}

// Text PostgreSQL refuses and SQLite would store; both drivers must refuse
// it alike.
const (
	nulText     = "a\x00b"
	invalidUTF8 = "a\xffb"
)

func testInvalidUserCreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	tests := []struct {
		name string
		edit func(u *storage.User)
	}{
		{"email with NUL", func(u *storage.User) { u.Email = nulText + "@example.com" }},
		{"email not UTF-8", func(u *storage.User) { u.Email = invalidUTF8 + "@example.com" }},
		{"name with NUL", func(u *storage.User) { u.Name = nulText }},
		{"name not UTF-8", func(u *storage.User) { u.Name = invalidUTF8 }},
		{"image not UTF-8", func(u *storage.User) { u.Image = new("https://example.com/" + invalidUTF8) }},
	}
	for _, tc := range tests {
		u := &storage.User{ID: newID("usr"), Email: newID("usr") + "@example.com", CreatedAt: now(), UpdatedAt: now()}
		tc.edit(u)
		wantErr(t, "create user with "+tc.name, s.Users().Create(ctx, u), storage.ErrInvalidValue)
	}
	all, err := s.Users().List(ctx, 0, 0)
	must(t, "list", err)
	if len(all) != 0 {
		t.Fatalf("refused creates stored %d users", len(all))
	}
}

func testInvalidSessionCreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	for _, ua := range []string{"bad\xff", "bad\x00"} {
		x := &storage.Session{ID: newID("ses"), TokenHash: randomHex(32), UserID: u.ID,
			ExpiresAt: now().Add(time.Hour), UserAgent: ua}
		wantErr(t, "create session with user agent "+render(ua), s.Sessions().Create(ctx, x), storage.ErrInvalidValue)
	}
	got, err := s.Sessions().ListByUser(ctx, u.ID)
	must(t, "list", err)
	if len(got) != 0 {
		t.Fatalf("refused creates stored %d sessions", len(got))
	}
}

// testInvalidOAuthJSON checks that JSON columns are text: bytes that are
// not valid UTF-8, or a raw NUL, are refused on write (an escaped \u0000
// is plain text and is kept; see MetadataByteExact).
func testInvalidOAuthJSON(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	for _, bad := range []string{nulText, invalidUTF8} {
		what := render(bad)
		x := &storage.OAuthClient{ID: newID("cli"), Source: storage.ClientSourceDynamic, Metadata: []byte(`{"a":"` + bad + `"}`)}
		wantErr(t, "create client with metadata "+what, s.OAuthClients().Create(ctx, x), storage.ErrInvalidValue)

		edited := *c
		edited.Metadata = []byte(bad)
		wantErr(t, "update client with metadata "+what, s.OAuthClients().Update(ctx, &edited), storage.ErrInvalidValue)

		tok := &storage.OAuthToken{Kind: storage.TokenKindAccess, Signature: randomHex(32), RequestID: newID("req"),
			ClientID: c.ID, Active: true, RequestedAt: now(), ExpiresAt: now().Add(time.Hour), Data: []byte(bad)}
		wantErr(t, "create token with data "+what, s.OAuthTokens().Create(ctx, tok), storage.ErrInvalidValue)
	}
	got, err := s.OAuthClients().Get(ctx, c.ID)
	must(t, "get", err)
	wantSame(t, "client after refused update", got, c)
	all, err := s.OAuthClients().List(ctx, 0, 0)
	must(t, "list", err)
	if len(all) != 1 {
		t.Fatalf("refused creates stored %d clients", len(all)-1)
	}
}

// testInvalidLookups pins the choice for reads: a lookup by text that
// cannot be stored is refused with ErrInvalidValue, as a write is, rather
// than reported as not found. The drivers refuse the argument itself, so
// treating reads differently would mean a check in every query.
func testInvalidLookups(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createUser(t, s) // a table with rows, so nothing passes for want of data
	for _, bad := range []string{nulText, invalidUTF8} {
		_, err := s.Users().GetByEmail(ctx, bad+"@example.com")
		wantErr(t, "get user by email "+render(bad), err, storage.ErrInvalidValue)
		_, err = s.Users().Get(ctx, "usr_"+bad)
		wantErr(t, "get user "+render(bad), err, storage.ErrInvalidValue)
		_, err = s.Sessions().GetByTokenHash(ctx, bad)
		wantErr(t, "get session by token hash "+render(bad), err, storage.ErrInvalidValue)
	}
	// The store is still usable after the refusals.
	createUser(t, s)
}

// testValidUnicodeAccepted guards against refusing too much: any valid
// UTF-8 without NUL is stored and read back unchanged.
func testValidUnicodeAccepted(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := &storage.User{ID: newID("usr"), Email: "zoë@exämple.com", Name: "Zoë \u00a0😀 \u202e",
		Image: new("https://example.com/ü.png"), CreatedAt: now(), UpdatedAt: now()}
	must(t, "create", s.Users().Create(ctx, u))
	got, err := s.Users().GetByEmail(ctx, u.Email)
	must(t, "get by email", err)
	wantSame(t, "get by email", got, u)
}
