// Package sqlite is the embedded storage driver: storage.Store on a SQLite
// file through modernc.org/sqlite (pure Go, no cgo), in WAL mode.
//
// It owns the SQLite schema (migrations/, embedded) and the conversions
// SQLite needs: times are INTEGER Unix milliseconds in UTC and booleans are
// INTEGER 0/1. It refuses text arguments that are not valid UTF-8 or hold
// NUL with storage.ErrInvalidValue, as PostgreSQL does. The queries themselves live in storage/internal/sqlstore,
// shared with the PostgreSQL driver. Nothing outside storage/ should import
// this package except the code that wires a Store (kavach.New, cmd).
package sqlite
