package users

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kavachos/kavach/internal/mail"
)

// hungMailer never finishes a send until its context ends, like an SMTP
// server that accepts and then says nothing.
type hungMailer struct{ cancelled atomic.Int32 }

func (m *hungMailer) Send(ctx context.Context, _ mail.Message) error {
	<-ctx.Done()
	m.cancelled.Add(1)
	return ctx.Err()
}

func TestMailQueueCloseIsBounded(t *testing.T) {
	m := &hungMailer{}
	var q mailQueue
	q.start(m, true, "email", slog.New(slog.DiscardHandler))
	for range 3 {
		q.submit("test", func(ctx context.Context, m mail.Mailer) error { return m.Send(ctx, mail.Message{}) })
	}
	q.close(50 * time.Millisecond) // returns: the hung sends were cancelled
	if got := m.cancelled.Load(); got != 3 {
		t.Fatalf("%d sends cancelled, want 3", got)
	}
	// Submitting after close is refused, not a panic.
	q.submit("late", func(context.Context, mail.Mailer) error { t.Error("ran after close"); return nil })
	q.close(time.Millisecond) // idempotent
}
