package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var trustFindingTests = []test{
	{"InsertList", testTrustFindingsInsertList},
	{"LatestByAgents", testTrustFindingsLatest},
	{"DeleteBefore", testTrustFindingsDeleteBefore},
	{"InsideTx", testTrustFindingsInTx},
}

func insertFinding(t testing.TB, s storage.Store, id, agentID string, at time.Time) storage.TrustFinding {
	t.Helper()
	f := storage.TrustFinding{ID: id, AgentID: agentID, Kind: "new_network", At: at, Severity: 0.5,
		Detail: "a call came from 203.0.113.0/24, a network the agent was not seen in"}
	must(t, "insert finding "+id, s.TrustFindings().Insert(t.Context(), &f))
	return f
}

func findingIDs(fs []storage.TrustFinding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

func testTrustFindingsInsertList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := newAgent("agt_a", storage.AgentAutonomous, &u.ID, nil)
	b := newAgent("agt_b", storage.AgentAutonomous, &u.ID, nil)
	must(t, "create a", s.Agents().Create(ctx, a))
	must(t, "create b", s.Agents().Create(ctx, b))
	t0 := now().Add(-time.Hour)
	first := insertFinding(t, s, "fnd_1", a.ID, t0)
	insertFinding(t, s, "fnd_3", a.ID, t0.Add(time.Minute))
	insertFinding(t, s, "fnd_2", a.ID, t0.Add(time.Minute)) // same time: by id
	insertFinding(t, s, "fnd_4", b.ID, t0.Add(2*time.Minute))
	tricky := storage.TrustFinding{ID: "fnd_5", AgentID: a.ID, Kind: "token_two_networks", At: t0.Add(-time.Minute).Add(1234567 * time.Nanosecond),
		Severity: 3.0000000000000004, Detail: "one token used from 198.51.100.0/24 and 203.0.113.0/24 within 2m0s"}
	must(t, "insert", s.TrustFindings().Insert(ctx, &tricky))
	if !tricky.At.Equal(t0.Add(-time.Minute).Add(time.Millisecond)) || tricky.CreatedAt.IsZero() {
		t.Fatalf("Insert did not set the stored times: %+v", tricky)
	}
	wantErr(t, "duplicate id", s.TrustFindings().Insert(ctx, &storage.TrustFinding{ID: "fnd_1", AgentID: a.ID, Kind: "burst", At: t0}),
		storage.ErrAlreadyExists)
	if err := s.TrustFindings().Insert(ctx, &storage.TrustFinding{ID: "fnd_x", AgentID: "agt_missing", Kind: "burst", At: t0}); err == nil {
		t.Fatal("a finding of a missing agent was stored")
	}

	all, err := s.TrustFindings().ListByAgent(ctx, a.ID, 0)
	must(t, "list", err)
	wantSame(t, "order", findingIDs(all), []string{"fnd_3", "fnd_2", "fnd_1", "fnd_5"})
	wantSame(t, "first finding", all[2], first)
	wantSame(t, "stored precisely", all[3], tricky)
	two, err := s.TrustFindings().ListByAgent(ctx, a.ID, 2)
	must(t, "list 2", err)
	wantSame(t, "limit", findingIDs(two), []string{"fnd_3", "fnd_2"})
	none, err := s.TrustFindings().ListByAgent(ctx, "agt_missing", 10)
	must(t, "list none", err)
	if len(none) != 0 {
		t.Fatalf("findings of a missing agent: %+v", none)
	}

	must(t, "delete agent", s.Agents().Delete(ctx, a.ID))
	gone, err := s.TrustFindings().ListByAgent(ctx, a.ID, 0)
	must(t, "list after delete", err)
	if len(gone) != 0 {
		t.Fatalf("findings outlived their agent: %+v", gone)
	}
	left, err := s.TrustFindings().ListByAgent(ctx, b.ID, 0)
	must(t, "list b", err)
	wantSame(t, "other agent's findings", findingIDs(left), []string{"fnd_4"})
}

// LatestByAgents answers for many agents at once, more than one query's
// worth, each with its newest findings only.
func testTrustFindingsLatest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	t0 := now().Add(-time.Hour)
	var ids []string
	for i := range 130 {
		a := newAgent(fmt.Sprintf("agt_%03d", i), storage.AgentAutonomous, &u.ID, nil)
		must(t, "create agent", s.Agents().Create(ctx, a))
		ids = append(ids, a.ID)
		if i%3 == 0 {
			continue // no findings
		}
		for j := range i % 5 {
			insertFinding(t, s, fmt.Sprintf("fnd_%03d_%d", i, j), a.ID, t0.Add(time.Duration(j)*time.Minute))
		}
	}
	got, err := s.TrustFindings().LatestByAgents(ctx, ids, 2)
	must(t, "latest", err)
	withFindings := 0
	for i, id := range ids {
		n := i % 5
		if i%3 == 0 {
			n = 0
		}
		fs, ok := got[id]
		if n == 0 {
			if ok {
				t.Fatalf("%s has no findings, got %+v", id, fs)
			}
			continue
		}
		withFindings++
		var want []string
		for j := n - 1; j >= 0 && len(want) < 2; j-- {
			want = append(want, fmt.Sprintf("fnd_%03d_%d", i, j))
		}
		wantSame(t, "latest of "+id, findingIDs(fs), want)
	}
	if len(got) != withFindings {
		t.Fatalf("latest for %d agents, want %d", len(got), withFindings)
	}
	empty, err := s.TrustFindings().LatestByAgents(ctx, nil, 3)
	must(t, "latest of none", err)
	if len(empty) != 0 {
		t.Fatalf("latest of no agents: %+v", empty)
	}
}

func testTrustFindingsDeleteBefore(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := newAgent("agt_a", storage.AgentAutonomous, &u.ID, nil)
	must(t, "create", s.Agents().Create(ctx, a))
	cut := now().Add(-24 * time.Hour)
	insertFinding(t, s, "fnd_old", a.ID, cut.Add(-time.Millisecond))
	insertFinding(t, s, "fnd_edge", a.ID, cut)
	insertFinding(t, s, "fnd_new", a.ID, cut.Add(time.Hour))
	n, err := s.TrustFindings().DeleteBefore(ctx, cut)
	must(t, "delete before", err)
	if n != 1 {
		t.Fatalf("deleted %d, want 1", n)
	}
	left, err := s.TrustFindings().ListByAgent(ctx, a.ID, 0)
	must(t, "list", err)
	wantSame(t, "kept", findingIDs(left), []string{"fnd_new", "fnd_edge"})
}

// A finding written in a transaction that fails is not stored.
func testTrustFindingsInTx(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := newAgent("agt_a", storage.AgentAutonomous, &u.ID, nil)
	must(t, "create", s.Agents().Create(ctx, a))
	boom := fmt.Errorf("boom")
	err := s.InTx(ctx, func(tx storage.Store) error {
		insertFinding(t, tx, "fnd_rolled_back", a.ID, now())
		return boom
	})
	wantErr(t, "failed tx", err, boom)
	must(t, "tx", s.InTx(ctx, func(tx storage.Store) error {
		insertFinding(t, tx, "fnd_kept", a.ID, now())
		return nil
	}))
	left, err := s.TrustFindings().ListByAgent(ctx, a.ID, 0)
	must(t, "list", err)
	wantSame(t, "after the transactions", findingIDs(left), []string{"fnd_kept"})
}
