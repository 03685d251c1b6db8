package sqlstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kavachos/kavach/storage"
)

type approvals struct{ s *Store }

const approvalColumns = `id, agent_id, owner_user_id, acting_for, action, resource, args_digest, arguments,
	arguments_truncated, status, mode, requested_at, expires_at, decided_at, decided_by, reason, approved_until, consumed_at`

// approvalRow scans the arguments as nullable text.
type approvalRow struct {
	storage.Approval
	arguments *string
}

func approvalFields(a *approvalRow) []any {
	return []any{&a.ID, &a.AgentID, &a.OwnerUserID, &a.ActingFor, &a.Action, &a.Resource, &a.ArgsDigest, &a.arguments,
		&a.ArgumentsTruncated, &a.Status, &a.Mode, &a.RequestedAt, &a.ExpiresAt, &a.DecidedAt, &a.DecidedBy, &a.Reason,
		&a.ApprovedUntil, &a.ConsumedAt}
}

func (a *approvalRow) record() storage.Approval {
	out := a.Approval
	if a.arguments != nil {
		out.Arguments = []byte(*a.arguments)
	}
	return out
}

// keyWhere selects the rows of one call.
const approvalKeyWhere = `agent_id = ? AND action = ? AND resource = ? AND args_digest = ?`

func keyArgs(k storage.ApprovalKey, more ...any) []any {
	return append([]any{k.AgentID, k.Action, k.Resource, k.ArgsDigest}, more...)
}

func (r approvals) CreatePending(ctx context.Context, a *storage.Approval) (bool, error) {
	stamp(&a.RequestedAt, now())
	a.Status = storage.ApprovalPending
	var args *string
	if a.Arguments != nil {
		v := string(a.Arguments)
		args = &v
	}
	var created bool
	err := r.s.InTx(ctx, func(tx storage.Store) error {
		st := tx.(*Store)
		key := storage.ApprovalKey{AgentID: a.AgentID, Action: a.Action, Resource: a.Resource, ArgsDigest: a.ArgsDigest}
		if _, err := st.exec(ctx, "approvals.expire_key",
			`UPDATE kavach_approval SET status = 'expired' WHERE `+approvalKeyWhere+` AND status = 'pending' AND expires_at <= ?`,
			keyArgs(key, a.RequestedAt.UTC())...); err != nil {
			return err
		}
		// DO NOTHING instead of a unique violation: on PostgreSQL a
		// violation would abort the caller's transaction, which wants to
		// read the request that won.
		n, err := st.exec(ctx, "approvals.create",
			`INSERT INTO kavach_approval (`+approvalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`,
			a.ID, a.AgentID, a.OwnerUserID, a.ActingFor, a.Action, a.Resource, a.ArgsDigest, args,
			a.ArgumentsTruncated, a.Status, a.Mode, a.RequestedAt.UTC(), a.ExpiresAt.UTC(), a.DecidedAt, a.DecidedBy, a.Reason,
			a.ApprovedUntil, a.ConsumedAt)
		created = n == 1
		return err
	})
	return created, err
}

func (r approvals) one(ctx context.Context, op, where string, args []any) (*storage.Approval, error) {
	var row approvalRow
	if err := r.s.get(ctx, op, `SELECT `+approvalColumns+` FROM kavach_approval WHERE `+where, args, approvalFields(&row)...); err != nil {
		return nil, err
	}
	a := row.record()
	return &a, nil
}

func (r approvals) Get(ctx context.Context, id string) (*storage.Approval, error) {
	return r.one(ctx, "approvals.get", `id = ?`, []any{id})
}

func (r approvals) FindPending(ctx context.Context, key storage.ApprovalKey, now time.Time) (*storage.Approval, error) {
	return r.one(ctx, "approvals.find_pending", approvalKeyWhere+` AND status = 'pending' AND expires_at > ?`,
		keyArgs(key, now.UTC()))
}

func (r approvals) FindUsable(ctx context.Context, key storage.ApprovalKey, now time.Time) (*storage.Approval, error) {
	return r.one(ctx, "approvals.find_usable", approvalKeyWhere+` AND status = 'approved' AND approved_until > ?
		AND (mode = 'window' OR consumed_at IS NULL)
		ORDER BY CASE mode WHEN 'window' THEN 0 ELSE 1 END, decided_at, id LIMIT 1`,
		keyArgs(key, now.UTC()))
}

func (r approvals) Consume(ctx context.Context, id string, now time.Time) error {
	return r.s.execOne(ctx, "approvals.consume",
		`UPDATE kavach_approval SET consumed_at = ?
		WHERE id = ? AND status = 'approved' AND mode = 'once' AND consumed_at IS NULL AND approved_until > ?`,
		now.UTC(), id, now.UTC())
}

func (r approvals) Decide(ctx context.Context, a *storage.Approval) error {
	if a.DecidedAt == nil {
		return fmt.Errorf("storage: approvals.decide: no decision time: %w", storage.ErrInvalidValue)
	}
	return r.s.execOne(ctx, "approvals.decide",
		`UPDATE kavach_approval SET status = ?, mode = ?, decided_at = ?, decided_by = ?, reason = ?, approved_until = ?
		WHERE id = ? AND status = 'pending' AND expires_at > ?`,
		a.Status, a.Mode, a.DecidedAt.UTC(), a.DecidedBy, a.Reason, a.ApprovedUntil, a.ID, a.DecidedAt.UTC())
}

const approvalPageDefault = 50

// List pages by (requested_at, id), newest first (keyset pagination).
func (r approvals) List(ctx context.Context, f storage.ApprovalFilter) ([]storage.Approval, string, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = approvalPageDefault
	case limit > storage.ApprovalListMax:
		limit = storage.ApprovalListMax
	}
	var where []string
	var args []any
	if f.OwnerUserID != "" {
		where, args = append(where, "owner_user_id = ?"), append(args, f.OwnerUserID)
	}
	if f.AgentID != "" {
		where, args = append(where, "agent_id = ?"), append(args, f.AgentID)
	}
	switch f.Status {
	case "":
	case storage.ApprovalPending:
		where, args = append(where, "status = 'pending' AND expires_at > ?"), append(args, f.Now.UTC())
	case storage.ApprovalExpired:
		where, args = append(where, "(status = 'expired' OR status = 'pending' AND expires_at <= ?)"), append(args, f.Now.UTC())
	default:
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Cursor != "" {
		at, id, err := decodeApprovalCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("storage: approvals.list: %w", err)
		}
		where = append(where, "(requested_at < ? OR requested_at = ? AND id < ?)")
		args = append(args, at, at, id)
	}
	query := `SELECT ` + approvalColumns + ` FROM kavach_approval`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY requested_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := list(ctx, r.s, "approvals.list", query, args, approvalFields)
	if err != nil {
		return nil, "", err
	}
	out := make([]storage.Approval, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeApprovalCursor(out[limit-1].RequestedAt, out[limit-1].ID)
	}
	return out, next, nil
}

// A cursor is the (requested_at, id) the next page starts below, behind a
// version letter, in base64url: opaque to clients.
func encodeApprovalCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("r" + strconv.FormatInt(at.UnixMilli(), 10) + "|" + id))
}

func decodeApprovalCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 1 && b[0] == 'r' {
		if ms, id, ok := strings.Cut(string(b[1:]), "|"); ok && id != "" {
			if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
				return time.UnixMilli(n).UTC(), id, nil
			}
		}
	}
	return time.Time{}, "", fmt.Errorf("cursor is not one List returned: %w", storage.ErrInvalidValue)
}

func (r approvals) ExpirePending(ctx context.Context, now time.Time) (int, error) {
	n, err := r.s.exec(ctx, "approvals.expire",
		`UPDATE kavach_approval SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?`, now.UTC())
	return int(n), err
}
