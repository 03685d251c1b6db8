// Package groupcommit lets concurrent callers share one database commit
// while each still waits until its own item is durable. There is no timer:
// a batch is whatever queued while the previous commit ran, so a lone item
// is not delayed at all and batches grow with load. Token rows and audit
// records are written through it.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned for items that were not written because the
// writer was closed.
var ErrClosed = errors.New("groupcommit: writer closed")

// Commit writes a batch and returns one error per item (nil when that item
// is durable). It gets a context bounded by the writer's timeout.
type Commit[T any] func(ctx context.Context, items []T) []error

// Writer queues items for Commit.
type Writer[T any] struct {
	commit   Commit[T]
	max      int
	timeout  time.Duration
	reqs     chan req[T]
	stop     chan struct{}
	stopOnce sync.Once
	exited   chan struct{} // closed when run has returned
}

type req[T any] struct {
	item T
	err  chan error // buffered: the writer never blocks on a caller
}

// New starts a writer that commits at most max items at once, each commit
// bounded by timeout (a stalled database must fail callers, not hold them
// forever). Close stops it.
func New[T any](max int, timeout time.Duration, commit Commit[T]) *Writer[T] {
	w := &Writer[T]{commit: commit, max: max, timeout: timeout,
		reqs: make(chan req[T], max), stop: make(chan struct{}), exited: make(chan struct{})}
	go w.run()
	return w
}

// Submit writes item and returns once the commit holding it is done. A ctx
// already done writes nothing; once queued, the item is written and Submit
// waits for the outcome whatever ctx does, so the answer is never "maybe".
func (w *Writer[T]) Submit(ctx context.Context, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := req[T]{item: item, err: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-w.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// An item queued just as the writer stopped may get no outcome: it
	// fails, as it was not written.
	select {
	case err := <-r.err:
		return err
	case <-w.exited:
		select {
		case err := <-r.err:
			return err
		default:
			return ErrClosed
		}
	}
}

// Close stops the writer after committing what was queued before it. It
// may be called more than once.
func (w *Writer[T]) Close() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.exited
}

func (w *Writer[T]) run() {
	defer close(w.exited)
	batch := make([]req[T], 0, w.max)
	for {
		select {
		case <-w.stop:
			for {
				if batch = w.collect(batch[:0]); len(batch) == 0 {
					return
				}
				w.flush(batch)
			}
		case r := <-w.reqs:
			w.flush(w.collect(append(batch[:0], r)))
		}
	}
}

// collect adds what is queued, without waiting, up to max.
func (w *Writer[T]) collect(batch []req[T]) []req[T] {
	for len(batch) < w.max {
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (w *Writer[T]) flush(batch []req[T]) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	errs := w.commit(ctx, items)
	for i, r := range batch {
		r.err <- errs[i]
	}
}
