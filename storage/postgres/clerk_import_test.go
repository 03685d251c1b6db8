package postgres_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/postgres"
	"github.com/kavachos/kavach/storage/storagetest"
)

// The import SQL from the Clerk migration guide, verbatim. The schema must
// accept it as it is.
const (
	clerkImportUsers    = `INSERT INTO kavach_user (id, email, name, email_verified, image, created_at, updated_at) SELECT id, (email_addresses->0->>'email_address'), COALESCE(first_name,'')||' '||COALESCE(last_name,''), (email_addresses->0->'verification'->>'status') = 'verified', image_url, to_timestamp(created_at/1000), to_timestamp(updated_at/1000) FROM clerk_user_import ON CONFLICT (id) DO NOTHING;`
	clerkImportAccounts = `INSERT INTO kavach_account (id, user_id, provider_id, provider_account_id, access_token, refresh_token, created_at, updated_at) SELECT gen_random_uuid(), u.id, e.value->>'provider', e.value->>'provider_user_id', NULL, NULL, to_timestamp(u.created_at/1000), to_timestamp(u.updated_at/1000) FROM clerk_user_import u, jsonb_array_elements(u.external_accounts) e;`
)

const clerkStaging = `
CREATE TABLE clerk_user_import (
	id                text PRIMARY KEY,
	email_addresses   jsonb,
	first_name        text,
	last_name         text,
	image_url         text,
	created_at        bigint,
	updated_at        bigint,
	external_accounts jsonb
);
INSERT INTO clerk_user_import VALUES
('user_2ada', '[{"email_address": "Ada.Lovelace@Example.COM", "verification": {"status": "verified"}}]',
 'Ada', 'Lovelace', 'https://img.clerk.com/ada.png', 1700000000123, 1700000500999,
 '[{"provider": "oauth_google", "provider_user_id": "g-111"}, {"provider": "oauth_github", "provider_user_id": "gh-222"}]'),
('user_2bob', '[{"email_address": "bob@example.com", "verification": {"status": "unverified"}}]',
 NULL, NULL, NULL, 1600000000000, 1600000000000, '[]');`

func TestClerkImport(t *testing.T) {
	ctx := t.Context()
	s := storagetest.OpenPostgres(t, postgresURL(t)).(*postgres.Store)
	exec := func(what, sql string) {
		t.Helper()
		if _, err := s.Pool().Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exec("create staging table", clerkStaging)
	exec("import users", clerkImportUsers)
	exec("import users again (ON CONFLICT DO NOTHING)", clerkImportUsers)
	exec("import accounts", clerkImportAccounts)

	ada, err := s.Users().GetByEmail(ctx, "ada.lovelace@example.com")
	if err != nil {
		t.Fatalf("GetByEmail of a mixed-case imported email: %v", err)
	}
	want := storage.User{
		ID: "user_2ada", Email: "Ada.Lovelace@Example.COM", Name: "Ada Lovelace", EmailVerified: true,
		Image: new("https://img.clerk.com/ada.png"),
		// to_timestamp(ms/1000) divides as integers: whole seconds.
		CreatedAt: time.Unix(1700000000, 0).UTC(), UpdatedAt: time.Unix(1700000500, 0).UTC(),
	}
	checkUser(t, ada, want)

	bob, err := s.Users().Get(ctx, "user_2bob")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkUser(t, bob, storage.User{ID: "user_2bob", Email: "bob@example.com", Name: " ",
		CreatedAt: time.Unix(1600000000, 0).UTC(), UpdatedAt: time.Unix(1600000000, 0).UTC()})

	accounts, err := s.Accounts().ListByUser(ctx, "user_2ada")
	if err != nil {
		t.Fatalf("ListByUser: %v", err)
	}
	var providers []string
	for _, a := range accounts {
		providers = append(providers, a.ProviderID+"/"+a.ProviderAccountID)
		if a.ID == "" || !a.CreatedAt.Equal(want.CreatedAt) || a.Password != nil {
			t.Errorf("imported account %+v: want a generated id, created %v, no password", a, want.CreatedAt)
		}
	}
	slices.Sort(providers)
	if !slices.Equal(providers, []string{"oauth_github/gh-222", "oauth_google/g-111"}) {
		t.Errorf("imported accounts = %v", providers)
	}
	if _, err := s.Accounts().GetByProvider(ctx, "oauth_google", "g-111"); err != nil {
		t.Errorf("GetByProvider of an imported account: %v", err)
	}

	// The case-insensitive unique index covers imported rows too.
	err = s.Users().Create(ctx, &storage.User{ID: "usr_new", Email: "ada.lovelace@example.com"})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("Create with an imported email in another case: %v, want ErrAlreadyExists", err)
	}
}

func checkUser(t *testing.T, got *storage.User, want storage.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.Name != want.Name ||
		got.EmailVerified != want.EmailVerified {
		t.Errorf("user = %+v, want %+v", *got, want)
	}
	if (got.Image == nil) != (want.Image == nil) || (got.Image != nil && *got.Image != *want.Image) {
		t.Errorf("user %s image = %v, want %v", got.ID, got.Image, want.Image)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("user %s times = %v / %v, want %v / %v", got.ID, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("user %s created_at in %v, want UTC", got.ID, got.CreatedAt.Location())
	}
}
