package authz

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/kavachos/kavach/internal/groupcommit"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// AuditWriter group-commits audit records (internal/groupcommit):
// concurrent callers share one Append (one transaction, one extension of
// the hash chain) instead of a commit each, and every caller still waits
// until its record is durable before it answers, so nothing acknowledged
// is lost on a crash.
type AuditWriter struct {
	log storage.AuditLog
	w   *groupcommit.Writer[*storage.AuditRecord]

	// Counted for tests and benchmarks: records / batches is the mean
	// batch size.
	batches, records atomic.Int64
}

// auditMaxBatch bounds one commit: large enough to absorb a burst, small
// enough that one commit stays short.
const auditMaxBatch = 256

// auditCommitTimeout bounds one group commit.
const auditCommitTimeout = 10 * time.Second

// ErrAuditClosed is returned for records that were not written because
// the writer was closed.
var ErrAuditClosed = groupcommit.ErrClosed

// NewAuditWriter starts a writer appending to log. Close stops it.
func NewAuditWriter(log storage.AuditLog) *AuditWriter {
	aw := &AuditWriter{log: log}
	aw.w = groupcommit.New(auditMaxBatch, auditCommitTimeout, aw.commit)
	return aw
}

// commit appends one batch and returns each record's outcome, filling in
// the Seq of those written.
func (aw *AuditWriter) commit(ctx context.Context, batch []*storage.AuditRecord) []error {
	log := aw.log
	aw.batches.Add(1)
	aw.records.Add(int64(len(batch)))
	recs := make([]storage.AuditRecord, len(batch))
	for i, r := range batch {
		recs[i] = *r
	}
	errs := make([]error, len(batch))
	err := log.Append(ctx, recs)
	switch {
	case err == nil:
		for i, r := range batch {
			r.Seq = recs[i].Seq
		}
	case len(batch) > 1 && (errors.Is(err, storage.ErrInvalidValue) || errors.Is(err, storage.ErrAlreadyExists)):
		// A record the store refuses (bad text, a reused id) fails the
		// whole Append; it must not fail its neighbours, so append
		// them one by one.
		for i, r := range batch {
			errs[i] = log.Append(ctx, recs[i:i+1])
			r.Seq = recs[i].Seq
		}
	default:
		// The database is down or similar: every record's error.
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// Record appends r and returns its Seq once the transaction that holds it
// has committed. An empty r.ID gets a fresh id; callers that report the id
// (an authorization decision's auditId) set it themselves. A ctx already
// done records nothing; once queued, the record is written and Record
// waits for the commit whatever ctx does, so the answer is never "maybe".
func (w *AuditWriter) Record(ctx context.Context, r storage.AuditRecord) (int64, error) {
	if r.ID == "" {
		r.ID = id.New("aud")
	}
	if err := w.w.Submit(ctx, &r); err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// Close stops the writer after committing what was queued before it. It
// may be called more than once.
func (w *AuditWriter) Close() { w.w.Close() }
