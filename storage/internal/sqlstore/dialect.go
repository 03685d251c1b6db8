package sqlstore

import (
	"io/fs"
	"strconv"
	"strings"
	"sync"
)

// Dialect describes what differs between the databases sqlstore runs on.
type Dialect struct {
	// Name is what storage.Store.Dialect reports: "sqlite" or "postgres".
	Name string
	// DollarPlaceholders rewrites ? placeholders to $1, $2, … (PostgreSQL).
	DollarPlaceholders bool

	// IsNoRows reports the driver's "query returned no rows" error.
	IsNoRows func(error) bool
	// IsUniqueViolation reports a unique or primary-key constraint error.
	IsUniqueViolation func(error) bool
	// IsInvalidValue reports the database refusing text that is not valid
	// UTF-8 or contains NUL. It may be nil for a driver whose database would
	// store such text: that driver's Querier must refuse it instead, with an
	// error wrapping storage.ErrInvalidValue.
	IsInvalidValue func(error) bool

	// Migrations holds the numbered migration files (NNNN_name.sql) at its
	// root; see LoadMigrations.
	Migrations fs.FS
	// VersionTableDDL creates kavach_schema_version if it does not exist.
	VersionTableDDL string
	// VersionTableExists is a query returning one boolean: whether
	// kavach_schema_version exists.
	VersionTableExists string
	// MigrationLock, when not empty, is executed first in every migration
	// transaction so that nodes starting at once apply migrations one at a
	// time (PostgreSQL takes an advisory transaction lock). SQLite needs
	// none: its transactions begin IMMEDIATE and so already serialize.
	MigrationLock string
}

// rebound caches the $n form of each query: queries are constants, so the
// cache is bounded by the number of statements in this package.
var rebound sync.Map // string → string

// bind returns query in the dialect's placeholder style.
func (d *Dialect) bind(query string) string {
	if !d.DollarPlaceholders {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	q := Rebind(query)
	rebound.Store(query, q)
	return q
}

// Rebind rewrites each ? outside single-quoted literals into $1, $2, ….
func Rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted // '' inside a literal toggles twice: still quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
