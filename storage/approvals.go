package storage

import (
	"context"
	"time"
)

// Approval statuses. A pending request whose ExpiresAt has passed is
// expired whether or not its row says so yet: rows are marked lazily (see
// Approvals.CreatePending and ExpirePending), readers compare ExpiresAt.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
)

// Approval modes, chosen by the approver.
const (
	ApprovalOnce   = "once"   // the next matching call uses it up
	ApprovalWindow = "window" // every matching call until ApprovedUntil
)

// Approval is a request for a human's approval of one agent call, and the
// answer once there is one (table kavach_approval). A call matches it when
// agent, action, resource and arguments digest are equal.
type Approval struct {
	ID          string
	AgentID     string
	OwnerUserID *string // the agent's owner; nil for an agent nobody owns
	ActingFor   string  // the user a delegated agent acts for, if any
	Action      string
	Resource    string
	ArgsDigest  string // "" when the call had no arguments
	// Arguments are the call's arguments as text, so the approver can read
	// them, cut at a cap set by package agents (ArgumentsTruncated then
	// tells so). Nil when the call had none.
	Arguments          []byte
	ArgumentsTruncated bool
	Status             string
	Mode               string    // ApprovalOnce or ApprovalWindow once approved; "" otherwise
	RequestedAt        time.Time // when the call asked
	ExpiresAt          time.Time // a request still pending then has lapsed
	DecidedAt          *time.Time
	DecidedBy          string // the id of the user who approved or denied
	Reason             string // the denial's reason, if the approver gave one
	// ApprovedUntil ends an approval: it is usable while now is before it
	// (and, for ApprovalOnce, while ConsumedAt is nil).
	ApprovedUntil *time.Time
	ConsumedAt    *time.Time // when a once approval was used
}

// ApprovalKey is what an approval is for: one agent's call, the arguments
// named by their digest.
type ApprovalKey struct {
	AgentID, Action, Resource, ArgsDigest string
}

// ApprovalListMax is the largest page List returns.
const ApprovalListMax = 200

// ApprovalFilter selects approvals for List. Empty fields match
// everything.
type ApprovalFilter struct {
	OwnerUserID string
	AgentID     string
	// Status as of Now: ApprovalPending matches pending requests that have
	// not expired, ApprovalExpired also pending ones that have.
	Status string
	Now    time.Time
	// Cursor is the next value of a previous page ("" for the first page).
	Cursor string
	// Limit is the page size: 0 means 50, above ApprovalListMax means
	// ApprovalListMax.
	Limit int
}

// Approvals stores approval requests and their answers.
type Approvals interface {
	// CreatePending stores a, a pending request, unless the key already has
	// a pending request (one at most: a unique index holds it across
	// concurrent callers and nodes); it reports whether it stored a. Pending
	// requests of the key that expired by a.RequestedAt are marked expired
	// first, so they do not count. It uses the caller's transaction or one
	// of its own.
	CreatePending(ctx context.Context, a *Approval) (bool, error)
	// Get returns the approval as stored (a lapsed request may still read
	// pending; compare ExpiresAt).
	Get(ctx context.Context, id string) (*Approval, error)
	// FindPending returns the key's pending request that has not expired at
	// now, or ErrNotFound.
	FindPending(ctx context.Context, key ApprovalKey, now time.Time) (*Approval, error)
	// FindUsable returns an approval of the key usable at now — approved,
	// ApprovedUntil after now and, for a once approval, not consumed — or
	// ErrNotFound. A window approval comes before a once approval, so that
	// a once approval is kept while a window covers the call.
	FindUsable(ctx context.Context, key ApprovalKey, now time.Time) (*Approval, error)
	// Consume marks the once approval id used at now if it is still usable
	// then. Exactly one of any number of concurrent callers succeeds; the
	// others (and unknown, window or spent approvals) get ErrNotFound.
	Consume(ctx context.Context, id string, now time.Time) error
	// Decide writes a's Status (ApprovalApproved or ApprovalDenied), Mode,
	// DecidedAt, DecidedBy, Reason and ApprovedUntil if the stored request
	// is pending and has not expired at a.DecidedAt. Otherwise it changes
	// nothing and returns ErrNotFound (Get tells why). Of concurrent
	// callers, one at most succeeds.
	Decide(ctx context.Context, a *Approval) error
	// List returns the approvals matching f, newest request first, and the
	// cursor of the next page ("" after the last one). A cursor that List
	// did not return is ErrInvalidValue.
	List(ctx context.Context, f ApprovalFilter) ([]Approval, string, error)
	// ExpirePending marks every pending request whose ExpiresAt is at or
	// before now expired and returns how many it marked.
	ExpirePending(ctx context.Context, now time.Time) (int, error)
}
