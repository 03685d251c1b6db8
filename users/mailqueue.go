package users

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kavachos/kavach/internal/mail"
	"github.com/kavachos/kavach/internal/sms"
)

// sendQueue runs message jobs (mail, text messages) off the request path:
// whether a message is sent (the account exists) must not show in
// response timing, and a slow SMTP server or SMS gateway must not hold
// requests. A fixed number of workers drain a bounded queue; when the
// queue is full the job is dropped and logged rather than letting memory
// grow. close drains what was queued, for a bounded time.
type sendQueue[T any] struct {
	sender T
	has    bool   // a sender is configured
	noun   string // "email", "text message": for the log
	logger *slog.Logger
	jobs   chan sendJob[T]
	wg     sync.WaitGroup
	mu     sync.RWMutex // guards closed against a send on a closed channel
	closed bool
	// base is the parent of every job's context; close cancels it when the
	// drain deadline passes, so a hung SMTP server cannot hold shutdown.
	base   context.Context
	cancel context.CancelFunc
}

// mailQueue sends email; smsQueue sends text messages.
type (
	mailQueue = sendQueue[mail.Mailer]
	smsQueue  = sendQueue[sms.Sender]
)

// sendJob prepares (e.g. issues a token) and sends one message.
type sendJob[T any] struct {
	name string
	run  func(ctx context.Context, sender T) error
}

const (
	mailWorkers     = 8
	mailQueueSize   = 1024
	mailSendTimeout = 30 * time.Second
	// MailDrainTimeout is how long Close waits for queued mail before it
	// abandons what is left (and logs how much).
	MailDrainTimeout = 10 * time.Second
)

// start runs the workers; has says whether sender is a configured one
// (a nil interface is not).
func (q *sendQueue[T]) start(sender T, has bool, noun string, logger *slog.Logger) {
	q.sender, q.has, q.noun, q.logger = sender, has, noun, logger
	q.jobs = make(chan sendJob[T], mailQueueSize)
	q.base, q.cancel = context.WithCancel(context.Background())
	for range mailWorkers {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for job := range q.jobs {
				q.run(job)
			}
		}()
	}
}

func (q *sendQueue[T]) run(job sendJob[T]) {
	if q.base.Err() != nil {
		q.logger.Warn("shutting down; queued "+q.noun+" abandoned", "job", job.name)
		return
	}
	ctx, cancel := context.WithTimeout(q.base, mailSendTimeout)
	defer cancel()
	if err := job.run(ctx, q.sender); err != nil {
		// The address is personal data and the body holds a live token:
		// log neither.
		q.logger.Error("sending "+q.noun+" failed", "job", job.name, "err", err)
	}
}

// submit queues a job. Without a sender nothing is queued: the job would
// issue a token no one can receive.
func (q *sendQueue[T]) submit(name string, run func(ctx context.Context, sender T) error) {
	if !q.has {
		q.logger.Warn("nothing configured to send "+q.noun+"; not sent", "job", name)
		return
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.logger.Warn("shutting down; "+q.noun+" not sent", "job", name)
		return
	}
	select {
	case q.jobs <- sendJob[T]{name: name, run: run}:
	default:
		q.logger.Error("queue full; "+q.noun+" dropped", "job", name, "queued", mailQueueSize)
	}
}

// close stops taking jobs and waits for the queued ones, at most timeout;
// then it cancels what is still running and waits for the workers to see
// that (sends honour their context).
func (q *sendQueue[T]) close(timeout time.Duration) {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		q.logger.Error(q.noun+" still queued at shutdown; abandoning it", "queued", len(q.jobs))
		q.cancel()
		<-done
	}
	q.cancel()
}
