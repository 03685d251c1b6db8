package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kavachos/kavach/internal/auditchain"
	"github.com/kavachos/kavach/storage"
)

var auditTests = []test{
	{"AppendAssignsChain", testAuditAppendAssignsChain},
	{"RoundTrip", testAuditRoundTrip},
	{"QueryFilters", testAuditQueryFilters},
	{"QueryCursor", testAuditQueryCursor},
	{"QueryLimitCapped", testAuditQueryLimitCapped},
	{"Scan", testAuditScan},
	{"ConcurrentAppends", testAuditConcurrentAppends},
	{"DeleteBefore", testAuditDeleteBefore},
	{"DeleteBeforeStopsAtNewer", testAuditDeleteBeforeStopsAtNewer},
	{"DeleteBeforeManyChunks", testAuditDeleteBeforeManyChunks},
	{"InvalidValues", testAuditInvalidValues},
	{"DuplicateIDStoresNothing", testAuditDuplicateID},
	{"RolledBackTxLeavesNoGap", testAuditRolledBackTx},
}

// newAuditRecord returns a decision record with every field set.
func newAuditRecord() storage.AuditRecord {
	return storage.AuditRecord{
		ID: newID("aud"), At: now(), Kind: storage.AuditKindDecision, Event: "authorize",
		PrincipalType: "agent", PrincipalID: "agt_1", AgentID: "agt_1", ActingFor: "usr_1",
		Chain: []string{"usr_1", "agt_0", "agt_1"}, Action: "read", Resource: "mcp:github:repos",
		ArgsDigest: "sha256:" + randomHex(32), Result: storage.AuditAllow, Reason: "", LatencyMicros: 42,
		IP: "2001:db8::7", UserAgent: "storagetest", Extra: []byte(`{"b": 1, "a": [true]}`),
	}
}

func appendAudit(t testing.TB, s storage.Store, recs ...storage.AuditRecord) []storage.AuditRecord {
	t.Helper()
	must(t, "append audit", s.Audit().Append(t.Context(), recs))
	return recs
}

// appendAuditN appends n records in batches of at most batch.
func appendAuditN(t testing.TB, s storage.Store, n, batch int, edit func(i int, r *storage.AuditRecord)) {
	t.Helper()
	for i := 0; i < n; i += batch {
		recs := make([]storage.AuditRecord, min(batch, n-i))
		for j := range recs {
			recs[j] = newAuditRecord()
			if edit != nil {
				edit(i+j, &recs[j])
			}
		}
		appendAudit(t, s, recs...)
	}
}

func scanAudit(t testing.TB, s storage.Store, from int64) []storage.AuditRecord {
	t.Helper()
	var out []storage.AuditRecord
	must(t, "scan", s.Audit().Scan(t.Context(), from, func(r storage.AuditRecord) error {
		out = append(out, r)
		return nil
	}))
	return out
}

func seqs(recs []storage.AuditRecord) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// seqRange returns from, from±1, …, to.
func seqRange(from, to int64) []int64 {
	var out []int64
	step := int64(1)
	if to < from {
		step = -1
	}
	for s := from; ; s += step {
		out = append(out, s)
		if s == to {
			return out
		}
	}
}

// wantVerified fails the test unless the stored chain verifies and has
// checked records after the anchor.
func wantVerified(t testing.TB, s storage.Store, checked int64) {
	t.Helper()
	n, err := auditchain.VerifyLog(t.Context(), s.Audit())
	must(t, "verify", err)
	if n != checked {
		t.Fatalf("verify checked %d records, want %d", n, checked)
	}
}

func wantLink(t testing.TB, what string, got storage.AuditLink, seq int64, hash []byte) {
	t.Helper()
	if got.Seq != seq || !bytes.Equal(got.Hash, hash) {
		t.Fatalf("%s = {%d %x}, want {%d %x}", what, got.Seq, got.Hash, seq, hash)
	}
}

func testAuditAppendAssignsChain(t *testing.T, s storage.Store) {
	ctx := t.Context()
	head, err := s.Audit().Head(ctx)
	must(t, "head of empty log", err)
	wantLink(t, "head of empty log", head, 0, auditchain.Genesis())

	first := appendAudit(t, s, newAuditRecord(), newAuditRecord(), newAuditRecord())
	second := appendAudit(t, s, newAuditRecord(), newAuditRecord())
	all := append(first, second...)
	prev := auditchain.Genesis()
	for i, r := range all {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d: seq %d, want %d", i, r.Seq, i+1)
		}
		if !bytes.Equal(r.PrevHash, prev) {
			t.Fatalf("seq %d: prev hash %x, want the hash before it %x", r.Seq, r.PrevHash, prev)
		}
		if want := auditchain.Hash(prev, &r); !bytes.Equal(r.Hash, want) {
			t.Fatalf("seq %d: hash %x, want SHA-256(prev || encoding) %x", r.Seq, r.Hash, want)
		}
		prev = r.Hash
	}
	head, err = s.Audit().Head(ctx)
	must(t, "head", err)
	wantLink(t, "head", head, 5, all[4].Hash)
	anchor, err := s.Audit().Anchor(ctx)
	must(t, "anchor", err)
	wantLink(t, "anchor", anchor, 0, auditchain.Genesis())
	wantSame(t, "scan", scanAudit(t, s, 1), all)
	wantVerified(t, s, 5)
	must(t, "append nothing", s.Audit().Append(ctx, nil))
}

// testAuditRoundTrip checks that what Append hashed is what comes back:
// times at millisecond precision in UTC, Extra byte for byte, Chain and
// text unchanged, empty Chain and Extra as nil.
func testAuditRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	full := newAuditRecord()
	full.At = time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.FixedZone("IST", 5*3600+1800))
	full.Chain = []string{"usr_zoë", "agt_😀", `a"b\c`, "<&>\u2028"}
	full.Reason = "Zoë \u00a0😀 \u202e"
	full.Extra = []byte(" {\"z\":1,  \"a\":\"\\u0000\"}\n")
	empty := storage.AuditRecord{ID: newID("aud"), Kind: storage.AuditKindSecurity, Event: "sign_in", Chain: []string{}, Extra: []byte{}}
	recs := appendAudit(t, s, full, empty)
	if want := time.Date(2030, 5, 6, 1, 38, 9, 123000000, time.UTC); !recs[0].At.Equal(want) || recs[0].At.Location() != time.UTC {
		t.Fatalf("At after append = %v, want %v (UTC, milliseconds)", recs[0].At, want)
	}
	if recs[1].At.IsZero() {
		t.Fatal("zero At not set by append")
	}
	got := scanAudit(t, s, 0)
	wantSame(t, "scan", got, recs)
	wantUTC(t, "scan", got[0].At, got[1].At)
	if string(got[0].Extra) != string(full.Extra) {
		t.Fatalf("extra = %q, want %q byte for byte", got[0].Extra, full.Extra)
	}
	if got[1].Chain != nil || got[1].Extra != nil {
		t.Fatalf("empty chain and extra read back as %#v, %#v; want nil", got[1].Chain, got[1].Extra)
	}
	page, _, err := s.Audit().Query(ctx, storage.AuditFilter{})
	must(t, "query", err)
	wantSame(t, "query", page, []storage.AuditRecord{got[1], got[0]})
	wantVerified(t, s, 2)
}

func testAuditQueryFilters(t *testing.T, s storage.Store) {
	ctx := t.Context()
	base := now().Add(-time.Hour)
	// seq i+1 for i = 0..11: principal alternates, agent every third,
	// event and result vary, one record a minute.
	appendAuditN(t, s, 12, 5, func(i int, r *storage.AuditRecord) {
		r.At = base.Add(time.Duration(i) * time.Minute)
		r.PrincipalID = []string{"usr_a", "agt_b"}[i%2]
		r.AgentID = []string{"agt_b", "agt_c", ""}[i%3]
		r.Event = []string{"authorize", "sign_in", "token.issued", "agent.created"}[i%4]
		r.Kind = storage.AuditKindSecurity
		if r.Event == "authorize" {
			r.Kind = storage.AuditKindDecision
		}
		r.Result = []string{storage.AuditAllow, storage.AuditDeny}[i/6]
		r.Action = []string{"read", "write"}[i%2]
	})
	tests := []struct {
		name string
		f    storage.AuditFilter
		want []int64
	}{
		{"none", storage.AuditFilter{}, seqRange(12, 1)},
		{"principal", storage.AuditFilter{PrincipalID: "usr_a"}, []int64{11, 9, 7, 5, 3, 1}},
		{"agent", storage.AuditFilter{AgentID: "agt_c"}, []int64{11, 8, 5, 2}},
		{"event", storage.AuditFilter{Event: "token.issued"}, []int64{11, 7, 3}},
		{"kind", storage.AuditFilter{Kind: storage.AuditKindDecision}, []int64{9, 5, 1}},
		{"action", storage.AuditFilter{Action: "write"}, []int64{12, 10, 8, 6, 4, 2}},
		{"result", storage.AuditFilter{Result: storage.AuditDeny}, seqRange(12, 7)},
		{"from inclusive", storage.AuditFilter{From: base.Add(9 * time.Minute)}, []int64{12, 11, 10}},
		{"to exclusive", storage.AuditFilter{To: base.Add(2 * time.Minute)}, []int64{2, 1}},
		{"window", storage.AuditFilter{From: base.Add(3 * time.Minute), To: base.Add(6 * time.Minute)}, []int64{6, 5, 4}},
		{"combined", storage.AuditFilter{PrincipalID: "agt_b", AgentID: "agt_b", Result: storage.AuditAllow}, []int64{4}},
		{"combined match", storage.AuditFilter{PrincipalID: "usr_a", AgentID: "agt_b", Result: storage.AuditDeny}, []int64{7}},
		{"unknown", storage.AuditFilter{PrincipalID: "usr_nobody"}, nil},
	}
	for _, tc := range tests {
		got, next, err := s.Audit().Query(ctx, tc.f)
		must(t, tc.name, err)
		if !slices.Equal(seqs(got), tc.want) {
			t.Errorf("%s: seqs %v, want %v", tc.name, seqs(got), tc.want)
		}
		if next != "" {
			t.Errorf("%s: next cursor %q after the only page", tc.name, next)
		}
	}
}

func testAuditQueryCursor(t *testing.T, s storage.Store) {
	ctx := t.Context()
	appendAuditN(t, s, 25, 7, func(i int, r *storage.AuditRecord) {
		r.Event = []string{"authorize", "sign_in"}[i%2]
	})
	var got []int64
	f := storage.AuditFilter{Limit: 10}
	for page := 0; ; page++ {
		recs, next, err := s.Audit().Query(ctx, f)
		must(t, fmt.Sprintf("page %d", page), err)
		got = append(got, seqs(recs)...)
		if next == "" {
			break
		}
		if page > 3 {
			t.Fatal("cursor does not end")
		}
		f.Cursor = next
	}
	if !slices.Equal(got, seqRange(25, 1)) {
		t.Fatalf("pages of 10 gave %v", got)
	}
	// Exactly a page left: the last full page says there is no more.
	recs, next, err := s.Audit().Query(ctx, storage.AuditFilter{Limit: 25})
	must(t, "limit 25", err)
	if len(recs) != 25 || next != "" {
		t.Fatalf("limit = count: %d records, next %q", len(recs), next)
	}
	// The cursor combines with a filter.
	recs, next, err = s.Audit().Query(ctx, storage.AuditFilter{Event: "sign_in", Limit: 4})
	must(t, "filtered page 1", err)
	recs2, _, err := s.Audit().Query(ctx, storage.AuditFilter{Event: "sign_in", Limit: 4, Cursor: next})
	must(t, "filtered page 2", err)
	if g := append(seqs(recs), seqs(recs2)...); !slices.Equal(g, []int64{24, 22, 20, 18, 16, 14, 12, 10}) {
		t.Fatalf("filtered pages = %v", g)
	}
	for _, bad := range []string{"x", "c3", "czA", "!!", "s1", "czEyYQ"} {
		_, _, err := s.Audit().Query(ctx, storage.AuditFilter{Cursor: bad})
		wantErr(t, "query with cursor "+bad, err, storage.ErrInvalidValue)
	}
}

func testAuditQueryLimitCapped(t *testing.T, s storage.Store) {
	appendAuditN(t, s, storage.AuditQueryMax+5, 256, nil)
	recs, next, err := s.Audit().Query(t.Context(), storage.AuditFilter{Limit: 1 << 20})
	must(t, "query", err)
	if len(recs) != storage.AuditQueryMax || next == "" {
		t.Fatalf("huge limit: %d records, next %q; want %d and a cursor", len(recs), next, storage.AuditQueryMax)
	}
	recs, _, err = s.Audit().Query(t.Context(), storage.AuditFilter{})
	must(t, "default limit", err)
	if len(recs) != 100 {
		t.Fatalf("default limit returned %d records, want 100", len(recs))
	}
}

func testAuditScan(t *testing.T, s storage.Store) {
	const n = 1203 // several pages
	appendAuditN(t, s, n, 256, nil)
	all := scanAudit(t, s, 0)
	if !slices.Equal(seqs(all), seqRange(1, n)) {
		t.Fatalf("scan from 0 gave %d records, not 1..%d in order", len(all), n)
	}
	if got := seqs(scanAudit(t, s, 1198)); !slices.Equal(got, seqRange(1198, n)) {
		t.Fatalf("scan from 1198 = %v", got)
	}
	if got := scanAudit(t, s, n+1); len(got) != 0 {
		t.Fatalf("scan past the head returned %d records", len(got))
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Audit().Scan(t.Context(), 1, func(storage.AuditRecord) error {
		calls++
		if calls == 600 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 600 {
		t.Fatalf("scan stopped by fn: err %v after %d calls; want fn's error after 600", err, calls)
	}
	wantVerified(t, s, n)
}

// testAuditConcurrentAppends checks the chain under racing appenders: Seq
// has no gaps or duplicates, and every link holds.
func testAuditConcurrentAppends(t *testing.T, s storage.Store) {
	const perRacer = 5
	var want int64
	for i := range racers {
		for j := range perRacer {
			want += int64(1 + (i+j)%4)
		}
	}
	errs := race(func(i int) error {
		for j := range perRacer {
			recs := make([]storage.AuditRecord, 1+(i+j)%4)
			for k := range recs {
				recs[k] = newAuditRecord()
				recs[k].PrincipalID = fmt.Sprintf("agt_%d", i)
			}
			if err := s.Audit().Append(t.Context(), recs); err != nil {
				return err
			}
			for k := 1; k < len(recs); k++ {
				if recs[k].Seq != recs[k-1].Seq+1 {
					return fmt.Errorf("one append got seqs %d then %d", recs[k-1].Seq, recs[k].Seq)
				}
			}
		}
		return nil
	})
	for i, err := range errs {
		must(t, fmt.Sprintf("racer %d", i), err)
	}
	if got := seqs(scanAudit(t, s, 1)); !slices.Equal(got, seqRange(1, want)) {
		t.Fatalf("after concurrent appends: %d records, not 1..%d", len(got), want)
	}
	wantVerified(t, s, want)
}

func testAuditDeleteBefore(t *testing.T, s storage.Store) {
	ctx := t.Context()
	base := now().Add(-time.Hour)
	appendAuditN(t, s, 10, 3, func(i int, r *storage.AuditRecord) { r.At = base.Add(time.Duration(i) * time.Minute) })
	before := scanAudit(t, s, 1)

	n, err := s.Audit().DeleteBefore(ctx, base.Add(5*time.Minute))
	must(t, "delete before", err)
	if n != 5 {
		t.Fatalf("deleted %d, want 5", n)
	}
	anchor, err := s.Audit().Anchor(ctx)
	must(t, "anchor", err)
	wantLink(t, "anchor", anchor, 5, before[4].Hash)
	if got := seqs(scanAudit(t, s, 0)); !slices.Equal(got, seqRange(6, 10)) {
		t.Fatalf("left after retention: %v", got)
	}
	wantVerified(t, s, 5)
	n, err = s.Audit().DeleteBefore(ctx, base.Add(5*time.Minute))
	must(t, "delete again", err)
	if n != 0 {
		t.Fatalf("second delete removed %d", n)
	}

	// Appends continue the chain after retention.
	more := appendAudit(t, s, newAuditRecord())
	if more[0].Seq != 11 || !bytes.Equal(more[0].PrevHash, before[9].Hash) {
		t.Fatalf("append after retention: seq %d prev %x", more[0].Seq, more[0].PrevHash)
	}
	wantVerified(t, s, 6)

	// Deleting everything leaves the anchor at the head; the chain goes on.
	n, err = s.Audit().DeleteBefore(ctx, now().Add(time.Hour))
	must(t, "delete all", err)
	if n != 6 {
		t.Fatalf("deleted %d, want 6", n)
	}
	anchor, err = s.Audit().Anchor(ctx)
	must(t, "anchor", err)
	head, err := s.Audit().Head(ctx)
	must(t, "head", err)
	wantLink(t, "anchor after deleting everything", anchor, 11, more[0].Hash)
	wantLink(t, "head after deleting everything", head, 11, more[0].Hash)
	wantVerified(t, s, 0)
	last := appendAudit(t, s, newAuditRecord())
	if last[0].Seq != 12 {
		t.Fatalf("append after deleting everything: seq %d, want 12", last[0].Seq)
	}
	wantVerified(t, s, 1)
}

// testAuditDeleteBeforeStopsAtNewer: retention deletes a prefix only, so
// verification still works when clocks disagreed between nodes.
func testAuditDeleteBeforeStopsAtNewer(t *testing.T, s storage.Store) {
	base := now().Add(-time.Hour)
	offsets := []time.Duration{0, 20 * time.Minute, time.Minute, 2 * time.Minute}
	appendAuditN(t, s, len(offsets), 4, func(i int, r *storage.AuditRecord) { r.At = base.Add(offsets[i]) })
	n, err := s.Audit().DeleteBefore(t.Context(), base.Add(10*time.Minute))
	must(t, "delete before", err)
	if n != 1 {
		t.Fatalf("deleted %d, want only the first record (the second is newer)", n)
	}
	wantVerified(t, s, 3)
}

func testAuditDeleteBeforeManyChunks(t *testing.T, s storage.Store) {
	const n = 10_007 // more than one retention transaction
	old := now().Add(-48 * time.Hour)
	appendAuditN(t, s, n, 1000, func(_ int, r *storage.AuditRecord) { r.At = old })
	appendAudit(t, s, newAuditRecord())
	deleted, err := s.Audit().DeleteBefore(t.Context(), now().Add(-time.Hour))
	must(t, "delete before", err)
	if deleted != n {
		t.Fatalf("deleted %d, want %d", deleted, n)
	}
	wantVerified(t, s, 1)
}

func testAuditInvalidValues(t *testing.T, s storage.Store) {
	ctx := t.Context()
	edits := map[string]func(r *storage.AuditRecord, bad string){
		"id":         func(r *storage.AuditRecord, bad string) { r.ID = "aud_" + bad },
		"event":      func(r *storage.AuditRecord, bad string) { r.Event = bad },
		"principal":  func(r *storage.AuditRecord, bad string) { r.PrincipalID = bad },
		"resource":   func(r *storage.AuditRecord, bad string) { r.Resource = bad },
		"reason":     func(r *storage.AuditRecord, bad string) { r.Reason = bad },
		"user agent": func(r *storage.AuditRecord, bad string) { r.UserAgent = bad },
		"chain":      func(r *storage.AuditRecord, bad string) { r.Chain = []string{"usr_1", bad} },
		"extra":      func(r *storage.AuditRecord, bad string) { r.Extra = []byte(`{"a":"` + bad + `"}`) },
	}
	for name, edit := range edits {
		for _, bad := range []string{nulText, invalidUTF8} {
			r := newAuditRecord()
			edit(&r, bad)
			// The bad record second: nothing of the batch is stored.
			err := s.Audit().Append(ctx, []storage.AuditRecord{newAuditRecord(), r})
			wantErr(t, "append with "+name+" "+render(bad), err, storage.ErrInvalidValue)
		}
	}
	noID := newAuditRecord()
	noID.ID = ""
	wantErr(t, "append without id", s.Audit().Append(ctx, []storage.AuditRecord{noID}), storage.ErrInvalidValue)
	for _, bad := range []string{nulText, invalidUTF8} {
		_, _, err := s.Audit().Query(ctx, storage.AuditFilter{PrincipalID: bad})
		wantErr(t, "query by principal "+render(bad), err, storage.ErrInvalidValue)
	}
	head, err := s.Audit().Head(ctx)
	must(t, "head", err)
	wantLink(t, "head after refused appends", head, 0, auditchain.Genesis())
	if got := appendAudit(t, s, newAuditRecord()); got[0].Seq != 1 {
		t.Fatalf("first stored record has seq %d, want 1", got[0].Seq)
	}
}

func testAuditDuplicateID(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := appendAudit(t, s, newAuditRecord())[0]
	dup := newAuditRecord()
	dup.ID = a.ID
	batch := []storage.AuditRecord{newAuditRecord(), dup}
	wantErr(t, "append duplicate id", s.Audit().Append(ctx, batch), storage.ErrAlreadyExists)
	if batch[0].Seq != 0 || batch[0].Hash != nil {
		t.Fatalf("failed append left seq %d hash %x on its records", batch[0].Seq, batch[0].Hash)
	}
	head, err := s.Audit().Head(ctx)
	must(t, "head", err)
	wantLink(t, "head after refused append", head, 1, a.Hash)
	if got := appendAudit(t, s, newAuditRecord()); got[0].Seq != 2 {
		t.Fatalf("next append got seq %d, want 2", got[0].Seq)
	}
	wantVerified(t, s, 2)
}

// testAuditRolledBackTx: an append inside a transaction that rolls back
// gives its Seq back, so the chain has no gap.
func testAuditRolledBackTx(t *testing.T, s storage.Store) {
	ctx := t.Context()
	err := s.InTx(ctx, func(tx storage.Store) error {
		u := createUser(t, tx)
		r := newAuditRecord()
		r.Kind, r.Event, r.PrincipalID = storage.AuditKindSecurity, "user.created", u.ID
		must(t, "append in tx", tx.Audit().Append(ctx, []storage.AuditRecord{r}))
		return errAbort
	})
	wantErr(t, "tx", err, errAbort)
	must(t, "commit tx", s.InTx(ctx, func(tx storage.Store) error {
		return tx.Audit().Append(ctx, []storage.AuditRecord{newAuditRecord()})
	}))
	if got := seqs(scanAudit(t, s, 0)); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after a rolled-back and a committed append: seqs %v, want [1]", got)
	}
	wantVerified(t, s, 1)
}
