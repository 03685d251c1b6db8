package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kavachos/kavach/internal/auditchain"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

func newAuditTestWriter(t testing.TB, s storage.Store) *AuditWriter {
	w := NewAuditWriter(s.Audit())
	t.Cleanup(w.Close)
	return w
}

func auditDecision(i int) storage.AuditRecord {
	return storage.AuditRecord{
		Kind: storage.AuditKindDecision, Event: "authorize", PrincipalType: "agent",
		PrincipalID: fmt.Sprintf("agt_%d", i%7), AgentID: fmt.Sprintf("agt_%d", i%7), ActingFor: "usr_1",
		Chain: []string{"usr_1", fmt.Sprintf("agt_%d", i%7)}, Action: "read", Resource: "mcp:github:repos",
		ArgsDigest: "sha256:0f3a", Result: storage.AuditAllow, LatencyMicros: 35, IP: "203.0.113.7",
		UserAgent: "bench/1.0",
	}
}

// wantAuditLog fails the test unless the log holds exactly the records
// with these IDs, under these seqs, and verifies.
func wantAuditLog(t *testing.T, s storage.Store, bySeq map[int64]string) {
	t.Helper()
	got := map[int64]string{}
	err := s.Audit().Scan(t.Context(), 1, func(r storage.AuditRecord) error {
		got[r.Seq] = r.ID
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if len(got) != len(bySeq) {
		t.Fatalf("log holds %d records, want %d", len(got), len(bySeq))
	}
	for seq, id := range bySeq {
		if got[seq] != id {
			t.Fatalf("seq %d holds %q, want %q", seq, got[seq], id)
		}
	}
	n, err := auditchain.VerifyLog(t.Context(), s.Audit())
	if err != nil || n != int64(len(bySeq)) {
		t.Fatalf("verify = %d, %v; want %d, nil", n, err, len(bySeq))
	}
}

func TestAuditWriterRecord(t *testing.T) {
	s := storagetest.OpenSQLite(t)
	w := newAuditTestWriter(t, s)
	want := map[int64]string{}
	for i := range 5 {
		r := auditDecision(i)
		r.ID = fmt.Sprintf("aud_%d", i)
		seq, err := w.Record(t.Context(), r)
		if err != nil || seq != int64(i+1) {
			t.Fatalf("record %d: seq %d, %v; want %d, nil", i, seq, err, i+1)
		}
		want[seq] = r.ID
	}
	wantAuditLog(t, s, want)

	// A record without an id gets one.
	seq, err := w.Record(t.Context(), auditDecision(0))
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := s.Audit().Query(t.Context(), storage.AuditFilter{Limit: 1})
	if err != nil || recs[0].Seq != seq || recs[0].ID == "" {
		t.Fatalf("record without id: stored %+v, %v", recs, err)
	}
}

// TestAuditWriterConcurrent checks that concurrent records share commits
// and that each caller gets its own record's seq.
func TestAuditWriterConcurrent(t *testing.T) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			s := d.Open(t)
			w := newAuditTestWriter(t, s)
			const callers, each = 64, 8
			var mu sync.Mutex
			want := map[int64]string{}
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					for i := range each {
						r := auditDecision(i)
						r.ID = fmt.Sprintf("aud_%d_%d", c, i)
						seq, err := w.Record(t.Context(), r)
						if err != nil {
							t.Errorf("caller %d record %d: %v", c, i, err)
							return
						}
						mu.Lock()
						if prev, dup := want[seq]; dup {
							t.Errorf("seq %d returned for %s and %s", seq, prev, r.ID)
						}
						want[seq] = r.ID
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			wantAuditLog(t, s, want)
			if b, r := w.batches.Load(), w.records.Load(); b >= r {
				t.Errorf("%d records in %d commits: no group commit happened", r, b)
			}
		})
	}
}

// A record the store refuses fails alone; the batch it was in is written.
func TestAuditWriterBadRecordFailsAlone(t *testing.T) {
	s := storagetest.OpenSQLite(t)
	w := newAuditTestWriter(t, s)
	first, err := w.Record(t.Context(), storage.AuditRecord{ID: "aud_first", Kind: storage.AuditKindSecurity, Event: "sign_in"})
	if err != nil {
		t.Fatal(err)
	}
	recs := []storage.AuditRecord{auditDecision(1), auditDecision(2), auditDecision(3), auditDecision(4)}
	recs[0].ID, recs[1].ID, recs[2].ID, recs[3].ID = "aud_a", "aud_bad", "aud_first", "aud_d"
	recs[1].Reason = "bad\x00"
	batch := make([]*storage.AuditRecord, len(recs))
	for i := range recs {
		batch[i] = &recs[i]
	}
	errs := w.commit(t.Context(), batch) // one batch, as if all four had queued together
	type auditResult struct {
		seq int64
		err error
	}
	var results []auditResult
	for i, r := range batch {
		results = append(results, auditResult{r.Seq, errs[i]})
	}
	if results[0].err != nil || results[3].err != nil {
		t.Fatalf("good records failed: %+v", results)
	}
	if !errors.Is(results[1].err, storage.ErrInvalidValue) || !errors.Is(results[2].err, storage.ErrAlreadyExists) {
		t.Fatalf("bad records: %v, %v; want invalid value, already exists", results[1].err, results[2].err)
	}
	wantAuditLog(t, s, map[int64]string{first: "aud_first", results[0].seq: "aud_a", results[3].seq: "aud_d"})
}

func TestAuditWriterClosed(t *testing.T) {
	s := storagetest.OpenSQLite(t)
	w := NewAuditWriter(s.Audit())
	w.Close()
	w.Close()
	if _, err := w.Record(t.Context(), auditDecision(0)); !errors.Is(err, ErrAuditClosed) {
		t.Fatalf("record after close: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	w2 := newAuditTestWriter(t, s)
	if _, err := w2.Record(ctx, auditDecision(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("record with a canceled context: %v", err)
	}
	wantAuditLog(t, s, map[int64]string{})
}

// TestAuditWriterCloseWhileRecording closes the writer under load: every
// caller returns, every record acknowledged is in the log, and nothing
// else is (so a failed Record really was not written).
func TestAuditWriterCloseWhileRecording(t *testing.T) {
	s := storagetest.OpenSQLite(t)
	w := NewAuditWriter(s.Audit())
	var mu sync.Mutex
	acked := map[int64]string{}
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := auditDecision(i)
				r.ID = fmt.Sprintf("aud_%d_%d", c, i)
				seq, err := w.Record(t.Context(), r)
				if errors.Is(err, ErrAuditClosed) {
					return
				}
				if err != nil {
					t.Errorf("record: %v", err)
					return
				}
				mu.Lock()
				acked[seq] = r.ID
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	w.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callers still waiting 10s after Close")
	}
	if len(acked) == 0 {
		t.Fatal("nothing was recorded before Close")
	}
	wantAuditLog(t, s, acked)
}

// The benchmarks compare group commit with a transaction per record, on
// each driver (PostgreSQL when KAVACH_TEST_POSTGRES_URL is set). One op is
// one record made durable.
//
//	go test ./authz -run '^$' -bench 'Audit' -benchtime 3s

// BenchmarkAuditRecord measures the AuditWriter: "sequential" is one
// caller (a commit per record, as nothing else queues), "parallel" many
// callers whose records share commits.
func BenchmarkAuditRecord(b *testing.B) {
	for _, d := range storagetest.Drivers(b) {
		b.Run(d.Name+"/sequential", func(b *testing.B) {
			w := newAuditTestWriter(b, d.Open(b))
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Record(ctx, auditDecision(0)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(d.Name+"/parallel", func(b *testing.B) {
			w := newAuditTestWriter(b, d.Open(b))
			ctx := b.Context()
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := w.Record(ctx, auditDecision(0)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if n := w.batches.Load(); n > 0 {
				b.ReportMetric(float64(w.records.Load())/float64(n), "records/commit")
			}
		})
	}
}

// BenchmarkAuditAppendPerRecord is the baseline: the same parallel load,
// each record appended in its own transaction. Failed appends are counted
// rather than fatal: on SQLite, writers queued behind many others can
// wait out the busy timeout (10 s) and fail with SQLITE_BUSY, which is
// part of what group commit avoids.
func BenchmarkAuditAppendPerRecord(b *testing.B) {
	for _, d := range storagetest.Drivers(b) {
		b.Run(d.Name+"/sequential", func(b *testing.B) {
			log := d.Open(b).Audit()
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				r := auditDecision(0)
				r.ID = id.New("aud")
				if err := log.Append(ctx, []storage.AuditRecord{r}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(d.Name+"/parallel", func(b *testing.B) {
			log := d.Open(b).Audit()
			ctx := b.Context()
			var failed atomic.Int64
			var firstErr atomic.Value
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := auditDecision(0)
					r.ID = id.New("aud")
					if err := log.Append(ctx, []storage.AuditRecord{r}); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
			})
			b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
			if e := firstErr.Load(); e != nil {
				b.Logf("%d of %d appends failed, first: %s", failed.Load(), b.N, e)
			}
		})
	}
}
