package sqlstore

import "context"

// Querier runs statements on a connection pool or inside a transaction.
// Queries use ? placeholders after Dialect rebinding; arguments and scan
// destinations are plain Go values (string, int, int64, bool, time.Time and
// pointers to them for NULLable columns).
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Row is the result of QueryRow. Scan reports the driver's no-rows error
// when the query matched nothing; Dialect.IsNoRows recognizes it.
type Row interface {
	Scan(dest ...any) error
}

// Rows iterates over a query result.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// DB is a driver's connection pool.
type DB interface {
	Querier
	Begin(ctx context.Context) (Tx, error)
	Ping(ctx context.Context) error
	Close() error
}

// Tx is a transaction begun on a DB.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}
