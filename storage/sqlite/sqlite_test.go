package sqlite_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/sqlite"
	"github.com/kavachos/kavach/storage/storagetest"
)

// schemaVersion is the number of embedded migrations: a fresh database
// migrates to it.
const schemaVersion = 15

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return storagetest.OpenSQLite(t) })
}

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFreshDatabaseMigrates(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "fresh.db"))
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != 0 {
		t.Fatalf("fresh SchemaVersion = %d, %v; want 0, nil", v, err)
	}
	v, err = s.Migrate(ctx)
	if err != nil || v != schemaVersion {
		t.Fatalf("Migrate = %d, %v; want %d, nil", v, err, schemaVersion)
	}
}

// Two processes starting on one file at once: BEGIN IMMEDIATE serializes
// the migration transactions, and the second finds the work done.
func TestConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := []*sqlite.Store{open(t, path), open(t, path), open(t, path)}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			if v, err := s.Migrate(t.Context()); err != nil || v != schemaVersion {
				t.Errorf("Migrate = %d, %v; want %d, nil", v, err, schemaVersion)
			}
		})
	}
	wg.Wait()
}

func TestPragmas(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "pragmas.db"))
	tests := []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
		{"synchronous", "1"},        // NORMAL
		{"temp_store", "2"},         // MEMORY
		{"wal_autocheckpoint", "0"}, // checkpoints run in the background
	}
	for _, tc := range tests {
		var got string
		if err := s.DB().QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
}

// The path is escaped into the file: URI, so unusual names work.
func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?#%", "k#1?.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at the given path: %v", err)
	}
}

// Times are INTEGER milliseconds and booleans 0/1 on disk.
func TestStorageClasses(t *testing.T) {
	ctx := t.Context()
	s := storagetest.OpenSQLite(t).(*sqlite.Store)
	u := &storage.User{ID: "usr_1", Email: "a@example.com", EmailVerified: true}
	if err := s.Users().Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	var created, verified int64
	var createdType, verifiedType string
	err := s.DB().QueryRowContext(ctx,
		`SELECT created_at, typeof(created_at), email_verified, typeof(email_verified) FROM kavach_user`).
		Scan(&created, &createdType, &verified, &verifiedType)
	if err != nil {
		t.Fatal(err)
	}
	if createdType != "integer" || created != u.CreatedAt.UnixMilli() {
		t.Errorf("created_at = %d (%s), want %d (integer)", created, createdType, u.CreatedAt.UnixMilli())
	}
	if verifiedType != "integer" || verified != 1 {
		t.Errorf("email_verified = %d (%s), want 1 (integer)", verified, verifiedType)
	}
}

func BenchmarkSessionGetByTokenHash(b *testing.B) {
	storagetest.BenchSessionGetByTokenHash(b, storagetest.OpenSQLite(b))
}

func BenchmarkUserCreate(b *testing.B) {
	storagetest.BenchUserCreate(b, storagetest.OpenSQLite(b))
}

// A migration file edited after it was applied must stop the start, with
// a message that says so, rather than fail later on a missing table.
func TestEditedMigrationIsRefused(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "edited.db"))
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE kavach_schema_version SET checksum = '0000' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	_, err := s.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("Migrate = %v, want a changed-migration error", err)
	}
}
