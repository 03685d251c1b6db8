package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/auditchain"
	"github.com/kavachos/kavach/storage"
)

// auditLog keeps the hash chain in three tables: kavach_audit (the
// records), kavach_audit_head (one row: the last Seq and Hash appended) and
// kavach_audit_anchor (one row: the link retention deleted last). Appends
// serialize on the head row; retention on the anchor row, so the two do
// not wait for each other.
type auditLog struct{ s *Store }

const auditColumns = `seq, id, at, kind, event, principal_type, principal_id, agent_id, acting_for, chain,
	action, resource, args_digest, result, reason, latency_us, ip, user_agent, extra, prev_hash, hash`

const auditColumnCount = 21

// auditRow scans the chain and extra as the stored text.
type auditRow struct {
	storage.AuditRecord
	chain, extra string
}

func auditFields(r *auditRow) []any {
	return []any{&r.Seq, &r.ID, &r.At, &r.Kind, &r.Event, &r.PrincipalType, &r.PrincipalID, &r.AgentID,
		&r.ActingFor, &r.chain, &r.Action, &r.Resource, &r.ArgsDigest, &r.Result, &r.Reason,
		&r.LatencyMicros, &r.IP, &r.UserAgent, &r.extra, &r.PrevHash, &r.Hash}
}

func auditRecords(op string, rows []auditRow) ([]storage.AuditRecord, error) {
	out := make([]storage.AuditRecord, len(rows))
	for i := range rows {
		out[i] = rows[i].AuditRecord
		if rows[i].chain != "[]" {
			if err := json.Unmarshal([]byte(rows[i].chain), &out[i].Chain); err != nil {
				return nil, fmt.Errorf("storage: %s: seq %d: chain is not a JSON array of strings: %w", op, rows[i].Seq, err)
			}
		}
		if rows[i].extra != "" {
			out[i].Extra = []byte(rows[i].extra)
		}
	}
	return out, nil
}

// auditInsertSizes are the row counts of the multi-row INSERTs Append
// uses: a batch is split greedily into them, so a few statements (each
// prepared once) cover every batch size with few round trips.
var auditInsertSizes = []int{64, 16, 4, 1}

var auditInsert = func() map[int]string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", auditColumnCount), ", ") + ")"
	m := make(map[int]string, len(auditInsertSizes))
	for _, n := range auditInsertSizes {
		m[n] = `INSERT INTO kavach_audit (` + auditColumns + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	}
	return m
}()

// Append stores recs; see storage.AuditLog. The UPDATE … RETURNING on the
// head row is the lock: PostgreSQL holds the row until commit, and SQLite
// transactions begin IMMEDIATE, holding the database's write lock.
func (r auditLog) Append(ctx context.Context, recs []storage.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	chains := make([]string, len(recs))
	t := now()
	for i := range recs {
		rec := &recs[i]
		if err := checkAuditRecord(rec); err != nil {
			return fmt.Errorf("storage: audit.append: record %d: %w", i, err)
		}
		chains[i] = "[]"
		if len(rec.Chain) > 0 {
			b, err := json.Marshal(rec.Chain)
			if err != nil {
				return fmt.Errorf("storage: audit.append: record %d: chain: %w", i, err)
			}
			chains[i] = string(b)
		}
		if rec.At.IsZero() {
			rec.At = t
		} else {
			rec.At = rec.At.UTC().Truncate(time.Millisecond)
		}
	}
	err := r.s.InTx(ctx, func(tx storage.Store) error {
		s := tx.(*Store)
		var last int64
		var prev []byte
		if err := s.get(ctx, "audit.append: lock head",
			`UPDATE kavach_audit_head SET seq = seq + ? WHERE id = 1 RETURNING seq, hash`,
			[]any{int64(len(recs))}, &last, &prev); err != nil {
			return err
		}
		seq := last - int64(len(recs))
		for i := range recs {
			seq++
			recs[i].Seq = seq
			recs[i].PrevHash = prev
			recs[i].Hash = auditchain.Hash(prev, &recs[i])
			prev = recs[i].Hash
		}
		if err := r.insert(ctx, s, recs, chains); err != nil {
			return err
		}
		_, err := s.exec(ctx, "audit.append: move head", `UPDATE kavach_audit_head SET hash = ? WHERE id = 1`, prev)
		return err
	})
	if err != nil {
		for i := range recs {
			recs[i].Seq, recs[i].PrevHash, recs[i].Hash = 0, nil, nil
		}
	}
	return err
}

func (auditLog) insert(ctx context.Context, s *Store, recs []storage.AuditRecord, chains []string) error {
	args := make([]any, 0, min(len(recs), auditInsertSizes[0])*auditColumnCount)
	for i := 0; i < len(recs); {
		n := auditInsertSizes[len(auditInsertSizes)-1]
		for _, size := range auditInsertSizes {
			if size <= len(recs)-i {
				n = size
				break
			}
		}
		args = args[:0]
		for j := i; j < i+n; j++ {
			x := &recs[j]
			args = append(args, x.Seq, x.ID, x.At, x.Kind, x.Event, x.PrincipalType, x.PrincipalID, x.AgentID,
				x.ActingFor, chains[j], x.Action, x.Resource, x.ArgsDigest, x.Result, x.Reason,
				x.LatencyMicros, x.IP, x.UserAgent, string(x.Extra), x.PrevHash, x.Hash)
		}
		if _, err := s.exec(ctx, "audit.append", auditInsert[n], args...); err != nil {
			return err
		}
		i += n
	}
	return nil
}

// checkAuditRecord refuses, before anything is written, what one of the
// drivers would refuse half-way through a batch, and what could not be
// read back as it was hashed: the chain is stored as JSON, which would
// replace invalid UTF-8.
func checkAuditRecord(r *storage.AuditRecord) error {
	if r.ID == "" {
		return fmt.Errorf("id is empty: %w", storage.ErrInvalidValue)
	}
	fields := []struct{ name, v string }{
		{"id", r.ID}, {"kind", r.Kind}, {"event", r.Event}, {"principal_type", r.PrincipalType},
		{"principal_id", r.PrincipalID}, {"agent_id", r.AgentID}, {"acting_for", r.ActingFor},
		{"action", r.Action}, {"resource", r.Resource}, {"args_digest", r.ArgsDigest}, {"result", r.Result},
		{"reason", r.Reason}, {"ip", r.IP}, {"user_agent", r.UserAgent}, {"extra", string(r.Extra)},
	}
	for _, f := range fields {
		if err := checkText(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	for i, c := range r.Chain {
		if err := checkText(c); err != nil {
			return fmt.Errorf("chain[%d]: %w", i, err)
		}
	}
	return nil
}

// checkText reports why s cannot be stored as text. It never quotes s.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("text is not valid UTF-8: %w", storage.ErrInvalidValue)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("text contains NUL: %w", storage.ErrInvalidValue)
	}
	return nil
}

// auditPageDefault is Query's page size when the filter names none.
const auditPageDefault = 100

// Query returns a page, newest first. The WHERE clause holds only the
// filters that are set, so each combination has its own plan (and the
// number of distinct statements stays bounded: 2^9).
func (r auditLog) Query(ctx context.Context, f storage.AuditFilter) ([]storage.AuditRecord, string, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = auditPageDefault
	case limit > storage.AuditQueryMax:
		limit = storage.AuditQueryMax
	}
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{
		{"principal_id", f.PrincipalID}, {"agent_id", f.AgentID}, {"kind", f.Kind},
		{"event", f.Event}, {"action", f.Action}, {"result", f.Result},
	} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if !f.From.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.From.UTC())
	}
	if !f.To.IsZero() {
		where = append(where, "at < ?")
		args = append(args, f.To.UTC())
	}
	if f.Cursor != "" {
		before, err := decodeAuditCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("storage: audit.query: %w", err)
		}
		where = append(where, "seq < ?")
		args = append(args, before)
	}
	query := `SELECT ` + auditColumns + ` FROM kavach_audit`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := list(ctx, r.s, "audit.query", query, args, auditFields)
	if err != nil {
		return nil, "", err
	}
	recs, err := auditRecords("audit.query", rows)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(recs) > limit {
		recs = recs[:limit]
		next = encodeAuditCursor(recs[limit-1].Seq)
	}
	return recs, next, nil
}

// A cursor is the Seq the next page starts below, behind a version letter,
// in base64url: opaque to clients, and cheap to check.
func encodeAuditCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func decodeAuditCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 1 && b[0] == 's' {
		if seq, err := strconv.ParseInt(string(b[1:]), 10, 64); err == nil && seq > 0 {
			return seq, nil
		}
	}
	return 0, fmt.Errorf("cursor is not one Query returned: %w", storage.ErrInvalidValue)
}

// auditScanPage is how many records Scan reads per query.
const auditScanPage = 500

// Scan pages by Seq (keyset), so each query is short: no read transaction
// stays open for the length of an export, and fn may be slow.
func (r auditLog) Scan(ctx context.Context, fromSeq int64, fn func(storage.AuditRecord) error) error {
	head, err := r.Head(ctx)
	if err != nil {
		return err
	}
	next := max(fromSeq, 1)
	for next <= head.Seq {
		rows, err := list(ctx, r.s, "audit.scan",
			`SELECT `+auditColumns+` FROM kavach_audit WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`,
			[]any{next, head.Seq, auditScanPage}, auditFields)
		if err != nil {
			return err
		}
		recs, err := auditRecords("audit.scan", rows)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(recs) < auditScanPage {
			return nil
		}
		next = recs[len(recs)-1].Seq + 1
	}
	return nil
}

// auditDeleteChunk is how many records one retention transaction deletes
// at most.
const auditDeleteChunk = 5000

func (r auditLog) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		n, more, err := r.deleteChunk(ctx, t)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// deleteChunk deletes up to auditDeleteChunk records from the start of the
// chain, stopping at the first one not older than t, and moves the anchor
// to the last one it deleted. more reports that it stopped only because
// the chunk was full. The anchor row is locked first (a no-op UPDATE), so
// concurrent retention runs take turns and each sees the other's anchor.
func (r auditLog) deleteChunk(ctx context.Context, t time.Time) (n int, more bool, err error) {
	err = r.s.InTx(ctx, func(tx storage.Store) error {
		s := tx.(*Store)
		var anchor int64
		if err := s.get(ctx, "audit.delete_before: lock anchor",
			`UPDATE kavach_audit_anchor SET seq = seq WHERE id = 1 RETURNING seq`, nil, &anchor); err != nil {
			return err
		}
		type seqAt struct {
			seq int64
			at  time.Time
		}
		rows, err := list(ctx, s, "audit.delete_before: find prefix",
			`SELECT seq, at FROM kavach_audit WHERE seq > ? ORDER BY seq LIMIT ?`,
			[]any{anchor, auditDeleteChunk}, func(x *seqAt) []any { return []any{&x.seq, &x.at} })
		if err != nil {
			return err
		}
		cut := 0 // how many of rows to delete
		for cut < len(rows) && rows[cut].at.Before(t) {
			cut++
		}
		if cut == 0 {
			return nil
		}
		last := rows[cut-1].seq
		var hash []byte
		if err := s.get(ctx, "audit.delete_before: read new anchor",
			`SELECT hash FROM kavach_audit WHERE seq = ?`, []any{last}, &hash); err != nil {
			return err
		}
		deleted, err := s.exec(ctx, "audit.delete_before",
			`DELETE FROM kavach_audit WHERE seq > ? AND seq <= ?`, anchor, last)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, "audit.delete_before: move anchor",
			`UPDATE kavach_audit_anchor SET seq = ?, hash = ? WHERE id = 1`, last, hash); err != nil {
			return err
		}
		n, more = int(deleted), cut == auditDeleteChunk
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}

func (r auditLog) Anchor(ctx context.Context) (storage.AuditLink, error) {
	return r.link(ctx, "audit.anchor", `SELECT seq, hash FROM kavach_audit_anchor WHERE id = 1`)
}

func (r auditLog) Head(ctx context.Context) (storage.AuditLink, error) {
	return r.link(ctx, "audit.head", `SELECT seq, hash FROM kavach_audit_head WHERE id = 1`)
}

func (r auditLog) link(ctx context.Context, op, query string) (storage.AuditLink, error) {
	var l storage.AuditLink
	if err := r.s.get(ctx, op, query, nil, &l.Seq, &l.Hash); err != nil {
		return storage.AuditLink{}, err
	}
	return l, nil
}
