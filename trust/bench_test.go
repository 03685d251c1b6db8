package trust

import (
	"net/netip"
	"testing"
	"time"
)

// The hot path is one Apply and one Observe per decision (and a Score
// where a policy needs the level). The lead's bar for Decide is ~50µs;
// these must stay around a microsecond or less, without allocations.

func BenchmarkApply(b *testing.B) {
	m := DefaultModel()
	var s State
	for _, e := range randomEvents(1, 1000) {
		s.Apply(e, m)
	}
	at := s.LastAt
	sigs := EventSignals()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		at = at.Add(time.Second)
		s.Apply(Event{At: at, Signal: sigs[i%4]}, m)
	}
}

func BenchmarkScore(b *testing.B) {
	m := DefaultModel()
	s := Recompute(randomEvents(1, 1000), m)
	now := s.LastAt.Add(time.Hour)
	b.ReportAllocs()
	var sink float64
	for b.Loop() {
		sink += s.Score(now, m).Score
	}
	_ = sink
}

func BenchmarkObserve(b *testing.B) {
	c := DefaultDetectorConfig()
	var base Baseline
	for _, o := range randomObservations(1, 5000) {
		base.Observe(o, o.At, c)
	}
	// A warm agent's ordinary calls: a known network, user agent and
	// token, a few resources, now and then denied.
	at := base.LastAt
	o := Observation{IP: netip.MustParseAddr("198.1.1.1"), UserAgent: "ua/1", TokenID: "t1", Resource: "r:1"}
	base.Observe(Observation{At: at, IP: o.IP, UserAgent: o.UserAgent, TokenID: o.TokenID}, at, c)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		at = at.Add(2 * time.Second)
		o.At = at
		o.Allowed, o.Denied = i%20 != 0, i%20 == 0
		base.Observe(o, at, c)
	}
}

// BenchmarkDecisionPath is what a decision adds: Observe, Apply of the
// decision's signal and of any findings, and a Score.
func BenchmarkDecisionPath(b *testing.B) {
	m, c := DefaultModel(), DefaultDetectorConfig()
	var s State
	var base Baseline
	for _, o := range randomObservations(1, 5000) {
		for _, f := range base.Observe(o, o.At, c) {
			s.Apply(f.Event(), m)
		}
		s.Apply(Event{At: o.At, Signal: SignalAllowed}, m)
	}
	at := base.LastAt
	o := Observation{IP: netip.MustParseAddr("198.1.1.1"), UserAgent: "ua/1", TokenID: "t1", Resource: "r:1", Allowed: true}
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(2 * time.Second)
		o.At = at
		for _, f := range base.Observe(o, at, c) {
			s.Apply(f.Event(), m)
		}
		s.Apply(Event{At: at, Signal: SignalAllowed}, m)
		_ = s.Score(at, m).Level
	}
}
