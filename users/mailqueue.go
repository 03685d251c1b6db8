package users

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kavachos/kavach/internal/mail"
)

// mailQueue sends mail off the request path, so that whether a message was
// sent (the account exists) does not show in response timing. Close waits
// for what is in flight; a bounded number of sends run at once.
type mailQueue struct {
	mailer mail.Mailer
	logger *slog.Logger
	wg     sync.WaitGroup
	slots  chan struct{}
}

const mailSendTimeout = 30 * time.Second

func (q *mailQueue) init(m mail.Mailer, logger *slog.Logger) {
	q.mailer, q.logger = m, logger
	q.slots = make(chan struct{}, 16)
}

func (q *mailQueue) send(msg mail.Message) {
	if q.mailer == nil {
		q.logger.Warn("no mailer configured; email not sent", "subject", msg.Subject)
		return
	}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		q.slots <- struct{}{}
		defer func() { <-q.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), mailSendTimeout)
		defer cancel()
		if err := q.mailer.Send(ctx, msg); err != nil {
			// The address is personal data and the body holds a live token:
			// log neither.
			q.logger.Error("sending email failed", "subject", msg.Subject, "err", err)
		}
	}()
}

func (q *mailQueue) wait() { q.wg.Wait() }
