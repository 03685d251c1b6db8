package users

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kavachos/kavach/internal/mail"
)

// mailQueue runs mail jobs off the request path: whether a message is sent
// (the account exists) must not show in response timing, and a slow SMTP
// server must not hold requests. A fixed number of workers drain a bounded
// queue; when the queue is full the job is dropped and logged rather than
// letting memory grow. close drains what was queued, for a bounded time.
type mailQueue struct {
	mailer mail.Mailer
	logger *slog.Logger
	jobs   chan mailJob
	wg     sync.WaitGroup
	mu     sync.RWMutex // guards closed against a send on a closed channel
	closed bool
	// base is the parent of every job's context; close cancels it when the
	// drain deadline passes, so a hung SMTP server cannot hold shutdown.
	base   context.Context
	cancel context.CancelFunc
}

// mailJob prepares (e.g. issues a token) and sends one message.
type mailJob struct {
	name string
	run  func(ctx context.Context, m mail.Mailer) error
}

const (
	mailWorkers     = 8
	mailQueueSize   = 1024
	mailSendTimeout = 30 * time.Second
	// MailDrainTimeout is how long Close waits for queued mail before it
	// abandons what is left (and logs how much).
	MailDrainTimeout = 10 * time.Second
)

func (q *mailQueue) start(m mail.Mailer, logger *slog.Logger) {
	q.mailer, q.logger = m, logger
	q.jobs = make(chan mailJob, mailQueueSize)
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

func (q *mailQueue) run(job mailJob) {
	if q.base.Err() != nil {
		q.logger.Warn("shutting down; queued email abandoned", "email", job.name)
		return
	}
	ctx, cancel := context.WithTimeout(q.base, mailSendTimeout)
	defer cancel()
	if err := job.run(ctx, q.mailer); err != nil {
		// The address is personal data and the body holds a live token:
		// log neither.
		q.logger.Error("sending email failed", "email", job.name, "err", err)
	}
}

// submit queues a job. Without a mailer nothing is queued: the job would
// issue a token no one can receive.
func (q *mailQueue) submit(name string, run func(ctx context.Context, m mail.Mailer) error) {
	if q.mailer == nil {
		q.logger.Warn("no mailer configured; email not sent", "email", name)
		return
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.logger.Warn("shutting down; email not sent", "email", name)
		return
	}
	select {
	case q.jobs <- mailJob{name: name, run: run}:
	default:
		q.logger.Error("mail queue full; email dropped", "email", name, "queued", mailQueueSize)
	}
}

// close stops taking jobs and waits for the queued ones, at most timeout;
// then it cancels what is still running and waits for the workers to see
// that (sends honour their context).
func (q *mailQueue) close(timeout time.Duration) {
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
		q.logger.Error("mail still queued at shutdown; abandoning it", "queued", len(q.jobs))
		q.cancel()
		<-done
	}
	q.cancel()
}
