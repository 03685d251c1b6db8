// Package storagetest is the conformance suite every storage driver must
// pass, and the helpers other packages use to get a real store in tests.
//
// Run(t, open) checks every method of storage.Store, including the
// not-found, already-exists and invalid-value cases, transactions,
// migrations and the races the domain relies on (single-use tokens, the
// login-attempt counter, unique emails, OAuth token deactivation,
// signing-key retirement). Drivers(t) lists the stores a test should run
// against: SQLite always, PostgreSQL as well when KAVACH_TEST_POSTGRES_URL
// is set, each opened fresh, migrated, and removed when the test ends.
//
// It owns no production code and must only be imported from tests.
package storagetest
