package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// store names the embedded type so that the embedded field is unexported:
// Store gets every storage.Store method without exposing sqlstore.
type store = sqlstore.Store

// Store is a storage.Store on a SQLite database file.
type Store struct {
	*store
	db *sql.DB
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path. It does not
// migrate; call Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	// database/sql keeps only two idle connections by default; under load
	// every other request would open a connection (pragmas, statement
	// preparation) and close it again. Readers are concurrent in WAL mode,
	// so keep a pool that covers the cores and then some.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// Ping opens a first connection, which applies the pragmas: a file that
	// cannot be created or locked fails here rather than on first use.
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	return &Store{store: sqlstore.New(newPool(db), dialect()), db: db}, nil
}

// DB returns the underlying handle, for tools that need raw SQL.
func (s *Store) DB() *sql.DB { return s.db }

// dsn is the data source name Open uses for path. Every connection in the
// pool gets the same pragmas: WAL so readers never block the writer, a busy
// timeout so writers queue instead of failing, foreign keys for ON DELETE
// CASCADE, and BEGIN IMMEDIATE so a transaction takes the write lock up
// front instead of failing with SQLITE_BUSY when it first writes. Temporary
// storage stays in memory: a statement that writes many rows inside a
// transaction (the audit log's multi-row INSERT) journals the pages it
// changes, and spilling that journal to a temporary file cost up to a
// fifth of an audit commit.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	return u.String()
}

func dialect() *sqlstore.Dialect {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return &sqlstore.Dialect{
		Name:              "sqlite",
		IsNoRows:          func(err error) bool { return errors.Is(err, sql.ErrNoRows) },
		IsUniqueViolation: isUniqueViolation,
		Migrations:        migrations,
		VersionTableDDL: `CREATE TABLE IF NOT EXISTS kavach_schema_version (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			checksum   TEXT NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`,
		VersionTableExists: `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'kavach_schema_version')`,
	}
}

func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}
