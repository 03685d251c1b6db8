package authz

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// AuditWriter group-commits audit records: concurrent callers share one
// Append (one transaction, one extension of the hash chain) instead of a
// commit each, and every caller still waits until its record is durable
// before it answers, so nothing acknowledged is lost on a crash. There is
// no timer: a batch is whatever queued while the previous commit ran, so a
// lone record is not delayed at all and batches grow with load.
type AuditWriter struct {
	log      storage.AuditLog
	reqs     chan auditReq
	stop     chan struct{}
	stopOnce sync.Once
	exited   chan struct{} // closed when run has returned

	// Counted for tests and benchmarks: records / batches is the mean
	// batch size.
	batches, records atomic.Int64
}

// auditMaxBatch bounds one commit: large enough to absorb a burst, small
// enough that one commit stays short.
const auditMaxBatch = 256

// auditCommitTimeout bounds one group commit: a stalled database must fail
// callers, not hold them forever.
const auditCommitTimeout = 10 * time.Second

// ErrAuditClosed is returned for records that were not written because
// the writer was closed.
var ErrAuditClosed = errors.New("authz: audit writer closed")

type auditReq struct {
	rec  storage.AuditRecord
	done chan auditResult // buffered: the writer never blocks on a caller
}

type auditResult struct {
	seq int64
	err error
}

// NewAuditWriter starts a writer appending to log. Close stops it.
func NewAuditWriter(log storage.AuditLog) *AuditWriter {
	w := &AuditWriter{
		log:    log,
		reqs:   make(chan auditReq, auditMaxBatch),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go w.run()
	return w
}

// Record appends r and returns its Seq once the transaction that holds it
// has committed. An empty r.ID gets a fresh id; callers that report the id
// (an authorization decision's auditId) set it themselves. A ctx already
// done records nothing; once queued, the record is written and Record
// waits for the commit whatever ctx does, so the answer is never "maybe".
func (w *AuditWriter) Record(ctx context.Context, r storage.AuditRecord) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if r.ID == "" {
		r.ID = id.New("aud")
	}
	req := auditReq{rec: r, done: make(chan auditResult, 1)}
	select {
	case w.reqs <- req:
	case <-w.stop:
		return 0, ErrAuditClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// A request queued just as the writer stopped may get no outcome: it
	// fails, as it was not written.
	select {
	case res := <-req.done:
		return res.seq, res.err
	case <-w.exited:
		select {
		case res := <-req.done:
			return res.seq, res.err
		default:
			return 0, ErrAuditClosed
		}
	}
}

// Close stops the writer after committing what was queued before it. It
// may be called more than once.
func (w *AuditWriter) Close() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.exited
}

func (w *AuditWriter) run() {
	defer close(w.exited)
	batch := make([]auditReq, 0, auditMaxBatch)
	for {
		select {
		case <-w.stop:
			for {
				batch = w.collect(batch[:0])
				if len(batch) == 0 {
					return
				}
				w.commit(batch)
			}
		case r := <-w.reqs:
			w.commit(w.collect(append(batch[:0], r)))
		}
	}
}

// collect adds what is queued, without waiting, up to auditMaxBatch.
func (w *AuditWriter) collect(batch []auditReq) []auditReq {
	for len(batch) < auditMaxBatch {
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (w *AuditWriter) commit(batch []auditReq) {
	ctx, cancel := context.WithTimeout(context.Background(), auditCommitTimeout)
	defer cancel()
	w.batches.Add(1)
	w.records.Add(int64(len(batch)))
	recs := make([]storage.AuditRecord, len(batch))
	for i, r := range batch {
		recs[i] = r.rec
	}
	err := w.log.Append(ctx, recs)
	if err == nil {
		for i, r := range batch {
			r.done <- auditResult{seq: recs[i].Seq}
		}
		return
	}
	// A record the store refuses (bad text, a reused id) fails the whole
	// Append; it must not fail its neighbours, so append them one by one.
	// Any other error (the database is down) is every record's.
	if len(batch) > 1 && (errors.Is(err, storage.ErrInvalidValue) || errors.Is(err, storage.ErrAlreadyExists)) {
		for i, r := range batch {
			err := w.log.Append(ctx, recs[i:i+1])
			r.done <- auditResult{seq: recs[i].Seq, err: err}
		}
		return
	}
	for _, r := range batch {
		r.done <- auditResult{err: err}
	}
}
