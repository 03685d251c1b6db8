package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// store names the embedded type so that the embedded field is unexported:
// Store gets every storage.Store method without exposing sqlstore.
type store = sqlstore.Store

// Store is a storage.Store on a PostgreSQL database.
type Store struct {
	*store
	pool *pgxpool.Pool
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a keyword/value
// string; pgxpool's pool_* parameters apply) and checks that it answers. It
// does not migrate; call Migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The error text can contain the password; say only what failed.
		return nil, errors.New("storage: open postgres: invalid connection string")
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		scanTimesInUTC(c.TypeMap())
		return nil
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: open postgres: %w", err)
	}
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("storage: open postgres: %w", err)
	}
	return &Store{store: sqlstore.New(pool{querier{p}, p}, dialect()), pool: p}, nil
}

// Pool returns the underlying pool, for tools that need raw SQL (such as a
// bulk import).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// scanTimesInUTC makes TIMESTAMPTZ values scan in UTC, as SQLite's do,
// rather than in the process's local zone. The instant is unchanged.
func scanTimesInUTC(m *pgtype.Map) {
	m.RegisterType(&pgtype.Type{
		Name:  "timestamptz",
		OID:   pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
}

func dialect() *sqlstore.Dialect {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return &sqlstore.Dialect{
		Name:               "postgres",
		DollarPlaceholders: true,
		IsNoRows:           func(err error) bool { return errors.Is(err, pgx.ErrNoRows) },
		IsUniqueViolation:  isUniqueViolation,
		IsInvalidValue:     isInvalidValue,
		Migrations:         migrations,
		VersionTableDDL: `CREATE TABLE IF NOT EXISTS kavach_schema_version (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			checksum   TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL
		)`,
		VersionTableExists: `SELECT to_regclass('kavach_schema_version') IS NOT NULL`,
		// Keyed by schema so that deployments (or tests) sharing a server but
		// not a schema do not wait for each other.
		MigrationLock: `SELECT pg_advisory_xact_lock(hashtext('kavach_migrate:' || current_schema()))`,
	}
}

// SQLSTATE codes the store translates.
const (
	uniqueViolation = "23505"
	// characterNotInRepertoire is what the server answers to a text
	// parameter that is not valid UTF-8, NUL included ("invalid byte
	// sequence for encoding"); untranslatableCharacter to a NUL that comes
	// from an escape (\u0000).
	characterNotInRepertoire = "22021"
	untranslatableCharacter  = "22P05"
)

func isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == uniqueViolation
}

func isInvalidValue(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == characterNotInRepertoire || e.Code == untranslatableCharacter)
}
