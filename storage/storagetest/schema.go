package storagetest

import (
	"testing"

	"github.com/kavachos/kavach/storage"
)

var schemaTests = []test{
	{"MigrateIdempotent", testSchemaMigrateIdempotent},
	{"PingAndDialect", testSchemaPingAndDialect},
}

func testSchemaMigrateIdempotent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	version, err := s.SchemaVersion(ctx)
	must(t, "schema version", err)
	if version < 1 {
		t.Fatalf("migrated store reports schema version %d", version)
	}
	for range 2 {
		again, err := s.Migrate(ctx)
		must(t, "migrate again", err)
		if again != version {
			t.Fatalf("migrate again returned version %d, want %d", again, version)
		}
	}
	u := createUser(t, s) // the schema still works
	_, err = s.Users().Get(ctx, u.ID)
	must(t, "get after migrate", err)
}

func testSchemaPingAndDialect(t *testing.T, s storage.Store) {
	must(t, "ping", s.Ping(t.Context()))
	if d := s.Dialect(); d != "sqlite" && d != "postgres" {
		t.Fatalf("dialect = %q, want sqlite or postgres", d)
	}
}
