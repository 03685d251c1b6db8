package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/storage"
)

// Store implements storage.Store over a DB and a Dialect. A Store returned
// by New is bound to the pool; the Store that InTx passes to its callback is
// bound to the transaction.
type Store struct {
	db   DB
	q    Querier // db, or the transaction
	inTx bool
	d    *Dialect
}

var _ storage.Store = (*Store)(nil)

// New returns a Store over db. The Store owns db: Close closes it.
func New(db DB, d *Dialect) *Store {
	return &Store{db: db, q: db, d: d}
}

func (s *Store) Users() storage.Users                 { return users{s} }
func (s *Store) Accounts() storage.Accounts           { return accounts{s} }
func (s *Store) Sessions() storage.Sessions           { return sessions{s} }
func (s *Store) Verifications() storage.Verifications { return verifications{s} }
func (s *Store) LoginAttempts() storage.LoginAttempts { return loginAttempts{s} }
func (s *Store) Events() storage.Events               { return events{s} }
func (s *Store) OAuthClients() storage.OAuthClients   { return oauthClients{s} }
func (s *Store) OAuthTokens() storage.OAuthTokens     { return oauthTokens{s} }
func (s *Store) OAuthConsents() storage.OAuthConsents { return oauthConsents{s} }
func (s *Store) SigningKeys() storage.SigningKeys     { return signingKeys{s} }
func (s *Store) Agents() storage.Agents               { return agents{s} }
func (s *Store) AgentGrants() storage.AgentGrants     { return agentGrants(s) }
func (s *Store) UserGrants() storage.UserGrants       { return userGrants(s) }
func (s *Store) TrustStates() storage.TrustStates     { return trustStates{s} }
func (s *Store) TrustPolicies() storage.TrustPolicies { return trustPolicies{s} }
func (s *Store) TrustFindings() storage.TrustFindings { return trustFindings{s} }
func (s *Store) AgentKeys() storage.AgentKeys         { return agentKeys{s} }
func (s *Store) Approvals() storage.Approvals         { return approvals{s} }
func (s *Store) Audit() storage.AuditLog              { return auditLog{s} }
func (s *Store) Organizations() storage.Organizations { return organizations{s} }
func (s *Store) Budgets() storage.Budgets             { return budgets{s} }
func (s *Store) Usage() storage.UsageCounters         { return usageCounters{s} }
func (s *Store) Challenges() storage.Challenges       { return challenges{s} }
func (s *Store) TwoFactors() storage.TwoFactors       { return twoFactors{s} }
func (s *Store) Passkeys() storage.Passkeys           { return passkeys{s} }
func (s *Store) Bans() storage.Bans                   { return bans{s} }

// Dialect names the driver.
func (s *Store) Dialect() string { return s.d.Name }

// Ping reports whether the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("storage: ping %s: %w", s.d.Name, err)
	}
	return nil
}

// Close closes the pool. It refuses on the Store of an InTx callback, which
// does not own the pool.
func (s *Store) Close() error {
	if s.inTx {
		return errors.New("storage: Close called on the Store of an InTx callback")
	}
	return s.db.Close()
}

// InTx runs fn in one transaction; see storage.Store.
func (s *Store) InTx(ctx context.Context, fn func(tx storage.Store) error) error {
	if s.inTx {
		return fn(s)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("storage: begin: %w", err)
	}
	done := false
	defer func() {
		// Runs on error and on panic alike. The rollback must happen even
		// when ctx is already canceled, or the connection stays busy.
		if !done {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(&Store{db: s.db, q: tx, inTx: true, d: s.d}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(ctx); err != nil {
		return s.wrap("commit", err)
	}
	return nil
}

// exec runs a statement and returns the number of affected rows.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	n, err := s.q.Exec(ctx, s.d.bind(query), args...)
	return n, s.wrap(op, err)
}

// execOne runs a statement that must affect a row; none means ErrNotFound.
func (s *Store) execOne(ctx context.Context, op, query string, args ...any) error {
	n, err := s.exec(ctx, op, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("storage: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}

// get runs a single-row query and scans it into dest.
func (s *Store) get(ctx context.Context, op, query string, args []any, dest ...any) error {
	return s.wrap(op, s.q.QueryRow(ctx, s.d.bind(query), args...).Scan(dest...))
}

// list runs a query and appends one T per row, scanned into the fields
// that dest returns for it.
func list[T any](ctx context.Context, s *Store, op, query string, args []any, dest func(*T) []any) ([]T, error) {
	rows, err := s.q.Query(ctx, s.d.bind(query), args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(dest(&v)...); err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// wrap translates driver errors into the storage sentinels, once, here.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.d.IsNoRows(err):
		return fmt.Errorf("storage: %s: %w", op, storage.ErrNotFound)
	case s.d.IsUniqueViolation(err):
		return fmt.Errorf("storage: %s: %w (%v)", op, storage.ErrAlreadyExists, err)
	case s.d.IsInvalidValue != nil && s.d.IsInvalidValue(err):
		return fmt.Errorf("storage: %s: %w (%v)", op, storage.ErrInvalidValue, err)
	default:
		return fmt.Errorf("storage: %s: %w", op, err)
	}
}

// now is the default for timestamps a caller left zero. Milliseconds are
// the precision both dialects keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// stamp sets *t to now when it is zero.
func stamp(t *time.Time, now time.Time) {
	if t.IsZero() {
		*t = now
	}
}

// noLimit stands in for "no limit" in LIMIT clauses: SQLite and PostgreSQL
// disagree on how to spell it, but both accept a large number.
const noLimit = 1<<31 - 1

func limitOrAll(limit int) int {
	if limit <= 0 {
		return noLimit
	}
	return limit
}
