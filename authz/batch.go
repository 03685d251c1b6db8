package authz

import (
	"context"
	"time"

	"github.com/kavachos/kavach/internal/groupcommit"
	"github.com/kavachos/kavach/storage"
)

// tokenWriter group-commits token rows (internal/groupcommit): concurrent
// issuances share one transaction instead of one commit each, and every
// caller still waits until its row is durable before answering.
type tokenWriter struct {
	w *groupcommit.Writer[*storage.OAuthToken]
}

const (
	maxBatch = 128
	// flushTimeout bounds one group commit.
	flushTimeout = 30 * time.Second
)

func newTokenWriter(store storage.Store) *tokenWriter {
	return &tokenWriter{w: groupcommit.New(maxBatch, flushTimeout, func(ctx context.Context, rows []*storage.OAuthToken) []error {
		errs := make([]error, len(rows))
		err := store.InTx(ctx, func(tx storage.Store) error {
			for _, t := range rows {
				if err := tx.OAuthTokens().Create(ctx, t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && len(rows) > 1 {
			// One bad row must not fail its neighbours: write them one by one.
			for i, t := range rows {
				errs[i] = store.OAuthTokens().Create(ctx, t)
			}
			return errs
		}
		for i := range errs {
			errs[i] = err
		}
		return errs
	})}
}

// create stores t, sharing a transaction with concurrent callers; it
// returns once t is durable (or failed).
func (w *tokenWriter) create(ctx context.Context, t *storage.OAuthToken) error {
	return w.w.Submit(ctx, t)
}

func (w *tokenWriter) close() { w.w.Close() }
