package trust_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
	"github.com/kavachos/kavach/trust"
)

// The score can be rebuilt from the audit log: real decisions (allowed, a
// near miss, a probe, a constraint violation) and security records read
// back into the events they stand for, in order.
func TestEventsFromAuditLog(t *testing.T) {
	ctx := context.Background()
	s := storagetest.OpenSQLite(t)
	w := authz.NewAuditWriter(s.Audit())
	t.Cleanup(w.Close)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	svc := agents.NewService(s, w, agents.Config{Now: func() time.Time { return at }})
	uid := id.New("usr")
	if err := s.Users().Create(ctx, &storage.User{ID: uid, Email: uid + "@example.com"}); err != nil {
		t.Fatal(err)
	}
	a, _, _, err := svc.Create(ctx, agents.CreateInput{OwnerUserID: uid, Name: "bot", Permissions: []agents.Grant{
		{Resource: "mcp:github:*", Actions: []string{"read"}},
		{Resource: "mcp:deploy:*", Actions: []string{"run"}, Constraints: agents.Constraints{IPAllow: []string{"10.0.0.0/8"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	decide := func(action, resource string) {
		svc.Decide(ctx, agents.DecideRequest{AgentID: a.ID, Action: action, Resource: resource})
	}
	decide("read", "mcp:github:issues")    // allowed
	decide("read", "mcp:slack:general")    // a near miss: denied
	decide("read", "billing:invoices")     // outside every namespace: probe
	decide("run", "mcp:deploy:production") // no IP: constraint violation
	svc.Decide(ctx, agents.DecideRequest{AgentID: a.ID, Action: "read", Resource: "billing:x", DryRun: true})
	refused := storage.AuditRecord{ID: id.New("aud"), At: at, Kind: storage.AuditKindSecurity, Event: "token.refused",
		AgentID: a.ID, PrincipalType: "agent", PrincipalID: a.ID, Result: storage.AuditFail, Reason: "invalid_client"}
	if err := s.Audit().Append(ctx, []storage.AuditRecord{refused}); err != nil {
		t.Fatal(err)
	}

	var got []trust.Signal
	var events []trust.Event
	err = s.Audit().Scan(ctx, 1, func(r storage.AuditRecord) error {
		if agentID, e, ok := trust.EventFromAudit(r); ok {
			if agentID != a.ID {
				t.Fatalf("event for %s", agentID)
			}
			got = append(got, e.Signal)
			events = append(events, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []trust.Signal{trust.SignalAllowed, trust.SignalDenied, trust.SignalProbe, trust.SignalConstraintViolation, trust.SignalInvalidClientAuth}
	if len(got) != len(want) {
		t.Fatalf("signals %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("signals %v, want %v", got, want)
		}
	}
	m := trust.DefaultModel()
	if st := trust.Recompute(events, m); st.Events != int64(len(want)) {
		t.Fatalf("recomputed state %+v", st)
	}
}

// Two nodes that each applied part of an agent's events merge into the
// state of all of them, whatever the split.
func TestMergeEqualsRecompute(t *testing.T) {
	m := trust.DefaultModel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sigs := []trust.Signal{trust.SignalAllowed, trust.SignalAllowed, trust.SignalProbe, trust.SignalDenied, trust.SignalRateLimited}
	var all []trust.Event
	for i := range 400 {
		all = append(all, trust.Event{At: t0.Add(time.Duration(i) * 97 * time.Minute), Signal: sigs[i%len(sigs)]})
	}
	whole := trust.Recompute(all, m)
	for _, split := range []func(i int) bool{
		func(i int) bool { return i%2 == 0 }, // interleaved
		func(i int) bool { return i < 100 },  // the first node stopped early
		func(i int) bool { return i%7 == 3 }, // uneven
		func(i int) bool { return i >= 390 }, // the second node saw almost everything
		func(int) bool { return true },       // one node saw everything
	} {
		var a, b trust.State
		for i, e := range all {
			if split(i) {
				a.Apply(e, m)
			} else {
				b.Apply(e, m)
			}
		}
		a.Merge(b, m)
		if a.Events != whole.Events || !a.FirstAt.Equal(whole.FirstAt) || !a.LastAt.Equal(whole.LastAt) ||
			!a.LastViolationAt.Equal(whole.LastViolationAt) || a.Counts != whole.Counts {
			t.Fatalf("merged state %+v, want %+v", a, whole)
		}
		now := all[len(all)-1].At.Add(time.Hour)
		if ga, gw := a.Score(now, m).Score, whole.Score(now, m).Score; math.Abs(ga-gw) > 1e-9 {
			t.Fatalf("merged score %v, recomputed %v", ga, gw)
		}
	}
}

// Security records of the token endpoint and of the detectors read back
// into their events: failed client authentication, refresh-token reuse
// and anomaly findings with their severity.
func TestSecurityRecordsToEvents(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	rec := func(event, reason, extra string) storage.AuditRecord {
		r := storage.AuditRecord{At: at, Kind: storage.AuditKindSecurity, Event: event, AgentID: "agt_1", Reason: reason}
		if extra != "" {
			r.Extra = []byte(extra)
		}
		return r
	}
	tests := []struct {
		name string
		r    storage.AuditRecord
		want trust.Event
		ok   bool
	}{
		{"failed client authentication", rec("token.refused", "invalid_client", `{"authenticated":false}`),
			trust.Event{At: at, Signal: trust.SignalInvalidClientAuth}, true},
		{"refresh-token reuse", rec("token.refused", "invalid_grant", `{"refreshTokenReuse":true}`),
			trust.Event{At: at, Signal: trust.SignalRefreshTokenReuse}, true},
		{"another refused request", rec("token.refused", "invalid_grant", ""), trust.Event{}, false},
		{"unreadable extra", rec("token.refused", "invalid_grant", `{"refreshTokenReuse":`), trust.Event{}, false},
		{"finding", rec(trust.EventFinding, "token_two_networks", `{"kind":"token_two_networks","severity":3,"at":"2026-11-02T09:00:00Z"}`),
			trust.Event{At: at, Signal: trust.SignalAnomaly, Severity: 3}, true},
		{"finding without its extra", rec(trust.EventFinding, "burst", ""), trust.Event{}, false},
		{"denied approval", rec("approval.denied", "", ""), trust.Event{At: at, Signal: trust.SignalApprovalDenied}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agentID, e, ok := trust.EventFromAudit(tc.r)
			if ok != tc.ok || e != tc.want || ok && agentID != "agt_1" {
				t.Fatalf("EventFromAudit = %q %+v %v, want %+v %v", agentID, e, ok, tc.want, tc.ok)
			}
		})
	}
}
