package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"sync"

	"github.com/kavachos/kavach/storage/internal/sqlstore"
)

// conn is what *sql.DB and *sql.Tx have in common.
type conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// querier adapts database/sql to sqlstore.Querier, converting values on
// the way in and out (see convert.go). Statements go through the cache, so
// SQLite parses each distinct query once per connection rather than per
// call (parsing was a tenth of a token issuance).
type querier struct {
	c     conn
	cache *stmtCache
	tx    *sql.Tx // set inside a transaction
}

// stmtCache holds one prepared statement per distinct query.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // query → *sql.Stmt
}

// stmt returns the prepared statement for query, or nil when the query
// should run unprepared (scripts with several statements, such as
// migrations).
func (q querier) stmt(ctx context.Context, query string) *sql.Stmt {
	if q.cache == nil || strings.Contains(query, ";") {
		return nil
	}
	var st *sql.Stmt
	if v, ok := q.cache.m.Load(query); ok {
		st = v.(*sql.Stmt)
	} else {
		prepared, err := q.cache.db.PrepareContext(ctx, query)
		if err != nil {
			return nil // run unprepared; the error (if any) surfaces there
		}
		v, loaded := q.cache.m.LoadOrStore(query, prepared)
		if loaded {
			_ = prepared.Close()
		}
		st = v.(*sql.Stmt)
	}
	if q.tx != nil {
		return q.tx.StmtContext(ctx, st)
	}
	return st
}

func (q querier) Exec(ctx context.Context, query string, a ...any) (int64, error) {
	a, err := args(a)
	if err != nil {
		return 0, err
	}
	var res sql.Result
	if st := q.stmt(ctx, query); st != nil {
		res, err = st.ExecContext(ctx, a...)
	} else {
		res, err = q.c.ExecContext(ctx, query, a...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) QueryRow(ctx context.Context, query string, a ...any) sqlstore.Row {
	a, err := args(a)
	if err != nil {
		return row{err: err}
	}
	if st := q.stmt(ctx, query); st != nil {
		return row{r: st.QueryRowContext(ctx, a...)}
	}
	return row{r: q.c.QueryRowContext(ctx, query, a...)}
}

func (q querier) Query(ctx context.Context, query string, a ...any) (sqlstore.Rows, error) {
	a, err := args(a)
	if err != nil {
		return nil, err
	}
	var r *sql.Rows
	if st := q.stmt(ctx, query); st != nil {
		r, err = st.QueryContext(ctx, a...)
	} else {
		r, err = q.c.QueryContext(ctx, query, a...)
	}
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

// row is a *sql.Row, or the error that kept the query from running.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dests(dest)...)
}

type rows struct{ r *sql.Rows }

func (r rows) Next() bool             { return r.r.Next() }
func (r rows) Scan(dest ...any) error { return r.r.Scan(dests(dest)...) }
func (r rows) Err() error             { return r.r.Err() }

// Close drops database/sql's close error: after Next returns false the rows
// are already closed and Err carries any failure.
func (r rows) Close() { _ = r.r.Close() }

// pool is the sqlstore.DB over *sql.DB.
type pool struct {
	querier
	db *sql.DB
}

func newPool(db *sql.DB) pool {
	return pool{querier{c: db, cache: &stmtCache{db: db}}, db}
}

// Begin starts a transaction; the DSN's _txlock makes it BEGIN IMMEDIATE.
func (p pool) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return txn{querier{c: tx, cache: p.cache, tx: tx}, tx}, nil
}

func (p pool) Ping(ctx context.Context) error { return p.db.PingContext(ctx) }
func (p pool) Close() error {
	p.cache.m.Range(func(_, v any) bool { _ = v.(*sql.Stmt).Close(); return true })
	return p.db.Close()
}

type txn struct {
	querier
	tx *sql.Tx
}

func (t txn) Commit(context.Context) error   { return t.tx.Commit() }
func (t txn) Rollback(context.Context) error { return t.tx.Rollback() }
