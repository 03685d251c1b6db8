package storagetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/kavachos/kavach/storage"
)

var trustStateTests = []test{
	{"UpdateGetList", testTrustStates},
	{"ConcurrentUpdates", testTrustStatesConcurrent},
}

func testTrustStates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := newAgent("agt_a", storage.AgentAutonomous, &u.ID, nil)
	b := newAgent("agt_b", storage.AgentAutonomous, &u.ID, nil)
	must(t, "create a", s.Agents().Create(ctx, a))
	must(t, "create b", s.Agents().Create(ctx, b))
	if _, err := s.TrustStates().Get(ctx, a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("state before any: %v", err)
	}
	set := func(id, state string, score float64, level string) {
		t.Helper()
		must(t, "update "+id, s.TrustStates().Update(ctx, id, func(ts *storage.TrustState) error {
			ts.State, ts.Score, ts.Level = []byte(state), score, level
			return nil
		}))
	}
	set(a.ID, `{"n":1}`, 72.5, "standard")
	set(b.ID, `{"n":2}`, 31, "untrusted")
	must(t, "update a again", s.TrustStates().Update(ctx, a.ID, func(ts *storage.TrustState) error {
		if string(ts.State) != `{"n":1}` || ts.Score != 72.5 {
			t.Fatalf("update saw %+v", ts)
		}
		ts.State, ts.Baseline, ts.Score, ts.Level = []byte(`{"n":3}`), []byte(`{"b":1}`), 81.25, "trusted"
		return nil
	}))
	got, err := s.TrustStates().Get(ctx, a.ID)
	must(t, "get", err)
	if string(got.State) != `{"n":3}` || string(got.Baseline) != `{"b":1}` || got.Score != 81.25 || got.Level != "trusted" || got.UpdatedAt.IsZero() {
		t.Fatalf("state %+v", got)
	}
	boom := errors.New("boom")
	if err := s.TrustStates().Update(ctx, a.ID, func(ts *storage.TrustState) error { ts.Score = 0; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	if got, _ := s.TrustStates().Get(ctx, a.ID); got.Score != 81.25 {
		t.Fatalf("a failed update wrote: %+v", got)
	}
	if err := s.TrustStates().Update(ctx, "agt_missing", func(*storage.TrustState) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update for a missing agent: %v", err)
	}
	list, err := s.TrustStates().List(ctx, 10)
	must(t, "list", err)
	if len(list) != 2 || list[0].AgentID != b.ID || list[1].AgentID != a.ID {
		t.Fatalf("list %+v", list)
	}
	must(t, "delete agent", s.Agents().Delete(ctx, b.ID))
	if _, err := s.TrustStates().Get(ctx, b.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("state outlived its agent: %v", err)
	}
}

// Updates from many writers apply one after the other: none is lost.
func testTrustStatesConcurrent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAgent("agt_a", storage.AgentService, nil, nil)
	must(t, "create", s.Agents().Create(ctx, a))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			err := s.TrustStates().Update(ctx, a.ID, func(ts *storage.TrustState) error {
				n, _ := strconv.Atoi(string(ts.State))
				ts.State = []byte(strconv.Itoa(n + 1))
				return nil
			})
			if err != nil {
				t.Errorf("update: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.TrustStates().Get(ctx, a.ID)
	must(t, "get", err)
	if string(got.State) != "16" {
		t.Fatalf("after 16 concurrent updates: %s", got.State)
	}
}
