package agents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
	"github.com/kavachos/kavach/trust"
)

// BenchmarkDecide measures the decision point in process: cached grants,
// evaluation, rate-limit counters and a durable audit record per decision
// (group-committed by authz.AuditWriter to SQLite in WAL mode), from 8 and
// from 32 goroutines per CPU. Throughput grows with concurrent callers,
// since a commit holds whatever queued while the previous one ran; a busy
// server has many.
func BenchmarkDecide(b *testing.B) {
	for _, per := range []int{8, 32} {
		b.Run(fmt.Sprintf("callers=%d", per*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s := storagetest.OpenSQLite(b)
			w := authz.NewAuditWriter(s.Audit())
			b.Cleanup(w.Close)
			benchmarkDecide(b, s, w, per)
		})
	}
}

// BenchmarkDecideWithTrust is BenchmarkDecide (16 callers) with every
// decision also applied to the agent's trust state and queued for the
// anomaly detectors, and a flush every second, as the server does.
func BenchmarkDecideWithTrust(b *testing.B) {
	s, w, ts := benchTrustSetup(b)
	flushing(b, ts, func() { benchmarkDecideWith(b, s, w, 8, agents.Config{Trust: benchTrust{ts}}) })
}

// flushing runs fn while ts is flushed every second, as the server does,
// and flushes what is left after it.
func flushing(b *testing.B, ts *trust.Service, fn func()) {
	stop := make(chan struct{})
	var flushes sync.WaitGroup
	flushes.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := ts.Flush(context.Background()); err != nil {
					b.Error(err)
				}
			}
		}
	})
	fn()
	close(stop)
	flushes.Wait()
	if err := ts.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDecideWithTrustPolicies is BenchmarkDecideWithTrust with
// trust policies in force: a minimum level on the resource called (which
// the agent meets), so every decision reads the agent's level, and a
// dozen policies that do not match it.
func BenchmarkDecideWithTrustPolicies(b *testing.B) {
	s, w, ts := benchTrustSetup(b)
	pol, err := ts.EnablePolicies(b.Context(), trust.PolicyConfig{Compile: func(p string) (trust.Matcher, error) {
		m, err := agents.ParsePattern(p)
		if err != nil {
			return nil, err
		}
		return m, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	add := func(resource string, level trust.Level) {
		if _, err := pol.Create(b.Context(), trust.Actor{Type: "cli", Platform: true}, trust.PolicyInput{Name: resource,
			Scope: trust.PolicyScope{Type: storage.TrustPolicyGlobal}, Effect: trust.EffectMinimumLevel,
			Resources: []string{resource}, Level: level}); err != nil {
			b.Fatal(err)
		}
	}
	add("mcp:service6:*", trust.LevelLimited)
	for i := range 12 {
		add(fmt.Sprintf("billing:area%d:*", i), trust.LevelTrusted)
	}
	flushing(b, ts, func() {
		benchmarkDecideWith(b, s, w, 8, agents.Config{Trust: benchTrust{ts}, TrustGate: benchGate{pol}})
	})
}

// benchGate is the server's gate (package kavach's trustGate).
type benchGate struct{ p *trust.Policies }

func (g benchGate) Gate(ctx context.Context, agentID, orgID string, ancestors []string, resource string) (agents.TrustAnswer, error) {
	if !g.p.Active() {
		return agents.TrustAnswer{}, nil
	}
	v, err := g.p.Gate(ctx, trust.Subject{OrganizationID: orgID, Chain: append([]string{agentID}, ancestors...)}, resource)
	if err != nil || v.Effect == "" {
		return agents.TrustAnswer{}, err
	}
	return agents.TrustAnswer{Refuse: v.Effect == trust.EffectMinimumLevel, Approval: v.Effect == trust.EffectRequireApproval,
		Reason: "trust", PolicyID: v.Policy.ID, Level: string(v.Level)}, nil
}

// benchTrustSetup is a store, its audit writer and a trust service.
func benchTrustSetup(b *testing.B) (storage.Store, *authz.AuditWriter, *trust.Service) {
	s := storagetest.OpenSQLite(b)
	w := authz.NewAuditWriter(s.Audit())
	b.Cleanup(w.Close)
	ts, err := trust.NewService(s, trust.DefaultModel(), trust.DetectorConfig{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return s, w, ts
}

// benchTrust does what the server's observer does (kavach.trustObserver).
type benchTrust struct{ t *trust.Service }

func (o benchTrust) Decision(d agents.TrustDecision) {
	if sig := trust.SignalForDecision(d.Code, d.Probe); sig != "" {
		o.t.Record(d.AgentID, trust.Event{At: d.At, Signal: sig})
	}
	if obs, ok := trust.ObservationForDecision(d.Code, d.Probe); ok && d.TokenID != "" {
		obs.At, obs.IP, obs.UserAgent, obs.Resource, obs.TokenID = d.At, d.IP, d.UserAgent, d.Resource, d.TokenID
		o.t.Observe(d.AgentID, obs)
	}
}

func (o benchTrust) ApprovalDenied(string, time.Time) {}

// BenchmarkDecideWithTrustWithoutAudit is BenchmarkDecideWithoutAudit
// with trust as the server wires it: what trust adds to the decision
// point's own cost, without the audit write's noise.
func BenchmarkDecideWithTrustWithoutAudit(b *testing.B) {
	s, _, ts := benchTrustSetup(b)
	flushing(b, ts, func() { benchmarkDecideWith(b, s, nopRecorder{}, 8, agents.Config{Trust: benchTrust{ts}}) })
}

// BenchmarkDecideWithoutAudit is BenchmarkDecide with a recorder that
// keeps nothing: what the decision point itself costs.
func BenchmarkDecideWithoutAudit(b *testing.B) {
	benchmarkDecide(b, storagetest.OpenSQLite(b), nopRecorder{}, 8)
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, storage.AuditRecord) (int64, error) { return 1, nil }

func benchmarkDecide(b *testing.B, s storage.Store, rec agents.Recorder, parallelism int) {
	benchmarkDecideWith(b, s, rec, parallelism, agents.Config{})
}

func benchmarkDecideWith(b *testing.B, s storage.Store, rec agents.Recorder, parallelism int, cfg agents.Config) {
	grants := make([]agents.Grant, 10)
	for i := range grants {
		grants[i] = agents.Grant{Resource: fmt.Sprintf("mcp:service%d:*", i), Actions: []string{"read", "create_issue", "comment"}}
	}
	grants[6].Constraints = agents.Constraints{
		RateLimits: []agents.RateLimit{{Window: agents.PerMinute, Max: 1 << 30}},
		IPAllow:    []string{"10.0.0.0/8", "2001:db8::/32"},
		Arguments:  []agents.ArgumentRule{{Pointer: "/repo", Regex: "kavachos/[a-z-]+", Required: true}},
	}
	req := agents.DecideRequest{
		Action: "create_issue", Resource: "mcp:service6:issues",
		Arguments: json.RawMessage(`{"repo":"kavachos/kavach","title":"Decide is slow","labels":["bug"]}`),
		IP:        netip.MustParseAddr("10.20.30.40"), UserAgent: "bench/1.0", TokenID: "key_bench",
	}

	svc := agents.NewService(s, rec, cfg)
	uid := id.New("usr")
	if err := s.Users().Create(b.Context(), &storage.User{ID: uid, Email: uid + "@example.com"}); err != nil {
		b.Fatal(err)
	}
	a, _, _, err := svc.Create(b.Context(), agents.CreateInput{OwnerUserID: uid, Name: "bench", Permissions: grants})
	if err != nil {
		b.Fatal(err)
	}
	req.AgentID = a.ID
	if d := svc.Decide(b.Context(), req); !d.Allowed {
		b.Fatalf("decision %+v", d)
	}

	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d := svc.Decide(b.Context(), req); !d.Allowed || d.AuditID == "" {
				b.Errorf("decision %+v", d)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
