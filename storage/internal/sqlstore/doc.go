// Package sqlstore holds the repository code that the SQLite and PostgreSQL
// drivers share: every query, the scanning of rows into storage records, the
// transaction helper and the migration runner.
//
// It owns no connection. A driver hands it a DB (its pool or database/sql
// handle behind the small Querier interface) and a Dialect describing what
// differs: placeholder style, error classification, the schema-version table
// DDL and the migration lock. Queries are written once with ? placeholders;
// time.Time values are passed and scanned as-is, and a driver whose database
// has no native timestamp (SQLite) converts them in its Querier adapter.
//
// It must not import a database driver, and nothing outside storage/ may
// import it.
package sqlstore
