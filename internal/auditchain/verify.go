package auditchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/kavachos/kavach/storage"
)

// ErrBroken is what every *BreakError matches with errors.Is.
var ErrBroken = errors.New("auditchain: chain broken")

// Problem says how a chain is broken.
type Problem string

// Problems Verify and VerifyLog report.
const (
	// ProblemEdited: the record does not hash to its Hash (a field, or the
	// Hash, was changed).
	ProblemEdited Problem = "record does not match its hash"
	// ProblemLink: the record's PrevHash is not the previous record's Hash.
	ProblemLink Problem = "previous hash does not match the record before it"
	// ProblemMissing: no record has this Seq although a later one exists.
	ProblemMissing Problem = "record missing"
	// ProblemOrder: the record's Seq is not above the one before it
	// (reordered or duplicated).
	ProblemOrder Problem = "record out of order"
	// ProblemTruncated: the chain ends before the stored head (records at
	// the end were deleted), or does not end at the head's hash.
	ProblemTruncated Problem = "chain does not reach the stored head"
)

// BreakError reports the first place a chain is broken.
type BreakError struct {
	Seq     int64 // the first Seq that does not verify
	Problem Problem
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("auditchain: chain broken at seq %d: %s", e.Seq, e.Problem)
}

// Is makes errors.Is(err, ErrBroken) true.
func (e *BreakError) Is(target error) bool { return target == ErrBroken }

// ctxCheckEvery is how many records Verify checks between looks at ctx.
const ctxCheckEvery = 1024

// Verify checks the records that scan passes to its callback, in the order
// it passes them, against anchor: the first must have Seq anchor.Seq+1 and
// PrevHash anchor.Hash, each next one the Seq and PrevHash that follow, and
// every Hash must be the one recomputed. It returns how many records it
// checked; the first break is a *BreakError. An error from scan itself is
// returned wrapped.
func Verify(ctx context.Context, scan func(fn func(storage.AuditRecord) error) error, anchor storage.AuditLink) (int64, error) {
	prev := anchor
	var checked int64
	err := scan(func(r storage.AuditRecord) error {
		if checked%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := link(prev, &r); err != nil {
			return err
		}
		prev = storage.AuditLink{Seq: r.Seq, Hash: r.Hash}
		checked++
		return nil
	})
	var brk *BreakError
	switch {
	case err == nil:
		return checked, nil
	case errors.As(err, &brk):
		return checked, brk
	default:
		return checked, fmt.Errorf("auditchain: verify after %d records: %w", checked, err)
	}
}

// link checks that r follows prev.
func link(prev storage.AuditLink, r *storage.AuditRecord) error {
	switch {
	case r.Seq <= prev.Seq:
		return &BreakError{Seq: r.Seq, Problem: ProblemOrder}
	case r.Seq > prev.Seq+1:
		return &BreakError{Seq: prev.Seq + 1, Problem: ProblemMissing}
	case !bytes.Equal(r.PrevHash, prev.Hash):
		return &BreakError{Seq: r.Seq, Problem: ProblemLink}
	case !bytes.Equal(Hash(prev.Hash, r), r.Hash):
		return &BreakError{Seq: r.Seq, Problem: ProblemEdited}
	}
	return nil
}

// verifyTries bounds how often VerifyLog starts over because retention
// moved the anchor while it was reading.
const verifyTries = 3

// VerifyLog verifies the whole stored chain: from the anchor, through
// every record, to the head as it was when VerifyLog started (records
// appended meanwhile are checked too). Retention running at the same time
// deletes records under the scan; VerifyLog notices that the anchor moved
// and starts over rather than reporting a false break.
func VerifyLog(ctx context.Context, log storage.AuditLog) (int64, error) {
	for try := 1; ; try++ {
		anchor, err := log.Anchor(ctx)
		if err != nil {
			return 0, fmt.Errorf("auditchain: read anchor: %w", err)
		}
		n, err := verifyTo(ctx, log, anchor)
		if err == nil || !errors.Is(err, ErrBroken) || try == verifyTries {
			return n, err
		}
		now, aerr := log.Anchor(ctx)
		if aerr != nil {
			return n, err
		}
		if now.Seq == anchor.Seq {
			return n, err
		}
	}
}

func verifyTo(ctx context.Context, log storage.AuditLog, anchor storage.AuditLink) (int64, error) {
	head, err := log.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("auditchain: read head: %w", err)
	}
	// The head's own record, once seen, must carry the head's hash.
	reached := head.Seq == anchor.Seq && bytes.Equal(head.Hash, anchor.Hash)
	last := anchor.Seq
	n, err := Verify(ctx, func(fn func(storage.AuditRecord) error) error {
		return log.Scan(ctx, anchor.Seq+1, func(r storage.AuditRecord) error {
			if err := fn(r); err != nil {
				return err
			}
			last = r.Seq
			if r.Seq == head.Seq {
				reached = bytes.Equal(r.Hash, head.Hash)
			}
			return nil
		})
	}, anchor)
	if err != nil {
		return n, err
	}
	if !reached {
		seq := last + 1
		if last >= head.Seq {
			seq = head.Seq
		}
		return n, &BreakError{Seq: seq, Problem: ProblemTruncated}
	}
	return n, nil
}
