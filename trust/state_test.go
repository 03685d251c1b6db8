package trust

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

// randomEvents returns n events in time order over about 60 days, with
// every signal and a few severities.
func randomEvents(seed uint64, n int) []Event {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	sigs := EventSignals()
	at := t0
	out := make([]Event, n)
	for i := range out {
		at = at.Add(time.Duration(r.Int64N(int64(60 * Day / time.Duration(n) * 2))))
		sig := SignalAllowed
		if r.IntN(4) == 0 {
			sig = sigs[r.IntN(len(sigs))]
		}
		out[i] = Event{At: at, Signal: sig, Severity: []float64{0, 0, 0.5, 2}[r.IntN(4)]}
	}
	return out
}

func TestApplyIsDeterministic(t *testing.T) {
	m := DefaultModel()
	events := randomEvents(1, 5000)
	a, b := Recompute(events, m), Recompute(events, m)
	if a != b {
		t.Fatalf("two folds of the same events differ:\n%+v\n%+v", a, b)
	}
	now := events[len(events)-1].At.Add(3 * Day)
	if a.Score(now, m) != b.Score(now, m) {
		t.Fatal("equal states score differently")
	}

	// A JSON round trip in the middle changes nothing, and encodes the
	// same bytes.
	var c State
	for i, e := range events {
		if i == len(events)/2 {
			raw, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var d State
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			if d != c {
				t.Fatalf("round trip changed the state:\n%+v\n%+v\n%s", c, d, raw)
			}
			c = d
		}
		c.Apply(e, m)
	}
	if c != a {
		t.Fatalf("state after a JSON round trip differs:\n%+v\n%+v", c, a)
	}
	ja, _ := json.Marshal(a)
	jc, _ := json.Marshal(c)
	if string(ja) != string(jc) {
		t.Fatalf("encodings differ:\n%s\n%s", ja, jc)
	}
	if bits(a.Score(now, m).Score) != bits(c.Score(now, m).Score) {
		t.Fatal("scores differ after a round trip")
	}
}

func bits(f float64) uint64 { return math.Float64bits(f) }

func TestRecomputeEqualsIncremental(t *testing.T) {
	m := DefaultModel()
	events := randomEvents(2, 3000)
	var inc State
	for i, e := range events {
		inc.Apply(e, m)
		if i%500 == 0 {
			if got := Recompute(events[:i+1], m); got != inc {
				t.Fatalf("after %d events: recompute %+v, incremental %+v", i+1, got, inc)
			}
		}
	}
	if got := Recompute(events, m); got != inc {
		t.Fatalf("recompute %+v, incremental %+v", got, inc)
	}
	if Recompute(nil, m) != (State{}) {
		t.Fatal("no events must give the zero state")
	}
}

// TestStateGolden pins a State's encoding and score for a fixed sequence,
// so that a change to the arithmetic (or a platform that computes it
// differently) is caught: persisted states must keep their meaning.
func TestStateGolden(t *testing.T) {
	m := DefaultModel()
	s := Recompute(randomEvents(3, 400), m)
	b := s.Score(s.LastAt.Add(36*time.Hour), m)
	if got := bits(b.Score); got != stateGoldenScoreBits {
		t.Errorf("score %v bits %#x, want %#x", b.Score, got, uint64(stateGoldenScoreBits))
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != stateGoldenJSON {
		t.Errorf("state encodes as\n%s\nwant\n%s", raw, stateGoldenJSON)
	}
}

const (
	stateGoldenScoreBits = 0x4044bb0dd15dbef5 // 41.46135918691099
	stateGoldenJSON      = `{"ref":"2026-03-02T09:11:47.938395563Z","sums":{"allowed":28330.349650365577,"denied":650.1809794348288,"probe":450.96562203241365,"constraint_violation":127.38985840561057,"approval_denied":165.06229645478248,"rate_limited":1442.597163546703,"budget_breach":460.90154603257554,"refresh_token_reuse":374.35960286772917,"invalid_client_auth":91.57393990022092,"anomaly":1052.9588639121953},"counts":{"allowed":319,"denied":8,"probe":14,"constraint_violation":10,"approval_denied":7,"rate_limited":13,"budget_breach":7,"refresh_token_reuse":6,"invalid_client_auth":9,"anomaly":7},"events":400,"firstAt":"2026-03-02T09:11:47.938395563Z","lastAt":"2026-05-02T20:28:22.061378421Z","lastViolationAt":"2026-04-29T21:41:22.044436395Z"}`
)

func TestApplyOutOfOrder(t *testing.T) {
	m := DefaultModel()
	sorted := randomEvents(4, 2000)
	shuffled := append([]Event(nil), sorted...)
	r := rand.New(rand.NewPCG(9, 9))
	// Late arrivals: swap neighbours within a few positions, as two
	// nodes' clocks and queues would.
	for i := range shuffled {
		j := min(len(shuffled)-1, i+r.IntN(5))
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	a, b := Recompute(sorted, m), Recompute(shuffled, m)
	// Ref is the first event applied, so the raw sums differ by a factor;
	// what they mean, the decayed values at a moment, must not.
	if a.FirstAt != b.FirstAt || a.LastAt != b.LastAt || a.LastViolationAt != b.LastViolationAt || a.Counts != b.Counts || a.Events != b.Events {
		t.Fatalf("times or counts depend on the order:\n%+v\n%+v", a, b)
	}
	now := a.LastAt.Add(Day)
	ba, bb := a.Score(now, m), b.Score(now, m)
	for i, ca := range ba.Contributions {
		cb := bb.Contributions[i]
		if math.Abs(ca.Value-cb.Value) > 1e-12*math.Abs(ca.Value) || math.Abs(ca.Points-cb.Points) > 1e-9 {
			t.Errorf("%s: %+v in order, %+v out of order", ca.Signal, ca, cb)
		}
	}
	if d := math.Abs(ba.Score - bb.Score); d > 1e-9 {
		t.Errorf("scores differ by %g", d)
	}

	// An event older than every other one moves FirstAt back and decays
	// from its own time: a probe 14 days (two half-lives) old counts a
	// quarter of a fresh one.
	var s State
	s.Apply(Event{At: t0, Signal: SignalAllowed}, m)
	s.Apply(Event{At: t0.Add(-14 * Day), Signal: SignalProbe}, m)
	if s.FirstAt != t0.Add(-14*Day) || s.LastAt != t0 || s.LastViolationAt != t0.Add(-14*Day) {
		t.Fatalf("times %+v", s)
	}
	if got := s.Score(t0, m).Contributions[iProbe].Value; got != 0.25 {
		t.Fatalf("a probe two half-lives old has value %v, want 0.25", got)
	}
}

func TestApplyIgnoresWhatItCannotPlace(t *testing.T) {
	m := DefaultModel()
	var s State
	s.Apply(Event{Signal: SignalProbe}, m)               // no time
	s.Apply(Event{At: t0, Signal: SignalAge}, m)         // derived
	s.Apply(Event{At: t0, Signal: "made_up"}, m)         // unknown
	s.Apply(Event{At: t0, Signal: SignalProbe}, Model{}) // invalid model
	if s != (State{}) {
		t.Fatalf("state changed: %+v", s)
	}
}

func TestApplyNormalizesTimes(t *testing.T) {
	m := DefaultModel()
	local := time.FixedZone("X", 5*3600+1800)
	var a, b State
	a.Apply(Event{At: t0, Signal: SignalAllowed}, m)
	b.Apply(Event{At: t0.In(local), Signal: SignalAllowed}, m)
	if a != b {
		t.Fatalf("the same instant in two zones gives two states:\n%+v\n%+v", a, b)
	}
	// A monotonic clock reading is dropped too.
	var c State
	c.Apply(Event{At: time.Now(), Signal: SignalAllowed}, m)
	raw, _ := json.Marshal(c)
	var d State
	if err := json.Unmarshal(raw, &d); err != nil || d != c {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, c, d)
	}
}

func TestRebaseKeepsValues(t *testing.T) {
	m := DefaultModel()
	// Two years of events, daily: Ref must move (32 half-lives is 224
	// days), and the decayed values must match a direct computation.
	var s State
	var events []Event
	for d := range 730 {
		e := Event{At: t0.Add(time.Duration(d)*Day + time.Duration(d%7)*time.Hour), Signal: SignalAllowed}
		if d%50 == 0 {
			e.Signal = SignalProbe
		}
		events = append(events, e)
		s.Apply(e, m)
	}
	if !s.Ref.After(t0.Add(600 * Day)) {
		t.Fatalf("Ref %v did not move", s.Ref)
	}
	now := s.LastAt.Add(5 * time.Hour)
	want := map[Signal]float64{}
	for _, e := range events {
		want[e.Signal] += math.Exp2(-float64(now.Sub(e.At)) / float64(m.HalfLife))
	}
	b := s.Score(now, m)
	for _, sig := range []Signal{SignalAllowed, SignalProbe} {
		got := b.Contributions[sig.index()].Value
		if math.Abs(got-want[sig]) > 1e-12*want[sig] {
			t.Errorf("%s: %v, want %v", sig, got, want[sig])
		}
	}
}

func TestSumsJSON(t *testing.T) {
	var s State
	if err := json.Unmarshal([]byte(`{"sums":{"allowed":1.5,"from_the_future":3},"counts":{"probe":2,"x":1}}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Sums.Of(SignalAllowed) != 1.5 || s.Counts.Of(SignalProbe) != 2 || s.Sums.Of(SignalAge) != 0 {
		t.Fatalf("decoded %+v", s)
	}
	for _, bad := range []string{`{"sums":[1,2]}`, `{"sums":{"allowed":"x"}}`, `{"counts":{"allowed":1.5}}`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
	s.Sums[iDenied] = math.Inf(1)
	if _, err := json.Marshal(s); err == nil {
		t.Error("an infinite sum encoded")
	}
}

// TestStateDigest pins the bits of many states and scores at once (see
// TestExp2Digest): run with GOAMD64=v3, or on arm64, it catches an
// arithmetic step the compiler fused differently.
func TestStateDigest(t *testing.T) {
	m := DefaultModel()
	h := fnv.New64a()
	var s State
	for i, e := range randomEvents(5, 20_000) {
		s.Apply(e, m)
		if i%100 == 0 {
			raw, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(raw)
			b := s.Score(e.At.Add(time.Duration(i)*time.Minute), m)
			for _, c := range b.Contributions {
				fmt.Fprintf(h, "%x %x,", bits(c.Value), bits(c.Points))
			}
			fmt.Fprintf(h, "%x %s;", bits(b.Score), b.Level)
		}
	}
	if got := h.Sum64(); got != stateDigest {
		t.Fatalf("digest %#x, want %#x", got, uint64(stateDigest))
	}
}

const stateDigest = 0xac934e454e8aa926
