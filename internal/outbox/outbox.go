// Package outbox delivers events that domain services wrote to the storage
// outbox in the same transaction as their change. Delivery is at least once
// and in order per poll: an event is marked delivered only after the
// handler returned nil, so a crash between commit and delivery loses
// nothing — the next start delivers it.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kavachos/kavach/storage"
)

// Handler receives one event. Returning an error retries it later.
type Handler func(ctx context.Context, e storage.Event) error

// Dispatcher polls the outbox and hands events to a Handler.
type Dispatcher struct {
	store       storage.Store
	handle      Handler
	logger      *slog.Logger
	interval    time.Duration
	batch       int
	maxAttempts int
}

// NewDispatcher delivers to handle; a nil handle just marks events
// delivered (nothing listens yet, but the outbox must not grow forever).
func NewDispatcher(store storage.Store, handle Handler, logger *slog.Logger) *Dispatcher {
	return &Dispatcher{store: store, handle: handle, logger: logger, interval: time.Second, batch: 100, maxAttempts: 20}
}

// Run delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		if _, err := d.DeliverPending(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.logger.Warn("event delivery failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverPending delivers one batch and reports how many events it marked
// delivered.
func (d *Dispatcher) DeliverPending(ctx context.Context) (int, error) {
	events, err := d.store.Events().Pending(ctx, d.batch)
	if err != nil {
		return 0, err
	}
	delivered := 0
	for _, e := range events {
		if ctx.Err() != nil {
			return delivered, ctx.Err()
		}
		if d.handle != nil {
			if herr := d.safeHandle(ctx, e); herr != nil {
				if e.Attempts+1 < d.maxAttempts {
					d.logger.Warn("event handler failed; will retry", "event", e.ID, "type", e.Type, "attempt", e.Attempts+1, "err", herr)
					if err := d.store.Events().MarkFailed(ctx, e.ID); err != nil {
						return delivered, err
					}
					// Keep order: later events wait for this one.
					return delivered, nil
				}
				d.logger.Error("event handler kept failing; giving up on event", "event", e.ID, "type", e.Type, "attempts", e.Attempts+1, "err", herr)
			}
		}
		if err := d.store.Events().MarkDelivered(ctx, e.ID, time.Now().UTC()); err != nil {
			return delivered, err
		}
		delivered++
	}
	return delivered, nil
}

// safeHandle turns a handler panic into an error so one bad hook cannot stop
// delivery for the whole process.
func (d *Dispatcher) safeHandle(ctx context.Context, e storage.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("event handler panicked")
			d.logger.Error("event handler panicked", "event", e.ID, "type", e.Type, "panic", r)
		}
	}()
	return d.handle(ctx, e)
}
