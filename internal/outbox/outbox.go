// Package outbox delivers events that domain services wrote to the storage
// outbox in the same transaction as their change. Delivery is at least once
// and in event order: an event is marked delivered only after the handler
// returned nil, so a crash between commit and delivery loses nothing — the
// next start delivers it. A failing event is retried with exponential
// backoff (up to every MaxBackoff) and holds back the events after it; it
// is never dropped. Several nodes polling one database may each deliver an
// event, so handlers should be idempotent by event ID.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kavachos/kavach/storage"
)

// Handler receives one event. Returning an error retries it later.
type Handler func(ctx context.Context, e storage.Event) error

// Dispatcher polls the outbox and hands events to a Handler.
type Dispatcher struct {
	store    storage.Store
	handle   Handler
	logger   *slog.Logger
	interval time.Duration
	batch    int
}

// MaxBackoff caps the wait between retries of a failing event.
const MaxBackoff = 5 * time.Minute

// ErrHandlerFailed reports that the handler refused an event; DeliverPending
// stops there so that order is kept.
var ErrHandlerFailed = errors.New("outbox: event handler failed")

// NewDispatcher delivers to handle. A nil handle marks events delivered
// without delivering them (tests only: Kavach runs no dispatcher without a
// handler, so events wait for one).
func NewDispatcher(store storage.Store, handle Handler, logger *slog.Logger) *Dispatcher {
	return &Dispatcher{store: store, handle: handle, logger: logger, interval: time.Second, batch: 100}
}

// Run delivers until ctx ends, polling every second and backing off
// exponentially while deliveries fail.
func (d *Dispatcher) Run(ctx context.Context) {
	failures := 0
	for {
		_, err := d.DeliverPending(ctx)
		wait := d.interval
		switch {
		case err == nil:
			failures = 0
		case errors.Is(err, context.Canceled):
			return
		default:
			failures++
			wait = backoff(d.interval, failures)
			d.logger.Warn("event delivery failed; retrying", "err", err, "failures", failures, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff doubles base per failure, up to MaxBackoff.
func backoff(base time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
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
				if err := d.store.Events().MarkFailed(ctx, e.ID); err != nil {
					return delivered, err
				}
				return delivered, fmt.Errorf("%w: event %d (%s), attempt %d: %w", ErrHandlerFailed, e.ID, e.Type, e.Attempts+1, herr)
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

// Emit appends an event inside the caller's transaction, so it commits or
// rolls back with the change it describes. payload is encoded as JSON.
func Emit(ctx context.Context, tx storage.Store, typ, subject string, payload any, now time.Time) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	e := &storage.Event{Type: typ, Subject: subject, Payload: b, CreatedAt: now}
	if err := tx.Events().Append(ctx, e); err != nil {
		return fmt.Errorf("append %s event: %w", typ, err)
	}
	return nil
}
