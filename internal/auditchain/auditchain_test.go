package auditchain

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

// TestEncodeSpec pins the encoding to the documented layout, byte for
// byte: a change here breaks every stored chain.
func TestEncodeSpec(t *testing.T) {
	r := storage.AuditRecord{Seq: 1, ID: "a", At: time.UnixMilli(1000), Kind: "k", Chain: []string{"x"},
		LatencyMicros: 2, Extra: []byte("{}"),
		PrevHash: []byte("ignored"), Hash: []byte("ignored")}
	want := strings.Join([]string{
		"01",               // version
		"0000000000000001", // 1 seq
		"00000001", "61",   // 2 id
		"00000000000003e8", // 3 at, ms
		"00000001", "6b",   // 4 kind
		"00000000",                   // 5 event
		"00000000",                   // 6 principal type
		"00000000",                   // 7 principal id
		"00000000",                   // 8 agent id
		"00000000",                   // 9 acting for
		"00000001", "00000001", "78", // 10 chain: count, "x"
		"00000000",         // 11 action
		"00000000",         // 12 resource
		"00000000",         // 13 args digest
		"00000000",         // 14 result
		"00000000",         // 15 reason
		"0000000000000002", // 16 latency
		"00000000",         // 17 ip
		"00000000",         // 18 user agent
		"00000002", "7b7d", // 19 extra
	}, "")
	if got := hex.EncodeToString(Encode(nil, &r)); got != want {
		t.Fatalf("Encode =\n %s\nwant\n %s", got, want)
	}
}

// TestHashGolden pins Hash for a full record, so a refactor that changes
// the encoding (even consistently on both sides) is caught. The value was
// computed by a separate implementation of the documented layout.
func TestHashGolden(t *testing.T) {
	r := fullRecord(7)
	got := hex.EncodeToString(Hash(Genesis(), &r))
	const want = "d386fdd4ff0d267e49f64da9ca50e2836d6d18d4cb007f37df7c326a748d97a1"
	if got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
}

// Field boundaries cannot shift: records that concatenate to the same
// text still encode differently.
func TestEncodeUnambiguous(t *testing.T) {
	pairs := []struct {
		name string
		a, b storage.AuditRecord
	}{
		{"id and kind", storage.AuditRecord{ID: "ab", Kind: "c"}, storage.AuditRecord{ID: "a", Kind: "bc"}},
		{"chain elements", storage.AuditRecord{Chain: []string{"ab", "c"}}, storage.AuditRecord{Chain: []string{"a", "bc"}}},
		{"chain and action", storage.AuditRecord{Chain: []string{"a"}, Action: ""}, storage.AuditRecord{Chain: nil, Action: "a"}},
		{"empty chain element", storage.AuditRecord{Chain: []string{""}}, storage.AuditRecord{}},
		{"ip and user agent", storage.AuditRecord{IP: "1", UserAgent: ""}, storage.AuditRecord{IP: "", UserAgent: "1"}},
	}
	for _, p := range pairs {
		if bytes.Equal(Encode(nil, &p.a), Encode(nil, &p.b)) {
			t.Errorf("%s: two records encode alike", p.name)
		}
	}
	// What storage cannot tell apart encodes alike.
	a := storage.AuditRecord{Chain: nil, Extra: nil}
	b := storage.AuditRecord{Chain: []string{}, Extra: []byte{}}
	if !bytes.Equal(Encode(nil, &a), Encode(nil, &b)) {
		t.Error("nil and empty Chain/Extra encode differently")
	}
}

func fullRecord(seq int64) storage.AuditRecord {
	return storage.AuditRecord{
		Seq: seq, ID: fmt.Sprintf("aud_%d", seq), At: time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC),
		Kind: storage.AuditKindDecision, Event: "authorize", PrincipalType: "agent", PrincipalID: "agt_1",
		AgentID: "agt_1", ActingFor: "usr_1", Chain: []string{"usr_1", "agt_1"}, Action: "read",
		Resource: "mcp:github:repos", ArgsDigest: "sha256:00", Result: storage.AuditDeny, Reason: "PERMISSION_DENIED",
		LatencyMicros: 17, IP: "203.0.113.7", UserAgent: "test/1.0", Extra: []byte(`{"k":"v"}`),
	}
}

// chain returns n linked records after anchor.
func chain(anchor storage.AuditLink, n int) []storage.AuditRecord {
	out := make([]storage.AuditRecord, n)
	prev := anchor.Hash
	for i := range out {
		out[i] = fullRecord(anchor.Seq + int64(i) + 1)
		out[i].PrevHash = prev
		out[i].Hash = Hash(prev, &out[i])
		prev = out[i].Hash
	}
	return out
}

func scanOf(recs []storage.AuditRecord) func(fn func(storage.AuditRecord) error) error {
	return func(fn func(storage.AuditRecord) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

var genesis = storage.AuditLink{Seq: 0, Hash: Genesis()}

func TestVerifyIntact(t *testing.T) {
	recs := chain(genesis, 10)
	n, err := Verify(t.Context(), scanOf(recs), genesis)
	if err != nil || n != 10 {
		t.Fatalf("Verify = %d, %v; want 10, nil", n, err)
	}
	// From an anchor after retention.
	anchor := storage.AuditLink{Seq: recs[3].Seq, Hash: recs[3].Hash}
	n, err = Verify(t.Context(), scanOf(recs[4:]), anchor)
	if err != nil || n != 6 {
		t.Fatalf("Verify from anchor = %d, %v; want 6, nil", n, err)
	}
	n, err = Verify(t.Context(), scanOf(nil), genesis)
	if err != nil || n != 0 {
		t.Fatalf("Verify of nothing = %d, %v", n, err)
	}
}

func TestVerifyDetects(t *testing.T) {
	edit := func(f func(r *storage.AuditRecord)) func([]storage.AuditRecord) []storage.AuditRecord {
		return func(recs []storage.AuditRecord) []storage.AuditRecord { f(&recs[4]); return recs }
	}
	tests := []struct {
		name    string
		tamper  func([]storage.AuditRecord) []storage.AuditRecord
		anchor  storage.AuditLink
		seq     int64
		problem Problem
	}{
		{"edited id", edit(func(r *storage.AuditRecord) { r.ID = "aud_x" }), genesis, 5, ProblemEdited},
		{"edited time", edit(func(r *storage.AuditRecord) { r.At = r.At.Add(time.Millisecond) }), genesis, 5, ProblemEdited},
		{"edited kind", edit(func(r *storage.AuditRecord) { r.Kind = storage.AuditKindSecurity }), genesis, 5, ProblemEdited},
		{"edited event", edit(func(r *storage.AuditRecord) { r.Event = "sign_in" }), genesis, 5, ProblemEdited},
		{"edited principal type", edit(func(r *storage.AuditRecord) { r.PrincipalType = "user" }), genesis, 5, ProblemEdited},
		{"edited principal", edit(func(r *storage.AuditRecord) { r.PrincipalID = "agt_2" }), genesis, 5, ProblemEdited},
		{"edited agent", edit(func(r *storage.AuditRecord) { r.AgentID = "agt_2" }), genesis, 5, ProblemEdited},
		{"edited acting for", edit(func(r *storage.AuditRecord) { r.ActingFor = "" }), genesis, 5, ProblemEdited},
		{"edited chain", edit(func(r *storage.AuditRecord) { r.Chain = r.Chain[:1] }), genesis, 5, ProblemEdited},
		{"edited action", edit(func(r *storage.AuditRecord) { r.Action = "write" }), genesis, 5, ProblemEdited},
		{"edited resource", edit(func(r *storage.AuditRecord) { r.Resource = "mcp:*" }), genesis, 5, ProblemEdited},
		{"edited args digest", edit(func(r *storage.AuditRecord) { r.ArgsDigest = "sha256:01" }), genesis, 5, ProblemEdited},
		{"edited result", edit(func(r *storage.AuditRecord) { r.Result = storage.AuditAllow }), genesis, 5, ProblemEdited},
		{"edited reason", edit(func(r *storage.AuditRecord) { r.Reason = "" }), genesis, 5, ProblemEdited},
		{"edited latency", edit(func(r *storage.AuditRecord) { r.LatencyMicros = 1 }), genesis, 5, ProblemEdited},
		{"edited ip", edit(func(r *storage.AuditRecord) { r.IP = "198.51.100.1" }), genesis, 5, ProblemEdited},
		{"edited user agent", edit(func(r *storage.AuditRecord) { r.UserAgent = "x" }), genesis, 5, ProblemEdited},
		{"edited extra", edit(func(r *storage.AuditRecord) { r.Extra = []byte(`{"k": "v"}`) }), genesis, 5, ProblemEdited},
		{"edited hash", edit(func(r *storage.AuditRecord) { r.Hash = Genesis() }), genesis, 5, ProblemEdited},
		{"edited prev hash", edit(func(r *storage.AuditRecord) { r.PrevHash = Genesis() }), genesis, 5, ProblemLink},
		{"edit with its hash recomputed", edit(func(r *storage.AuditRecord) {
			r.Reason = "OK"
			r.Hash = Hash(r.PrevHash, r)
		}), genesis, 6, ProblemLink},
		{"renumbered", edit(func(r *storage.AuditRecord) { r.Seq = 6 }), genesis, 5, ProblemMissing},
		{"deleted", func(recs []storage.AuditRecord) []storage.AuditRecord {
			return append(recs[:4:4], recs[5:]...)
		}, genesis, 5, ProblemMissing},
		{"deleted first", func(recs []storage.AuditRecord) []storage.AuditRecord { return recs[1:] }, genesis, 1, ProblemMissing},
		{"deleted and renumbered", func(recs []storage.AuditRecord) []storage.AuditRecord {
			out := append(recs[:4:4], recs[5:]...)
			for i := 4; i < len(out); i++ {
				out[i].Seq--
			}
			return out
		}, genesis, 5, ProblemLink},
		{"swapped", func(recs []storage.AuditRecord) []storage.AuditRecord {
			recs[4], recs[5] = recs[5], recs[4]
			return recs
		}, genesis, 5, ProblemMissing},
		{"swapped and renumbered", func(recs []storage.AuditRecord) []storage.AuditRecord {
			recs[4], recs[5] = recs[5], recs[4]
			recs[4].Seq, recs[5].Seq = 5, 6
			return recs
		}, genesis, 5, ProblemLink},
		{"duplicated", func(recs []storage.AuditRecord) []storage.AuditRecord {
			return append(recs[:5:5], append([]storage.AuditRecord{recs[4]}, recs[5:]...)...)
		}, genesis, 5, ProblemOrder},
		{"wrong anchor hash", func(recs []storage.AuditRecord) []storage.AuditRecord { return recs },
			storage.AuditLink{Seq: 0, Hash: bytes.Repeat([]byte{1}, HashSize)}, 1, ProblemLink},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := tc.tamper(chain(genesis, 10))
			_, err := Verify(t.Context(), scanOf(recs), tc.anchor)
			var brk *BreakError
			if !errors.As(err, &brk) || !errors.Is(err, ErrBroken) {
				t.Fatalf("Verify = %v, want a *BreakError", err)
			}
			if brk.Seq != tc.seq || brk.Problem != tc.problem {
				t.Fatalf("broken at seq %d (%s), want seq %d (%s)", brk.Seq, brk.Problem, tc.seq, tc.problem)
			}
		})
	}
}

func TestVerifyScanErrorAndCancel(t *testing.T) {
	boom := errors.New("boom")
	_, err := Verify(t.Context(), func(func(storage.AuditRecord) error) error { return boom }, genesis)
	if !errors.Is(err, boom) || errors.Is(err, ErrBroken) {
		t.Fatalf("scan error: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Verify(ctx, scanOf(chain(genesis, 3)), genesis)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

// memLog is an in-memory storage.AuditLog for VerifyLog.
type memLog struct {
	recs         []storage.AuditRecord
	anchor, head storage.AuditLink
	onScan       func(l *memLog) // runs at the start of Scan
}

func newMemLog(n int) *memLog {
	l := &memLog{recs: chain(genesis, n), anchor: genesis, head: genesis}
	if n > 0 {
		last := l.recs[n-1]
		l.head = storage.AuditLink{Seq: last.Seq, Hash: last.Hash}
	}
	return l
}

func (l *memLog) Append(context.Context, []storage.AuditRecord) error { panic("unused") }
func (l *memLog) Query(context.Context, storage.AuditFilter) ([]storage.AuditRecord, string, error) {
	panic("unused")
}
func (l *memLog) DeleteBefore(context.Context, time.Time) (int, error) { panic("unused") }
func (l *memLog) Anchor(context.Context) (storage.AuditLink, error)    { return l.anchor, nil }
func (l *memLog) Head(context.Context) (storage.AuditLink, error)      { return l.head, nil }

func (l *memLog) Scan(_ context.Context, from int64, fn func(storage.AuditRecord) error) error {
	if l.onScan != nil {
		f := l.onScan
		l.onScan = nil
		f(l)
	}
	for _, r := range l.recs {
		if r.Seq >= from && r.Seq <= l.head.Seq {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteThrough removes records up to seq and anchors there, as retention
// does.
func (l *memLog) deleteThrough(seq int64) {
	for len(l.recs) > 0 && l.recs[0].Seq <= seq {
		l.anchor = storage.AuditLink{Seq: l.recs[0].Seq, Hash: l.recs[0].Hash}
		l.recs = l.recs[1:]
	}
}

func TestVerifyLog(t *testing.T) {
	wantBreak := func(t *testing.T, err error, seq int64, p Problem) {
		t.Helper()
		var brk *BreakError
		if !errors.As(err, &brk) || brk.Seq != seq || brk.Problem != p {
			t.Fatalf("VerifyLog = %v, want break at seq %d (%s)", err, seq, p)
		}
	}
	t.Run("intact", func(t *testing.T) {
		n, err := VerifyLog(t.Context(), newMemLog(10))
		if err != nil || n != 10 {
			t.Fatalf("VerifyLog = %d, %v", n, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if n, err := VerifyLog(t.Context(), newMemLog(0)); err != nil || n != 0 {
			t.Fatalf("VerifyLog = %d, %v", n, err)
		}
	})
	t.Run("everything deleted by retention", func(t *testing.T) {
		l := newMemLog(5)
		l.deleteThrough(5)
		if n, err := VerifyLog(t.Context(), l); err != nil || n != 0 {
			t.Fatalf("VerifyLog = %d, %v", n, err)
		}
	})
	t.Run("last record deleted", func(t *testing.T) {
		l := newMemLog(10)
		l.recs = l.recs[:9]
		_, err := VerifyLog(t.Context(), l)
		wantBreak(t, err, 10, ProblemTruncated)
	})
	t.Run("every record deleted, anchor kept", func(t *testing.T) {
		l := newMemLog(3)
		l.recs = nil
		_, err := VerifyLog(t.Context(), l)
		wantBreak(t, err, 1, ProblemTruncated)
	})
	t.Run("head rewritten", func(t *testing.T) {
		l := newMemLog(10)
		l.head.Hash = Genesis()
		_, err := VerifyLog(t.Context(), l)
		wantBreak(t, err, 10, ProblemTruncated)
	})
	t.Run("edited", func(t *testing.T) {
		l := newMemLog(10)
		l.recs[2].Reason = "x"
		_, err := VerifyLog(t.Context(), l)
		wantBreak(t, err, 3, ProblemEdited)
	})
	t.Run("retention during the scan", func(t *testing.T) {
		l := newMemLog(10)
		l.onScan = func(l *memLog) { l.deleteThrough(4) }
		n, err := VerifyLog(t.Context(), l)
		if err != nil || n != 6 {
			t.Fatalf("VerifyLog = %d, %v; want 6, nil after starting over", n, err)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	r := fullRecord(1)
	prev := Genesis()
	b.ReportAllocs()
	for b.Loop() {
		prev = Hash(prev, &r)
	}
}
