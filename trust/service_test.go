package trust_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
	"github.com/kavachos/kavach/trust"
)

// The detectors run on what Observe queued when the service flushes: on
// SQLite and on PostgreSQL, with the baseline, the findings, their audit
// records and outbox events stored together.

var (
	home    = netip.MustParseAddr("203.0.113.10")
	faraway = netip.MustParseAddr("198.51.100.7")
	// monday is a simulated day; every timeline here starts at it.
	monday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
)

type fixture struct {
	t     *testing.T
	store storage.Store
	mu    sync.Mutex
	now   time.Time
}

func (f *fixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fixture) setNow(t time.Time) { f.mu.Lock(); defer f.mu.Unlock(); f.now = t }

// service is one node's trust service on the fixture's store.
func (f *fixture) service() *trust.Service {
	f.t.Helper()
	svc, err := trust.NewService(f.store, trust.DefaultModel(), trust.DetectorConfig{}, f.clock, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

func (f *fixture) agent() string {
	f.t.Helper()
	ctx := f.t.Context()
	uid := id.New("usr")
	if err := f.store.Users().Create(ctx, &storage.User{ID: uid, Email: uid + "@example.com"}); err != nil {
		f.t.Fatal(err)
	}
	a := &storage.Agent{ID: id.New("agt"), Type: storage.AgentAutonomous, Name: "watched", OwnerUserID: &uid, Status: storage.AgentActive}
	if err := f.store.Agents().Create(ctx, a); err != nil {
		f.t.Fatal(err)
	}
	return a.ID
}

func usualCall(at time.Time) trust.Observation {
	return trust.Observation{At: at, IP: home, UserAgent: "sdk/1.0", Allowed: true, Resource: "mcp:github:issues", TokenID: "tok-1"}
}

// warm queues 20 usual calls a working day for four days (enough for
// every detector that fires below) and returns the time of the last.
func warm(svc *trust.Service, agentID string) time.Time {
	var at time.Time
	for d := range 4 {
		for i := range 20 {
			at = monday.Add(time.Duration(d)*24*time.Hour + 9*time.Hour + time.Duration(i)*24*time.Minute)
			svc.Observe(agentID, usualCall(at))
		}
	}
	return at
}

func (f *fixture) flush(svc *trust.Service) {
	f.t.Helper()
	if err := svc.Flush(f.t.Context()); err != nil {
		f.t.Fatalf("flush: %v", err)
	}
}

func (f *fixture) findings(agentID string) []storage.TrustFinding {
	f.t.Helper()
	fs, err := f.store.TrustFindings().ListByAgent(f.t.Context(), agentID, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return fs
}

func kinds(fs []storage.TrustFinding) map[string]int {
	out := map[string]int{}
	for _, f := range fs {
		out[f.Kind]++
	}
	return out
}

func (f *fixture) baseline(agentID string) trust.Baseline {
	f.t.Helper()
	ts, err := f.store.TrustStates().Get(f.t.Context(), agentID)
	if err != nil {
		f.t.Fatal(err)
	}
	var b trust.Baseline
	if err := json.Unmarshal(ts.Baseline, &b); err != nil {
		f.t.Fatalf("stored baseline %s: %v", ts.Baseline, err)
	}
	return b
}

// agreesWithAudit checks that the stored state is the one the audit log
// rebuilds, and returns it.
func (f *fixture) agreesWithAudit(svc *trust.Service, agentID string) trust.State {
	f.t.Helper()
	stored, err := svc.State(f.t.Context(), agentID)
	if err != nil {
		f.t.Fatal(err)
	}
	rebuilt, err := svc.RecomputeFromAudit(f.t.Context(), agentID)
	if err != nil {
		f.t.Fatal(err)
	}
	m := trust.DefaultModel()
	at := stored.LastAt.Add(time.Hour)
	if rebuilt.Counts != stored.Counts || rebuilt.Events != stored.Events ||
		math.Abs(rebuilt.Score(at, m).Score-stored.Score(at, m).Score) > 1e-6 {
		f.t.Fatalf("rebuilt from the audit log %+v, stored %+v", rebuilt, stored)
	}
	return stored
}

func forEachStore(t *testing.T, run func(f *fixture)) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			run(&fixture{t: t, store: d.Open(t), now: monday})
		})
	}
}

func TestFlushRunsDetectors(t *testing.T) {
	forEachStore(t, func(f *fixture) {
		ctx := f.t.Context()
		svc := f.service()
		a := f.agent()
		last := warm(svc, a)
		f.setNow(last.Add(time.Second))
		f.flush(svc)
		if fs := f.findings(a); len(fs) != 0 {
			f.t.Fatalf("usual calls made findings: %+v", fs)
		}
		if b := f.baseline(a); b.Observations != 80 || !b.LastAt.Equal(last) {
			f.t.Fatalf("stored baseline after warming: %d observations, last %v", b.Observations, b.LastAt)
		}

		// The same network again: nothing. Then the agent's token from a
		// distant network two minutes later: a new network, and one token
		// in two places.
		svc.Observe(a, usualCall(last.Add(time.Minute)))
		odd := usualCall(last.Add(2 * time.Minute))
		odd.IP = faraway
		svc.Observe(a, odd)
		f.setNow(last.Add(3 * time.Minute))
		f.flush(svc)
		fs := f.findings(a)
		if k := kinds(fs); len(fs) != 2 || k["new_network"] != 1 || k["token_two_networks"] != 1 {
			f.t.Fatalf("findings %+v", fs)
		}
		for _, x := range fs {
			if !x.At.Equal(odd.At) || x.Severity <= 0 || x.Detail == "" || x.AgentID != a {
				f.t.Fatalf("finding %+v", x)
			}
		}
		if b := f.baseline(a); b.Observations != 82 {
			f.t.Fatalf("stored baseline: %d observations, want 82", b.Observations)
		}

		// The findings are anomaly events of the score, audit records and
		// outbox events.
		st := f.agreesWithAudit(svc, a)
		if n := st.Counts.Of(trust.SignalAnomaly); n != 2 || st.Events != 2 {
			f.t.Fatalf("state %+v", st)
		}
		want := -5 * (0.5 + 3) // 5 points per unit of severity: new_network's and token_two_networks'
		if got := points(st.Score(odd.At, trust.DefaultModel()), trust.SignalAnomaly); math.Abs(got-want) > 1e-9 {
			f.t.Fatalf("anomaly points %v, want %v", got, want)
		}
		recs, _, err := f.store.Audit().Query(ctx, storage.AuditFilter{AgentID: a, Event: trust.EventFinding})
		if err != nil || len(recs) != 2 {
			f.t.Fatalf("audit records %+v %v", recs, err)
		}
		for _, r := range recs {
			var x struct {
				FindingID, Kind string
				Severity        float64
			}
			if err := json.Unmarshal(r.Extra, &x); err != nil || x.Kind != r.Reason || x.FindingID == "" || x.Severity <= 0 ||
				r.Kind != storage.AuditKindSecurity || !r.At.Equal(odd.At) {
				f.t.Fatalf("audit record %+v (%s): %v", r, r.Extra, err)
			}
		}
		events, err := f.store.Events().Pending(ctx, 100)
		if err != nil {
			f.t.Fatal(err)
		}
		var outboxed int
		for _, e := range events {
			if e.Type == trust.EventFinding && e.Subject == a {
				outboxed++
			}
		}
		if outboxed != 2 {
			f.t.Fatalf("%d trust.finding events in the outbox, want 2", outboxed)
		}

		// A later service on the same store (a restart) goes on from the
		// stored baseline: the far network is known now.
		again := f.service()
		back := usualCall(last.Add(10 * time.Minute))
		back.IP = faraway
		back.TokenID = "tok-2"
		again.Observe(a, back)
		f.setNow(back.At)
		f.flush(again)
		if fs := f.findings(a); len(fs) != 2 {
			f.t.Fatalf("a known network made a finding after a restart: %+v", fs)
		}
		if b := f.baseline(a); b.Observations != 83 {
			f.t.Fatalf("baseline after the restart: %d observations", b.Observations)
		}
	})
}

// Two nodes flushing for one agent at once: each one's observations go
// through the one stored baseline, under the agent's row lock; nothing
// is lost or counted twice.
func TestTwoNodesObserveOneAgent(t *testing.T) {
	forEachStore(t, func(f *fixture) {
		one, two := f.service(), f.service()
		a := f.agent()
		last := warm(one, a)
		f.setNow(last.Add(time.Second))
		f.flush(one)

		for i := range 10 {
			two.Observe(a, usualCall(last.Add(time.Duration(i+1)*time.Second)))
		}
		spread := usualCall(last.Add(time.Minute))
		spread.IP = faraway
		one.Observe(a, spread)
		one.Record(a, trust.Event{At: spread.At, Signal: trust.SignalAllowed})
		fresh := usualCall(last.Add(time.Minute + time.Second))
		fresh.IP = netip.MustParseAddr("192.0.2.55")
		fresh.TokenID = "tok-9"
		two.Observe(a, fresh)
		two.Record(a, trust.Event{At: fresh.At, Signal: trust.SignalAllowed})
		f.setNow(last.Add(2 * time.Minute))
		var wg sync.WaitGroup
		for _, svc := range []*trust.Service{one, two} {
			wg.Go(func() {
				if err := svc.Flush(f.t.Context()); err != nil {
					f.t.Errorf("flush: %v", err)
				}
			})
		}
		wg.Wait()

		if b := f.baseline(a); b.Observations != 80+10+2 {
			f.t.Fatalf("baseline holds %d observations, want 92", b.Observations)
		}
		fs := f.findings(a)
		if k := kinds(fs); k["new_network"] != 2 || k["token_two_networks"] != 1 || len(fs) != 3 {
			f.t.Fatalf("findings %+v", fs)
		}
		// Both nodes' deltas and findings are in the stored state. (The
		// allowed events have no audit records here: there is no decision
		// point in this test.)
		ts, err := f.store.TrustStates().Get(f.t.Context(), a)
		if err != nil {
			f.t.Fatal(err)
		}
		var st trust.State
		if err := json.Unmarshal(ts.State, &st); err != nil {
			f.t.Fatal(err)
		}
		if st.Counts.Of(trust.SignalAnomaly) != 3 || st.Counts.Of(trust.SignalAllowed) != 2 || st.Events != 5 {
			f.t.Fatalf("stored state %+v", st)
		}
	})
}

func points(b trust.Breakdown, sig trust.Signal) float64 {
	for _, c := range b.Contributions {
		if c.Signal == sig {
			return c.Points
		}
	}
	return math.NaN()
}

// A flush that fails keeps its observations for the next one, which then
// finds what the failed one would have; the findings are stored once.
func TestFailedFlushKeepsObservations(t *testing.T) {
	forEachStore(t, func(f *fixture) {
		svc := f.service()
		a := f.agent()
		last := warm(svc, a)
		odd := usualCall(last.Add(time.Minute))
		odd.IP = faraway
		svc.Observe(a, odd)
		f.setNow(odd.At)
		canceled, cancel := context.WithCancel(f.t.Context())
		cancel()
		if err := svc.Flush(canceled); err == nil {
			f.t.Fatal("a flush with a canceled context succeeded")
		}
		if fs := f.findings(a); len(fs) != 0 {
			f.t.Fatalf("a failed flush stored findings: %+v", fs)
		}
		f.flush(svc)
		if k := kinds(f.findings(a)); k["new_network"] != 1 || k["token_two_networks"] != 1 || len(k) != 2 {
			f.t.Fatalf("findings after the retry: %v", k)
		}
		if b := f.baseline(a); b.Observations != 81 {
			f.t.Fatalf("baseline holds %d observations, want 81", b.Observations)
		}
		f.flush(svc) // nothing left to replay
		if n := len(f.findings(a)); n != 2 {
			f.t.Fatalf("%d findings after another flush", n)
		}
		f.agreesWithAudit(svc, a)
	})
}

// The queue keeps at most MaxQueuedObservations per agent, and
// MaxQueuedObservationsTotal in all, between two flushes; observations of
// a deleted agent go with it.
func TestObservationQueueBounds(t *testing.T) {
	forEachStore(t, func(f *fixture) {
		svc := f.service()
		agents := make([]string, 1+trust.MaxQueuedObservationsTotal/trust.MaxQueuedObservations)
		for i := range agents {
			agents[i] = f.agent()
			n := trust.MaxQueuedObservations
			if i == 0 {
				n += 25 // beyond its own bound
			}
			for j := range n {
				svc.Observe(agents[i], usualCall(monday.Add(time.Duration(j)*time.Millisecond)))
			}
		}
		gone := f.agent()
		svc.Observe(gone, usualCall(monday))
		if err := f.store.Agents().Delete(f.t.Context(), gone); err != nil {
			f.t.Fatal(err)
		}
		f.setNow(monday.Add(time.Minute))
		f.flush(svc)
		last := agents[len(agents)-1]
		for _, a := range agents[:len(agents)-1] {
			if b := f.baseline(a); b.Observations != trust.MaxQueuedObservations {
				f.t.Fatalf("baseline of %s holds %d observations, want %d", a, b.Observations, trust.MaxQueuedObservations)
			}
		}
		for _, a := range []string{last, gone} {
			if _, err := f.store.TrustStates().Get(f.t.Context(), a); !errors.Is(err, storage.ErrNotFound) {
				f.t.Fatalf("state of %s, which the full queue or its deletion dropped: %v", a, err)
			}
		}
		svc.Observe(last, usualCall(monday.Add(2*time.Second)))
		f.flush(svc)
		if b := f.baseline(last); b.Observations != 1 {
			f.t.Fatalf("the queue did not start afresh: %d observations", b.Observations)
		}
	})
}

func TestObservationForDecision(t *testing.T) {
	tests := []struct {
		code            string
		probe           bool
		observed        bool
		allowed, denied bool
	}{
		{"ALLOWED", false, true, true, false},
		{"PERMISSION_DENIED", false, true, false, true},
		{"PERMISSION_DENIED", true, true, false, true},
		{"INVALID_REQUEST", false, true, false, true},
		{"IP_NOT_ALLOWED", false, true, false, true},
		{"RATE_LIMITED", false, true, false, false},
		{"BUDGET_EXCEEDED", false, true, false, false},
		{"APPROVAL_REQUIRED", false, true, false, false},
		{"AGENT_SUSPENDED", false, false, false, false},
		{"AGENT_NOT_FOUND", false, false, false, false},
		{"UNAVAILABLE", false, false, false, false},
		{"INVALID_GRANT", false, false, false, false},
		{"SOMETHING_NEW", false, false, false, false},
	}
	for _, tc := range tests {
		o, ok := trust.ObservationForDecision(tc.code, tc.probe)
		if ok != tc.observed || o.Allowed != tc.allowed || o.Denied != tc.denied {
			t.Errorf("%s (probe %v): %+v %v", tc.code, tc.probe, o, ok)
		}
	}
}
