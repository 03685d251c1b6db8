package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriterBatchesAndReportsPerItem(t *testing.T) {
	var batches, items atomic.Int64
	gate := make(chan struct{})
	w := New(64, time.Second, func(_ context.Context, xs []int) []error {
		<-gate
		batches.Add(1)
		items.Add(int64(len(xs)))
		errs := make([]error, len(xs))
		for i, x := range xs {
			if x%10 == 0 {
				errs[i] = errors.New("refused")
			}
		}
		return errs
	})
	defer w.Close()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 1; i <= 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w.Submit(context.Background(), i) != nil {
				failed.Add(1)
			}
		}()
	}
	// Wait until at least two are queued behind the gated first commit:
	// they must then share the next one.
	for deadline := time.Now().Add(10 * time.Second); len(w.reqs) < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if failed.Load() != 4 {
		t.Fatalf("%d items failed, want the 4 the commit refused", failed.Load())
	}
	if items.Load() != 40 || batches.Load() >= 40 {
		t.Fatalf("%d items in %d batches: nothing was shared", items.Load(), batches.Load())
	}
}

func TestWriterClose(t *testing.T) {
	w := New(4, time.Second, func(_ context.Context, xs []int) []error { return make([]error, len(xs)) })
	if err := w.Submit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w.Close() // idempotent
	if err := w.Submit(context.Background(), 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w2 := New(4, time.Second, func(_ context.Context, xs []int) []error {
		t.Error("committed a cancelled item")
		return make([]error, len(xs))
	})
	defer w2.Close()
	if err := w2.Submit(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled submit: %v", err)
	}
}
