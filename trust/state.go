package trust

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// State is an agent's trust inputs, updated one event at a time by Apply
// and read by Score. It is a plain value: persist it as JSON (all times
// are UTC, so a decoded State is == to the encoded one) and apply the
// next events to the decoded copy.
//
// Decay without rescanning: each event adds weight · 2^((At − Ref)/h) to
// its signal's sum, h being the model's HalfLife, and Score multiplies by
// 2^(−(now − Ref)/h). Every event therefore decays from its own time,
// whatever the order it arrives in, and Apply touches one sum. Ref moves
// forward now and then (see rebaseAfter) so that the sums stay small;
// the move scales them by an exact power of two.
//
// The sums are in units of the model's HalfLife: after changing it,
// rebuild states with Recompute. Weights, caps and levels may change
// freely, except that whether an event was a violation
// (Model.ViolationPoints) was decided when it was applied.
type State struct {
	// Ref is the reference time of Sums; zero before the first event.
	Ref time.Time `json:"ref"`
	// Sums holds, per event signal, Σ severity · 2^((At − Ref)/HalfLife).
	Sums Sums `json:"sums"`
	// Counts holds, per event signal, the number of events ever applied.
	Counts Counts `json:"counts"`
	// Events is the number of events ever applied.
	Events int64 `json:"events"`
	// FirstAt and LastAt are the times of the earliest and of the latest
	// event; LastViolationAt that of the latest violation, zero if none.
	FirstAt         time.Time `json:"firstAt"`
	LastAt          time.Time `json:"lastAt"`
	LastViolationAt time.Time `json:"lastViolationAt"`
}

// Sums is a per-event-signal array of decayed sums. It encodes to JSON as
// an object keyed by signal name.
type Sums [NumEventSignals]float64

// Counts is a per-event-signal array of counts. It encodes to JSON as an
// object keyed by signal name.
type Counts [NumEventSignals]int64

// Of returns the value for signal sig, 0 for a derived or unknown signal.
func (s *Sums) Of(sig Signal) float64 {
	if i := sig.index(); i >= 0 {
		return s[i]
	}
	return 0
}

// Of returns the count for signal sig, 0 for a derived or unknown signal.
func (c *Counts) Of(sig Signal) int64 {
	if i := sig.index(); i >= 0 {
		return c[i]
	}
	return 0
}

// rebaseAfter is how many half-lives Ref may lag behind an event before
// Apply moves it: 2^32 keeps the sums far from float64's range while
// moving Ref only every 32 half-lives (seven months by default).
const rebaseAfter = 32

// Apply adds one event to the state. It costs O(1) (one sum changes) and
// reads no history.
//
// Events are meant to arrive in time order, but need not: an event older
// than LastAt (from another node, or a late retry) is applied at its own
// time and decays from there, so the state equals the one of the sorted
// sequence up to floating-point rounding (the sums are added in another
// order). Equal inputs in equal order give bit-identical states on every
// architecture (see exp2).
//
// Apply ignores events with a zero At or a signal that is not an event
// signal (IsEvent), since neither can be placed on the timeline. m must
// be valid (Model.Validate); with a non-positive HalfLife Apply does
// nothing.
func (s *State) Apply(e Event, m Model) {
	i := e.Signal.index()
	if i < 0 || e.At.IsZero() || m.HalfLife <= 0 {
		return
	}
	at := e.At.UTC()
	if s.Events == 0 && s.Ref.IsZero() {
		s.Ref = at
	}
	d := at.Sub(s.Ref)
	if d >= rebaseAfter*m.HalfLife {
		s.rebase(d, m.HalfLife)
		d = at.Sub(s.Ref)
	}
	w := e.weight()
	s.Sums[i] += float64(w * exp2(float64(d)/float64(m.HalfLife)))
	s.Counts[i]++
	s.Events++
	if s.FirstAt.IsZero() || at.Before(s.FirstAt) {
		s.FirstAt = at
	}
	if at.After(s.LastAt) {
		s.LastAt = at
	}
	if i != iAllowed && i != iDenied && float64(m.linear(i).Weight*w) >= m.ViolationPoints && at.After(s.LastViolationAt) {
		s.LastViolationAt = at
	}
}

// rebase moves Ref forward by whole half-lives, at most d, and scales the
// sums to match. Scaling by a power of two is exact (barring subnormal
// values, i.e. events over a thousand half-lives old).
func (s *State) rebase(d, halfLife time.Duration) {
	k := d / halfLife // whole half-lives; k·halfLife ≤ d cannot overflow
	for i := range s.Sums {
		s.Sums[i] = math.Ldexp(s.Sums[i], -int(k))
	}
	s.Ref = s.Ref.Add(k * halfLife)
}

// Recompute folds events, in the given order, into a new State: the
// State that applying them one by one from the zero State gives. Pass
// them in the order they were applied (for example the audit log's
// order) to get a bit-identical result; another order gives the same
// state up to floating-point rounding.
func Recompute(events []Event, m Model) State {
	var s State
	for _, e := range events {
		s.Apply(e, m)
	}
	return s
}

// MarshalJSON encodes the sums as {"allowed": 12.5, …} in signal order.
func (s Sums) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32*NumEventSignals)
	b = append(b, '{')
	for i, v := range s {
		if !finite(v) {
			return nil, fmt.Errorf("trust: sum of %s is not finite", eventSignals[i])
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, string(eventSignals[i]))
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'g', -1, 64) // shortest form that parses back to v
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes what MarshalJSON encodes. Missing signals are 0;
// unknown names are ignored, so that a State written by a later version
// with more signals still loads (losing only those signals).
func (s *Sums) UnmarshalJSON(b []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*s = Sums{}
	for k, v := range m {
		if i := Signal(k).index(); i >= 0 {
			s[i] = v
		}
	}
	return nil
}

// MarshalJSON encodes the counts as {"allowed": 12, …} in signal order.
func (c Counts) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 24*NumEventSignals)
	b = append(b, '{')
	for i, v := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, string(eventSignals[i]))
		b = append(b, ':')
		b = strconv.AppendInt(b, v, 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes what MarshalJSON encodes, with the rules of
// Sums.UnmarshalJSON.
func (c *Counts) UnmarshalJSON(b []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = Counts{}
	for k, v := range m {
		if i := Signal(k).index(); i >= 0 {
			c[i] = v
		}
	}
	return nil
}

// Merge adds o's events into s, as if they had been applied to s: the
// sums add at a common reference time (the later one), counts add, and
// the first, last and last-violation times combine. Nodes that each
// applied part of an agent's events merge their states into one; up to
// floating-point rounding the result is Recompute of all the events.
func (s *State) Merge(o State, m Model) {
	if o.Events == 0 || m.HalfLife <= 0 {
		return
	}
	if s.Events == 0 && s.Ref.IsZero() {
		*s = o
		return
	}
	ref := s.Ref
	if o.Ref.After(ref) {
		ref = o.Ref
	}
	at := func(sums Sums, from time.Time) Sums {
		if d := ref.Sub(from); d != 0 {
			f := exp2(-float64(d) / float64(m.HalfLife))
			for i := range sums {
				sums[i] *= f
			}
		}
		return sums
	}
	mine, theirs := at(s.Sums, s.Ref), at(o.Sums, o.Ref)
	s.Ref = ref
	for i := range s.Sums {
		s.Sums[i] = mine[i] + theirs[i]
		s.Counts[i] += o.Counts[i]
	}
	s.Events += o.Events
	if s.FirstAt.IsZero() || !o.FirstAt.IsZero() && o.FirstAt.Before(s.FirstAt) {
		s.FirstAt = o.FirstAt
	}
	if o.LastAt.After(s.LastAt) {
		s.LastAt = o.LastAt
	}
	if o.LastViolationAt.After(s.LastViolationAt) {
		s.LastViolationAt = o.LastViolationAt
	}
}
