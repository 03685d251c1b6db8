package authz

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kavachos/kavach/storage"
)

// tokenWriter group-commits token rows: concurrent issuances share one
// transaction instead of one commit each, and every caller still waits
// until its row is durable before answering. There is no timer: a batch is
// whatever queued while the previous commit ran, so a lone request is not
// delayed at all.
type tokenWriter struct {
	store  storage.Store
	reqs   chan writeReq
	stop   chan struct{}
	exited chan struct{} // closed when run has returned
	done   sync.WaitGroup
}

// flushTimeout bounds one group commit: a stalled database must fail
// requests, not hold them forever.
const flushTimeout = 30 * time.Second

type writeReq struct {
	ctx context.Context
	t   *storage.OAuthToken
	err chan error
}

const maxBatch = 128

var errWriterClosed = errors.New("authz: token writer closed")

func newTokenWriter(store storage.Store) *tokenWriter {
	w := &tokenWriter{store: store, reqs: make(chan writeReq, maxBatch), stop: make(chan struct{}), exited: make(chan struct{})}
	w.done.Add(1)
	go func() { defer close(w.exited); w.run() }()
	return w
}

// create stores t, sharing a transaction with concurrent callers.
func (w *tokenWriter) create(ctx context.Context, t *storage.OAuthToken) error {
	req := writeReq{ctx: ctx, t: t, err: make(chan error, 1)}
	select {
	case w.reqs <- req:
	case <-w.stop:
		return errWriterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the row will be written; wait for the outcome so that
	// a token is never returned before it is stored. A request queued just
	// as the writer stopped gets no outcome: it fails, and no token is
	// returned for it.
	select {
	case err := <-req.err:
		return err
	case <-w.exited:
		select {
		case err := <-req.err:
			return err
		default:
			return errWriterClosed
		}
	}
}

func (w *tokenWriter) run() {
	defer w.done.Done()
	batch := make([]writeReq, 0, maxBatch)
	for {
		select {
		case <-w.stop:
			// Drain what was queued before the stop.
			for {
				select {
				case r := <-w.reqs:
					w.flush([]writeReq{r})
				default:
					return
				}
			}
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		more:
			for len(batch) < maxBatch {
				select {
				case r := <-w.reqs:
					batch = append(batch, r)
				default:
					break more
				}
			}
			w.flush(batch)
		}
	}
}

func (w *tokenWriter) flush(batch []writeReq) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if len(batch) == 1 {
		batch[0].err <- w.store.OAuthTokens().Create(ctx, batch[0].t)
		return
	}
	err := w.store.InTx(ctx, func(tx storage.Store) error {
		for _, r := range batch {
			if err := tx.OAuthTokens().Create(ctx, r.t); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, r := range batch {
			r.err <- nil
		}
		return
	}
	// One bad row must not fail its neighbours: write them one by one.
	for _, r := range batch {
		r.err <- w.store.OAuthTokens().Create(ctx, r.t)
	}
}

func (w *tokenWriter) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.done.Wait()
}
