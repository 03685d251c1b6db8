package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kavachos/kavach/internal/outbox"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

func appendEvents(t *testing.T, s storage.Store, types ...string) {
	t.Helper()
	for _, typ := range types {
		if err := s.Events().Append(context.Background(), &storage.Event{Type: typ, Subject: "x", Payload: []byte(`{}`), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDispatcher(t *testing.T) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			logger := slog.New(slog.DiscardHandler)

			t.Run("delivers in order once", func(t *testing.T) {
				s := d.Open(t)
				appendEvents(t, s, "a", "b", "c")
				var got []string
				disp := outbox.NewDispatcher(s, func(_ context.Context, e storage.Event) error { got = append(got, e.Type); return nil }, logger)
				n, err := disp.DeliverPending(ctx)
				if err != nil || n != 3 {
					t.Fatalf("delivered %d, %v", n, err)
				}
				if n, _ := disp.DeliverPending(ctx); n != 0 {
					t.Fatalf("redelivered %d", n)
				}
				if len(got) != 3 || got[0] != "a" || got[2] != "c" {
					t.Fatalf("order %v", got)
				}
			})

			t.Run("a failing event is retried and blocks later ones", func(t *testing.T) {
				s := d.Open(t)
				appendEvents(t, s, "ok", "flaky", "after")
				fail := true
				var got []string
				disp := outbox.NewDispatcher(s, func(_ context.Context, e storage.Event) error {
					if e.Type == "flaky" && fail {
						return errors.New("receiver down")
					}
					got = append(got, e.Type)
					return nil
				}, logger)
				if n, err := disp.DeliverPending(ctx); !errors.Is(err, outbox.ErrHandlerFailed) || n != 1 {
					t.Fatalf("first pass delivered %d, %v", n, err)
				}
				pending, _ := s.Events().Pending(ctx, 10)
				if len(pending) != 2 || pending[0].Attempts != 1 {
					t.Fatalf("pending after failure %+v", pending)
				}
				fail = false
				if n, err := disp.DeliverPending(ctx); err != nil || n != 2 {
					t.Fatalf("second pass delivered %d, %v", n, err)
				}
				if len(got) != 3 || got[1] != "flaky" || got[2] != "after" {
					t.Fatalf("order %v", got)
				}
			})

			t.Run("a panicking handler does not stop delivery", func(t *testing.T) {
				s := d.Open(t)
				appendEvents(t, s, "boom")
				disp := outbox.NewDispatcher(s, func(context.Context, storage.Event) error { panic("bug in hook") }, logger)
				if _, err := disp.DeliverPending(ctx); !errors.Is(err, outbox.ErrHandlerFailed) {
					t.Fatal(err)
				}
				pending, _ := s.Events().Pending(ctx, 10)
				if len(pending) != 1 || pending[0].Attempts != 1 {
					t.Fatalf("panic not counted as a failed attempt: %+v", pending)
				}
			})

			t.Run("no handler still drains the outbox", func(t *testing.T) {
				s := d.Open(t)
				appendEvents(t, s, "a", "b")
				if n, err := outbox.NewDispatcher(s, nil, logger).DeliverPending(ctx); err != nil || n != 2 {
					t.Fatalf("delivered %d, %v", n, err)
				}
			})
		})
	}
}
