package storage

import (
	"context"
	"time"
)

// Audit record kinds.
const (
	AuditKindDecision = "decision" // an authorization decision (Decide)
	AuditKindSecurity = "security" // a security event: sign-in, token issued, agent created, …
)

// Audit record results.
const (
	AuditAllow = "allow"
	AuditDeny  = "deny"
	AuditOK    = "ok"
	AuditFail  = "fail"
)

// AuditRecord is one entry of the audit log (table kavach_audit). Records
// form a hash chain: each Hash covers the record and the Hash before it
// (PrevHash), so editing, removing or reordering a stored record breaks
// every link after it. The chain's encoding lives in internal/auditchain;
// storage computes it on Append and never changes a record afterwards.
type AuditRecord struct {
	Seq           int64 // assigned by Append: 1, 2, 3, … with no gaps, across nodes
	ID            string
	At            time.Time // stored (and hashed) at millisecond precision, UTC
	Kind          string    // AuditKindDecision or AuditKindSecurity
	Event         string    // e.g. "authorize", "sign_in", "token.issued", "agent.created"
	PrincipalType string    // "user" or "agent"
	PrincipalID   string
	AgentID       string
	ActingFor     string   // the user an agent acts for, if any
	Chain         []string // delegation chain, outermost first; nil when none
	Action        string
	Resource      string
	ArgsDigest    string // digest of the call's arguments, never the arguments
	Result        string // AuditAllow, AuditDeny, AuditOK, AuditFail
	Reason        string // a stable reason code, e.g. PERMISSION_DENIED
	LatencyMicros int64
	IP            string
	UserAgent     string
	Extra         []byte // JSON, kept byte for byte; nil when none
	PrevHash      []byte // set by Append
	Hash          []byte // set by Append
}

// AuditLink is a position in the chain: a record's Seq and Hash. The
// anchor is the link the stored chain starts from (the last record
// retention deleted, or the genesis: Seq 0 and 32 zero bytes); the head is
// the last record appended.
type AuditLink struct {
	Seq  int64
	Hash []byte
}

// AuditQueryMax is the largest page Query returns.
const AuditQueryMax = 1000

// AuditFilter selects records for Query. Empty fields match everything;
// From is inclusive and To exclusive.
type AuditFilter struct {
	PrincipalID string
	AgentID     string
	Kind        string
	Event       string
	Action      string
	Result      string
	From, To    time.Time
	// Cursor is the next value of a previous page ("" for the first page).
	Cursor string
	// Limit is the page size: 0 means 100, above AuditQueryMax means
	// AuditQueryMax.
	Limit int
}

// AuditLog stores the hash-chained audit log.
type AuditLog interface {
	// Append stores recs in one transaction, in order, and sets each one's
	// Seq, PrevHash and Hash (and At: now when zero, else truncated to the
	// millisecond). The chain head is read and extended under a lock, so
	// concurrent appenders, on one node or several, never fork the chain
	// or leave a gap. An empty ID or text that cannot be stored (see
	// ErrInvalidValue) fails the whole call with ErrInvalidValue, a
	// duplicate ID with ErrAlreadyExists; then nothing is stored. Inside
	// InTx the head stays locked until the outer transaction ends.
	Append(ctx context.Context, recs []AuditRecord) error
	// Query returns the records matching f, newest first, and the cursor of
	// the next page ("" after the last one). A cursor that Query did not
	// return is ErrInvalidValue.
	Query(ctx context.Context, f AuditFilter) ([]AuditRecord, string, error)
	// Scan calls fn for each record with Seq >= fromSeq in Seq order, up to
	// the head at the time Scan starts. It reads a page at a time and holds
	// no connection while fn runs, so an export of any size takes constant
	// memory. An error from fn stops the scan and is returned as is.
	Scan(ctx context.Context, fromSeq int64, fn func(AuditRecord) error) error
	// DeleteBefore deletes the longest prefix of the chain whose records
	// are all older than t (a record older than t that follows a newer one
	// stays), moves the anchor to the last record it deleted, and returns
	// how many it deleted. It deletes in chunks, each in its own
	// transaction, so appends are not held up for long.
	DeleteBefore(ctx context.Context, t time.Time) (int, error)
	// Anchor returns the link the stored chain starts from.
	Anchor(ctx context.Context) (AuditLink, error)
	// Head returns the link of the last record appended (the genesis when
	// none has been). Retention never moves it.
	Head(ctx context.Context) (AuditLink, error)
}
