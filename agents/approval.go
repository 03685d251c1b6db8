package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Approvals put a human in the loop. A grant with requireApproval answers
// APPROVAL_REQUIRED; Decide then opens an approval request (or reuses the
// pending one for the same call), and the agent's owner or an admin
// approves it — once, or for a time window — or denies it. An approval is
// used by the next matching Decide (see decideApproval); it never widens a
// grant: it only turns the grant's APPROVAL_REQUIRED into a pass.

// Event types of approvals, written to the outbox (approval.approved and
// approval.denied are also audit events).
const (
	EventApprovalRequested = "approval.requested"
	EventApprovalApproved  = "approval.approved"
	EventApprovalDenied    = "approval.denied"
)

// Limits of approvals.
const (
	// MaxApprovalArgumentsBytes caps the arguments kept with a request for
	// the approver to read; longer ones are cut (the digest still names
	// the whole).
	MaxApprovalArgumentsBytes = 8 << 10
	// MaxApprovalWindow caps how long a window approval may last.
	MaxApprovalWindow = 24 * time.Hour
	// MaxApprovalReasonRunes caps a denial's reason.
	MaxApprovalReasonRunes = 500
)

// Errors of approval decisions.
var (
	ErrApprovalNotFound = errors.New("approval not found")
	// ErrApprovalNotPending refuses to decide a request that was decided
	// already (or expired and was marked so).
	ErrApprovalNotPending = errors.New("approval request is not pending")
	// ErrApprovalExpired refuses to decide a request that lapsed while
	// pending.
	ErrApprovalExpired = errors.New("approval request has expired")
)

// approvalStatus is a's status at now: a pending request past ExpiresAt
// reads as expired, whether or not its row was marked yet.
func approvalStatus(a *storage.Approval, now time.Time) string {
	if a.Status == storage.ApprovalPending && !now.Before(a.ExpiresAt) {
		return storage.ApprovalExpired
	}
	return a.Status
}

// GetApproval returns the approval request, with its status as of now.
func (s *Service) GetApproval(ctx context.Context, approvalID string) (storage.Approval, error) {
	a, err := s.store.Approvals().Get(ctx, approvalID)
	if err != nil {
		return storage.Approval{}, approvalErr("get approval", err)
	}
	a.Status = approvalStatus(a, s.now())
	return *a, nil
}

func approvalErr(op string, err error) error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return ErrApprovalNotFound
	}
	return fmt.Errorf("%s: %w", op, err)
}

// ApprovalQuery selects approvals for ListApprovals.
type ApprovalQuery struct {
	OwnerUserID string // "" for every owner (admins)
	AgentID     string
	Status      string // a storage.Approval* status, "" for all
	Cursor      string
	Limit       int // see storage.ApprovalFilter
}

// ListApprovals returns approvals, newest request first, with their
// status as of now, and the cursor of the next page. A bad status, or a
// cursor that no previous page returned, is a ValidationError.
func (s *Service) ListApprovals(ctx context.Context, q ApprovalQuery) ([]storage.Approval, string, error) {
	switch q.Status {
	case "", storage.ApprovalPending, storage.ApprovalApproved, storage.ApprovalDenied, storage.ApprovalExpired:
	default:
		return nil, "", invalid("status", "must be %q, %q, %q or %q", storage.ApprovalPending, storage.ApprovalApproved,
			storage.ApprovalDenied, storage.ApprovalExpired)
	}
	if !utf8.ValidString(q.AgentID) || strings.IndexByte(q.AgentID, 0) >= 0 {
		return nil, "", nil // no agent has such an id
	}
	now := s.now()
	list, next, err := s.store.Approvals().List(ctx, storage.ApprovalFilter{OwnerUserID: q.OwnerUserID, AgentID: q.AgentID,
		Status: q.Status, Now: now, Cursor: q.Cursor, Limit: q.Limit})
	if errors.Is(err, storage.ErrInvalidValue) {
		return nil, "", invalid("cursor", "is not one a previous page returned")
	}
	if err != nil {
		return nil, "", fmt.Errorf("list approvals: %w", err)
	}
	for i := range list {
		list[i].Status = approvalStatus(&list[i], now)
	}
	return list, next, nil
}

// ApproveInput is an approver's answer.
type ApproveInput struct {
	// Mode is storage.ApprovalOnce (the default: the next matching call
	// uses it up) or storage.ApprovalWindow (every matching call until
	// Duration has passed).
	Mode string
	// Duration is the window's length, required for a window (at most
	// MaxApprovalWindow) and refused for once.
	Duration time.Duration
}

// ApproveRequest approves a pending, unexpired request on behalf of the
// user decidedBy, writing the approval.approved outbox event and a
// security audit record in the same transaction. A once approval is usable
// for Config.ApprovalTTL (then it lapses unused), a window approval for
// its Duration. Checking that decidedBy may decide is the caller's job.
func (s *Service) ApproveRequest(ctx context.Context, approvalID, decidedBy string, in ApproveInput) (storage.Approval, error) {
	now := s.now()
	var until time.Time
	switch in.Mode {
	case "", storage.ApprovalOnce:
		if in.Duration != 0 {
			return storage.Approval{}, invalid("durationSeconds", "applies to a window approval only")
		}
		in.Mode, until = storage.ApprovalOnce, now.Add(s.cfg.ApprovalTTL).Truncate(time.Millisecond)
	case storage.ApprovalWindow:
		if in.Duration <= 0 || in.Duration > MaxApprovalWindow {
			return storage.Approval{}, invalid("durationSeconds", "a window approval needs a duration between 1 and %d seconds",
				int(MaxApprovalWindow.Seconds()))
		}
		until = now.Add(in.Duration).Truncate(time.Millisecond)
	default:
		return storage.Approval{}, invalid("mode", "must be %q or %q", storage.ApprovalOnce, storage.ApprovalWindow)
	}
	return s.decideRequest(ctx, approvalID, now, func(a *storage.Approval) (string, map[string]any) {
		a.Status, a.Mode, a.DecidedBy, a.ApprovedUntil = storage.ApprovalApproved, in.Mode, decidedBy, &until
		return EventApprovalApproved, map[string]any{"mode": in.Mode, "approvedUntil": until}
	})
}

// DenyRequest denies a pending, unexpired request on behalf of the user
// decidedBy, with an optional reason for the agent, writing the
// approval.denied outbox event and a security audit record in the same
// transaction.
func (s *Service) DenyRequest(ctx context.Context, approvalID, decidedBy, reason string) (storage.Approval, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case !utf8.ValidString(reason):
		return storage.Approval{}, invalid("reason", "must be valid UTF-8")
	case utf8.RuneCountInString(reason) > MaxApprovalReasonRunes:
		return storage.Approval{}, invalid("reason", "must be at most %d characters", MaxApprovalReasonRunes)
	case strings.IndexFunc(reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0:
		return storage.Approval{}, invalid("reason", "must not contain control characters")
	}
	now := s.now()
	a, err := s.decideRequest(ctx, approvalID, now, func(a *storage.Approval) (string, map[string]any) {
		a.Status, a.DecidedBy, a.Reason = storage.ApprovalDenied, decidedBy, reason
		return EventApprovalDenied, map[string]any{"reason": reason}
	})
	if err == nil && s.cfg.Trust != nil {
		s.cfg.Trust.ApprovalDenied(a.AgentID, now)
	}
	return a, err
}

// decideRequest applies set to the pending request and stores it with its
// event and audit record, in one transaction.
func (s *Service) decideRequest(ctx context.Context, approvalID string, now time.Time,
	set func(*storage.Approval) (event string, info map[string]any)) (storage.Approval, error) {
	var out storage.Approval
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := tx.Approvals().Get(ctx, approvalID)
		if err != nil {
			return approvalErr("get approval", err)
		}
		switch approvalStatus(a, now) {
		case storage.ApprovalPending:
		case storage.ApprovalExpired:
			return ErrApprovalExpired
		default:
			return ErrApprovalNotPending
		}
		a.DecidedAt = &now
		event, info := set(a)
		if err := tx.Approvals().Decide(ctx, a); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return ErrApprovalNotPending // decided by a concurrent call
			}
			return fmt.Errorf("decide approval: %w", err)
		}
		info["approvalId"], info["agentId"], info["decidedBy"] = a.ID, a.AgentID, a.DecidedBy
		info["action"], info["resource"], info["argsDigest"] = a.Action, a.Resource, a.ArgsDigest
		if err := emit(ctx, tx, event, a.ID, info, now); err != nil {
			return err
		}
		rec := storage.AuditRecord{
			ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: event,
			PrincipalType: "user", PrincipalID: a.DecidedBy, AgentID: a.AgentID, ActingFor: a.ActingFor,
			Action: event, Resource: "approval:" + a.ID, ArgsDigest: a.ArgsDigest, Result: storage.AuditOK,
		}
		rec.Extra, _ = json.Marshal(info) // strings and times always encode
		if err := appendSecurity(ctx, tx, rec); err != nil {
			return err
		}
		out = *a
		return nil
	})
	if err != nil {
		return storage.Approval{}, err
	}
	return out, nil
}

// approvalArguments is what a request keeps of the call's arguments:
// compact JSON when they parse, storable text (valid UTF-8, no NUL) cut at
// MaxApprovalArgumentsBytes. It reports whether it cut them.
func approvalArguments(raw json.RawMessage) ([]byte, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	text := []byte(raw)
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		text = b.Bytes()
	}
	if !utf8.Valid(text) || bytes.IndexByte(text, 0) >= 0 {
		text = bytes.ReplaceAll(bytes.ToValidUTF8(text, []byte("\uFFFD")), []byte{0}, []byte("\uFFFD"))
	}
	if len(text) <= MaxApprovalArgumentsBytes {
		return text, false
	}
	cut := MaxApprovalArgumentsBytes
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut], true
}
