package authz

import (
	"context"
	"time"

	"github.com/kavachos/kavach/internal/groupcommit"
	"github.com/kavachos/kavach/storage"
)

// tokenWriter group-commits token rows (internal/groupcommit): concurrent
// issuances share one transaction instead of one commit each, and every
// caller still waits until its row is durable before answering. An access
// token's audit record rides in the same transaction as its row, so a
// token never exists without its record.
type tokenWriter struct {
	w *groupcommit.Writer[tokenWrite]
}

// tokenWrite is one row and, for an access token, its audit record.
type tokenWrite struct {
	token *storage.OAuthToken
	audit *storage.AuditRecord
}

const (
	maxBatch = 128
	// flushTimeout bounds one group commit.
	flushTimeout = 30 * time.Second
)

func newTokenWriter(store storage.Store) *tokenWriter {
	write := func(ctx context.Context, tx storage.Store, items []tokenWrite) error {
		var recs []storage.AuditRecord
		for _, it := range items {
			if err := tx.OAuthTokens().Create(ctx, it.token); err != nil {
				return err
			}
			if it.audit != nil {
				recs = append(recs, *it.audit)
			}
		}
		if len(recs) > 0 {
			return tx.Audit().Append(ctx, recs)
		}
		return nil
	}
	return &tokenWriter{w: groupcommit.New(maxBatch, flushTimeout, func(ctx context.Context, items []tokenWrite) []error {
		errs := make([]error, len(items))
		err := store.InTx(ctx, func(tx storage.Store) error { return write(ctx, tx, items) })
		if err != nil && len(items) > 1 {
			// One bad row must not fail its neighbours: write them one by one.
			for i := range items {
				errs[i] = store.InTx(ctx, func(tx storage.Store) error { return write(ctx, tx, items[i:i+1]) })
			}
			return errs
		}
		for i := range errs {
			errs[i] = err
		}
		return errs
	})}
}

// create stores t (and audit, when not nil), sharing a transaction with
// concurrent callers; it returns once both are durable (or failed).
func (w *tokenWriter) create(ctx context.Context, t *storage.OAuthToken, audit *storage.AuditRecord) error {
	return w.w.Submit(ctx, tokenWrite{token: t, audit: audit})
}

func (w *tokenWriter) close() { w.w.Close() }
