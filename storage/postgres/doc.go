// Package postgres is the production storage driver: storage.Store on
// PostgreSQL through pgx/v5 (pgxpool), for single- and multi-node
// deployments.
//
// It owns the PostgreSQL schema (migrations/, embedded; times TIMESTAMPTZ,
// booleans BOOLEAN), the pool configuration, and the advisory lock that lets
// several nodes start and migrate at once. The queries themselves live in
// storage/internal/sqlstore, shared with the SQLite driver. Nothing outside
// storage/ should import this package except the code that wires a Store
// (kavach.New, cmd).
package postgres
