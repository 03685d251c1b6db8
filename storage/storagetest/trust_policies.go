package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var trustPolicyTests = []test{
	{"CreateUpdateDelete", testTrustPolicies},
	{"ConcurrentUpdates", testTrustPoliciesConcurrent},
}

func testTrustPolicies(t *testing.T, s storage.Store) {
	ctx := t.Context()
	epoch := func() int64 {
		t.Helper()
		n, err := s.TrustPolicies().Epoch(ctx)
		must(t, "epoch", err)
		return n
	}
	if n := epoch(); n != 0 {
		t.Fatalf("epoch of a new store = %d", n)
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	p := &storage.TrustPolicy{ID: "tpol_a", ScopeType: storage.TrustPolicyGlobal, Body: []byte(`{"v":1}`), CreatedBy: "usr_admin", CreatedAt: at}
	must(t, "create", s.TrustPolicies().Create(ctx, p))
	if p.Version != 1 || p.UpdatedBy != "usr_admin" || !p.UpdatedAt.Equal(at) {
		t.Fatalf("created %+v", p)
	}
	if err := s.TrustPolicies().Create(ctx, &storage.TrustPolicy{ID: "tpol_a", ScopeType: storage.TrustPolicyGlobal, Body: []byte(`{}`), CreatedBy: "x"}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	must(t, "create b", s.TrustPolicies().Create(ctx, &storage.TrustPolicy{ID: "tpol_b", ScopeType: storage.TrustPolicyAgent, ScopeID: "agt_x",
		Body: []byte(`{"v":"b"}`), CreatedBy: "usr_admin", CreatedAt: at.Add(time.Second)}))
	if n := epoch(); n != 2 {
		t.Fatalf("epoch after two creates = %d", n)
	}
	if n, err := s.TrustPolicies().Count(ctx); err != nil || n != 2 {
		t.Fatalf("count = %d, %v", n, err)
	}
	got, err := s.TrustPolicies().Update(ctx, "tpol_a", func(p *storage.TrustPolicy) error {
		if string(p.Body) != `{"v":1}` || p.Version != 1 {
			t.Fatalf("update saw %+v", p)
		}
		p.Body, p.UpdatedBy = []byte(`{"v":2}`), "usr_other"
		return nil
	})
	must(t, "update", err)
	if got.Version != 2 || string(got.Body) != `{"v":2}` || got.UpdatedBy != "usr_other" || got.CreatedBy != "usr_admin" {
		t.Fatalf("updated %+v", got)
	}
	boom := errors.New("boom")
	if _, err := s.TrustPolicies().Update(ctx, "tpol_a", func(p *storage.TrustPolicy) error { p.Body = []byte(`{}`); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	if _, err := s.TrustPolicies().Update(ctx, "tpol_none", func(*storage.TrustPolicy) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update of a missing policy: %v", err)
	}
	if n := epoch(); n != 3 {
		t.Fatalf("epoch after an update and two failed ones = %d", n)
	}
	list, err := s.TrustPolicies().List(ctx)
	must(t, "list", err)
	if len(list) != 2 || list[0].ID != "tpol_a" || list[1].ID != "tpol_b" || list[1].ScopeID != "agt_x" || string(list[0].Body) != `{"v":2}` {
		t.Fatalf("list %+v", list)
	}
	del, err := s.TrustPolicies().Delete(ctx, "tpol_a", "usr_third", at.Add(time.Hour))
	must(t, "delete", err)
	if del.Version != 2 {
		t.Fatalf("deleted %+v", del)
	}
	if _, err := s.TrustPolicies().Get(ctx, "tpol_a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s.TrustPolicies().Delete(ctx, "tpol_a", "x", at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	revs, err := s.TrustPolicies().Revisions(ctx, "tpol_a")
	must(t, "revisions", err)
	if len(revs) != 3 || revs[0].Version != 1 || string(revs[0].Body) != `{"v":1}` || revs[0].Deleted ||
		revs[1].Version != 2 || revs[1].ChangedBy != "usr_other" ||
		revs[2].Version != 3 || !revs[2].Deleted || revs[2].ChangedBy != "usr_third" || !revs[2].ChangedAt.Equal(at.Add(time.Hour)) || string(revs[2].Body) != `{"v":2}` {
		t.Fatalf("revisions %+v", revs)
	}
	if n := epoch(); n != 4 {
		t.Fatalf("epoch after the delete = %d", n)
	}
	if revs, err := s.TrustPolicies().Revisions(ctx, "tpol_none"); err != nil || len(revs) != 0 {
		t.Fatalf("revisions of an unknown policy: %v %v", revs, err)
	}
}

// Concurrent updates each get their own version: none is lost.
func testTrustPoliciesConcurrent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	must(t, "create", s.TrustPolicies().Create(ctx, &storage.TrustPolicy{ID: "tpol_c", ScopeType: storage.TrustPolicyGlobal, Body: []byte(`0`), CreatedBy: "u"}))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.TrustPolicies().Update(ctx, "tpol_c", func(p *storage.TrustPolicy) error {
				p.Body = append(append([]byte(nil), p.Body...), '1')
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, "concurrent update", err)
	}
	p, err := s.TrustPolicies().Get(ctx, "tpol_c")
	must(t, "get", err)
	if p.Version != n+1 || len(p.Body) != n+1 {
		t.Fatalf("after %d concurrent updates: version %d, body %q", n, p.Version, p.Body)
	}
	revs, err := s.TrustPolicies().Revisions(ctx, "tpol_c")
	must(t, "revisions", err)
	if len(revs) != n+1 {
		t.Fatalf("%d revisions", len(revs))
	}
}
