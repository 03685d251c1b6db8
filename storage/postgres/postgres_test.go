package postgres_test

import (
	"os"
	"sync"
	"testing"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/postgres"
	"github.com/kavachos/kavach/storage/storagetest"
)

// postgresURL returns KAVACH_TEST_POSTGRES_URL or skips the test. Once it
// is set, every failure to reach the database fails the test.
func postgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(storagetest.EnvPostgresURL)
	if u == "" {
		t.Skipf("%s is not set", storagetest.EnvPostgresURL)
	}
	return u
}

// schemaVersion is the number of embedded migrations: a fresh database
// migrates to it.
const schemaVersion = 15

func TestConformance(t *testing.T) {
	u := postgresURL(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return storagetest.OpenPostgres(t, u) })
}

// open opens a store, unmigrated, in a fresh schema.
func open(t testing.TB, schemaURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), schemaURL)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFreshSchemaMigrates(t *testing.T) {
	ctx := t.Context()
	s := open(t, storagetest.PostgresSchema(t, postgresURL(t)))
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != 0 {
		t.Fatalf("fresh SchemaVersion = %d, %v; want 0, nil", v, err)
	}
	v, err = s.Migrate(ctx)
	if err != nil || v != schemaVersion {
		t.Fatalf("Migrate = %d, %v; want %d, nil", v, err, schemaVersion)
	}
}

// Several nodes starting at once: the advisory lock makes them apply each
// migration once, in turn, instead of racing on CREATE TABLE.
func TestConcurrentMigrate(t *testing.T) {
	schemaURL := storagetest.PostgresSchema(t, postgresURL(t))
	var nodes []*postgres.Store
	for range 4 {
		nodes = append(nodes, open(t, schemaURL))
	}
	var wg sync.WaitGroup
	for _, s := range nodes {
		wg.Go(func() {
			if v, err := s.Migrate(t.Context()); err != nil || v != schemaVersion {
				t.Errorf("Migrate = %d, %v; want %d, nil", v, err, schemaVersion)
			}
		})
	}
	wg.Wait()
	var rows int
	if err := nodes[0].Pool().QueryRow(t.Context(), `SELECT count(*) FROM kavach_schema_version`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != schemaVersion {
		t.Fatalf("kavach_schema_version has %d rows, want %d", rows, schemaVersion)
	}
}

func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://kavach@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
}

func BenchmarkSessionGetByTokenHash(b *testing.B) {
	storagetest.BenchSessionGetByTokenHash(b, storagetest.OpenPostgres(b, postgresURL(b)))
}

func BenchmarkUserCreate(b *testing.B) {
	storagetest.BenchUserCreate(b, storagetest.OpenPostgres(b, postgresURL(b)))
}
