package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/postgres"
	"github.com/kavachos/kavach/storage/sqlite"
)

// EnvPostgresURL names the environment variable that turns on the
// PostgreSQL driver in tests. When it is set, failing to reach the database
// fails the test; it never skips.
const EnvPostgresURL = "KAVACH_TEST_POSTGRES_URL"

// Driver opens fresh, migrated stores of one kind. Each store is closed and
// its data removed when the test that opened it ends.
type Driver struct {
	Name string
	Open func(t testing.TB) storage.Store
}

// Drivers returns the drivers a test should run against: "sqlite" always,
// and "postgres" when EnvPostgresURL is set. Typical use:
//
//	for _, d := range storagetest.Drivers(t) {
//		t.Run(d.Name, func(t *testing.T) { s := d.Open(t); … })
//	}
func Drivers(t testing.TB) []Driver {
	t.Helper()
	drivers := []Driver{{Name: "sqlite", Open: OpenSQLite}}
	if u := os.Getenv(EnvPostgresURL); u != "" {
		drivers = append(drivers, Driver{
			Name: "postgres",
			Open: func(t testing.TB) storage.Store { return OpenPostgres(t, u) },
		})
	}
	return drivers
}

// OpenSQLite opens a migrated SQLite store in a fresh file under
// t.TempDir().
func OpenSQLite(t testing.TB) storage.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kavach.db"))
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storagetest: close sqlite: %v", err)
		}
	})
	migrate(t, s)
	return s
}

// OpenPostgres opens a migrated PostgreSQL store in a fresh schema of the
// database at connString (see PostgresSchema).
func OpenPostgres(t testing.TB, connString string) storage.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), PostgresSchema(t, connString))
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	migrate(t, s)
	return s
}

// testPoolSize caps each test store's pool, unless connString sets
// pool_max_conns: many packages run their tests at once against one server,
// and its max_connections (100 by default) is shared by all of them.
const testPoolSize = "4"

// PostgresSchema creates a schema with a random name in the database at
// connString, drops it (CASCADE) when the test ends, and returns connString
// with search_path set to it, so that everything a store opened on it
// creates lands in that schema. Stores opened on it must be closed by then;
// register their Close with t.Cleanup after calling PostgresSchema.
func PostgresSchema(t testing.TB, connString string) string {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// The parse error can quote the password.
		t.Fatalf("storagetest: %s is not a valid PostgreSQL connection string", EnvPostgresURL)
	}
	schema := "kavach_test_" + randomHex(8)
	ident := pgx.Identifier{schema}.Sanitize()
	admin := func(ctx context.Context, sql string) error {
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin(t.Context(), "CREATE SCHEMA "+ident); err != nil {
		t.Fatalf("storagetest: create schema on %s: %v", EnvPostgresURL, err)
	}
	t.Cleanup(func() {
		// t.Context() is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin(ctx, "DROP SCHEMA IF EXISTS "+ident+" CASCADE"); err != nil {
			t.Errorf("storagetest: drop schema %s: %v", schema, err)
		}
	})
	return withParams(connString, map[string]string{"search_path": schema}, map[string]string{"pool_max_conns": testPoolSize})
}

// withParams returns connString (a URL or keyword/value string) with set
// applied, and with defaults applied where connString lacks them.
func withParams(connString string, set, defaults map[string]string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err == nil {
			q := u.Query()
			for k, v := range defaults {
				if !q.Has(k) {
					q.Set(k, v)
				}
			}
			for k, v := range set {
				q.Set(k, v)
			}
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	// Keyword/value form: a later key overrides an earlier one.
	var b strings.Builder
	b.WriteString(connString)
	for k, v := range defaults {
		if !strings.Contains(connString, k+"=") {
			b.WriteString(" " + k + "=" + v)
		}
	}
	for k, v := range set {
		b.WriteString(" " + k + "=" + v)
	}
	return b.String()
}

func migrate(t testing.TB, s storage.Store) {
	t.Helper()
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("storagetest: migrate %s: %v", s.Dialect(), err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
