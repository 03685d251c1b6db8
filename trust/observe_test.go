package trust

import (
	"testing"
	"time"
)

// A failed flush's observations go back ahead of the newer ones, within
// both bounds, the newest dropped first and counted.
func TestRequeueKeepsBounds(t *testing.T) {
	obs := func(n int, from time.Duration) []Observation {
		out := make([]Observation, n)
		for i := range out {
			out[i].At = t0.Add(from + time.Duration(i)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name                 string
		failed, newer, other int // observations of the failed flush, queued since, of another agent
		wantKept, wantDrop   int
	}{
		{"room for all", 10, 5, 0, 15, 0},
		{"agent bound", MaxQueuedObservations - 3, 5, 0, MaxQueuedObservations, 2},
		{"total bound", 100, 5, MaxQueuedObservationsTotal - 50, 50, 55},
		{"nothing newer", 7, 0, 0, 7, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{observed: map[string][]Observation{}, dropped: map[string]int{}}
			if tc.newer > 0 {
				s.observed["a"] = obs(tc.newer, time.Hour)
			}
			if tc.other > 0 {
				s.observed["b"] = make([]Observation, tc.other)
			}
			s.queued = tc.newer + tc.other
			s.requeue("a", obs(tc.failed, 0))
			q := s.observed["a"]
			if len(q) != tc.wantKept || s.dropped["a"] != tc.wantDrop || s.queued != tc.other+tc.wantKept {
				t.Fatalf("kept %d, dropped %d, queued %d", len(q), s.dropped["a"], s.queued)
			}
			if !q[0].At.Equal(t0) {
				t.Fatalf("the oldest observation is not first: %v", q[0].At)
			}
		})
	}
}
