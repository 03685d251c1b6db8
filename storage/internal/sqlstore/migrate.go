package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/kavachos/kavach/storage"
)

// Migration is one numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Checksum identifies the migration's text (hex SHA-256).
func (m Migration) Checksum() string {
	sum := sha256.Sum256([]byte(m.SQL))
	return hex.EncodeToString(sum[:])
}

var migrationFile = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.sql$`)

// LoadMigrations reads NNNN_name.sql files from the root of fsys, in version
// order. Versions must run 1, 2, 3, … without gaps or duplicates, so a
// mistyped file name fails every test rather than being skipped silently.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("storage: read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("storage: migration %q: name must be NNNN_name.sql", e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("storage: migration %q: %w", e.Name(), err)
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("storage: migration %q: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: version, Name: m[2], SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("storage: migration %04d_%s: expected version %d", m.Version, m.Name, i+1)
		}
	}
	return out, nil
}

// Migrate applies the migrations that are not applied yet, each in its own
// transaction together with its kavach_schema_version row, and returns the
// resulting schema version.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	migrations, err := LoadMigrations(s.d.Migrations)
	if err != nil {
		return 0, err
	}
	for _, m := range migrations {
		if err := s.InTx(ctx, func(tx storage.Store) error {
			return tx.(*Store).apply(ctx, m)
		}); err != nil {
			return 0, err
		}
	}
	return s.SchemaVersion(ctx)
}

// apply runs inside a transaction. The lock comes first so that a second
// node waits here and then sees the version row the first one wrote.
func (s *Store) apply(ctx context.Context, m Migration) error {
	op := fmt.Sprintf("migrate %04d_%s", m.Version, m.Name)
	if s.d.MigrationLock != "" {
		if _, err := s.exec(ctx, op+": lock", s.d.MigrationLock); err != nil {
			return err
		}
	}
	if _, err := s.exec(ctx, op+": version table", s.d.VersionTableDDL); err != nil {
		return err
	}
	var stored string
	err := s.get(ctx, op, `SELECT checksum FROM kavach_schema_version WHERE version = ?`,
		[]any{m.Version}, &stored)
	if err == nil {
		// Applied already. A migration edited after it shipped would leave
		// databases that ran the old text without the new schema; refuse
		// loudly instead of failing later on a missing table.
		if stored != m.Checksum() {
			return fmt.Errorf("storage: %s: the migration file changed after it was applied to this database "+
				"(checksum %.12s, applied %.12s); restore it and put the change in a new migration", op, m.Checksum(), stored)
		}
		return nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if _, err := s.exec(ctx, op, m.SQL); err != nil {
		return err
	}
	_, err = s.exec(ctx, op+": record",
		`INSERT INTO kavach_schema_version (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
		m.Version, m.Name, m.Checksum(), time.Now().UTC())
	return err
}

// SchemaVersion returns the highest applied migration, 0 on an empty
// database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := s.get(ctx, "schema version", s.d.VersionTableExists, nil, &exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := s.get(ctx, "schema version", `SELECT COALESCE(MAX(version), 0) FROM kavach_schema_version`, nil, &v)
	return v, err
}
