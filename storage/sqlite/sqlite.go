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

	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}
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
	s := &Store{store: sqlstore.New(newPool(db), dialect()), db: db,
		stopCheckpoints: make(chan struct{}), checkpointsDone: make(chan struct{})}
	go s.checkpoints()
	return s, nil
}

// checkpointEvery is how often the WAL is copied back into the database
// file. Connections do not checkpoint themselves (wal_autocheckpoint is
// off): an automatic checkpoint runs inside whichever commit crosses the
// threshold and syncs the file, which made every thousandth-page commit —
// a token or an audit batch somebody waits for — slow. Here a background
// goroutine does it, PASSIVE so it never blocks readers or writers.
const checkpointEvery = time.Second

func (s *Store) checkpoints() {
	defer close(s.checkpointsDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-t.C:
			// Best effort: a failed checkpoint leaves the WAL longer, and
			// the next one catches up.
			_, _ = s.db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// Close stops the checkpoints, copies the whole WAL back into the database
// file (so the file alone is complete) and closes the pool.
func (s *Store) Close() error {
	select {
	case <-s.stopCheckpoints:
	default:
		close(s.stopCheckpoints)
		<-s.checkpointsDone
		_, _ = s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return s.store.Close()
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
// fifth of an audit commit. Checkpoints run in the background (see
// checkpoints), not in the commit that crosses a threshold.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "wal_autocheckpoint(0)")
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
