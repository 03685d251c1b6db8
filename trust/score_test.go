package trust

import (
	"math"
	"testing"
	"time"
)

// agent is a simulated agent: a State and the model, with helpers that
// apply events on a simulated timeline. No real clock is read.
type agent struct {
	t *testing.T
	m Model
	s State
}

func newAgent(t *testing.T) *agent { return &agent{t: t, m: DefaultModel()} }

func (a *agent) apply(at time.Time, sig Signal, n int) {
	for range n {
		a.s.Apply(Event{At: at, Signal: sig}, a.m)
	}
}

// steady applies perDay allowed calls a day, spread evenly over working
// hours (08:00–18:00), for days days from start, and every denyEvery-th
// call (if positive) is a plain denial instead.
func (a *agent) steady(start time.Time, days, perDay, denyEvery int) {
	n := 0
	for d := range days {
		day := start.Add(time.Duration(d) * Day)
		for c := range perDay {
			at := day.Add(8*time.Hour + time.Duration(c)*(10*time.Hour)/time.Duration(perDay))
			n++
			sig := SignalAllowed
			if denyEvery > 0 && n%denyEvery == 0 {
				sig = SignalDenied
			}
			a.s.Apply(Event{At: at, Signal: sig}, a.m)
		}
	}
}

func (a *agent) score(now time.Time) Breakdown { return a.s.Score(now, a.m) }

func (a *agent) wantLevel(now time.Time, want Level) Breakdown {
	a.t.Helper()
	b := a.score(now)
	if b.Level != want {
		a.t.Fatalf("at %v: level %s (score %.2f, %s by score), want %s\n%+v", now.Sub(t0), b.Level, b.Score, b.ScoreLevel, want, b.Contributions)
	}
	return b
}

func TestNewAgentStartsLimited(t *testing.T) {
	a := newAgent(t)
	b := a.wantLevel(t0, LevelLimited)
	if b.Score != 50 || b.ScoreLevel != LevelLimited {
		t.Fatalf("empty state: %+v", b)
	}
	for _, c := range b.Contributions {
		if c.Points != 0 || c.Value != 0 {
			t.Fatalf("empty state contributes: %+v", c)
		}
	}
}

// TestWellBehavedAgentEarnsTrust: 50 allowed calls a working day. The
// score rises every day; the agent is standard on day 1, trusted after
// a week (the level needs 7 days of history), and elevated only after a
// month (the level needs 30 days), however good its score is before.
func TestWellBehavedAgentEarnsTrust(t *testing.T) {
	a := newAgent(t)
	prev := 0.0
	for day := 1; day <= 42; day++ {
		a.steady(t0.Add(time.Duration(day-1)*Day), 1, 50, 0)
		// The first call was at 08:00 on day 0: at 08:00 on day d the
		// agent is d days old.
		now := t0.Add(time.Duration(day)*Day + 8*time.Hour)
		b := a.score(now)
		if b.Score < prev {
			t.Fatalf("day %d: score fell from %.2f to %.2f", day, prev, b.Score)
		}
		prev = b.Score
		var want Level
		switch {
		case day < 7:
			want = LevelStandard
		case day < 30:
			want = LevelTrusted
		default:
			want = LevelElevated
		}
		if b.Level != want {
			t.Fatalf("day %d: %s (score %.2f), want %s", day, b.Level, b.Score, want)
		}
		if day == 28 && b.ScoreLevel != LevelElevated {
			// By score it is elevated before it is old enough to be.
			t.Fatalf("day 28: score %.2f reaches %s", b.Score, b.ScoreLevel)
		}
	}
	if prev < 99 {
		t.Fatalf("after six clean weeks the score is %.2f", prev)
	}
}

// TestQuietAgentEarnsTrust: three calls a day are enough for trusted
// within three weeks; volume is not what trust rewards most.
func TestQuietAgentEarnsTrust(t *testing.T) {
	a := newAgent(t)
	a.steady(t0, 35, 3, 0)
	a.wantLevel(t0.Add(35*Day), LevelTrusted)
	// Not elevated: 105 allowed calls are far from the 1000 it needs.
	if b := a.score(t0.Add(35 * Day)); b.Score < 85 {
		t.Fatalf("score %.2f", b.Score)
	}
}

// TestBusyAgentWithOccasionalDenials: 2000 calls a day, 1% of them
// denied (an agent trying tools it lacks), still reaches elevated.
func TestBusyAgentWithOccasionalDenials(t *testing.T) {
	a := newAgent(t)
	a.steady(t0, 31, 2000, 100)
	b := a.wantLevel(t0.Add(31*Day), LevelElevated)
	if p := b.Contributions[iDenied].Points; p > 0 || p < -0.5 {
		t.Fatalf("1%% denials cost %.2f points", p)
	}
}

// TestProbingAgentDropsFast: a new agent makes a few allowed calls, then
// asks for resources far outside its grants. Three probes take it to
// untrusted; a campaign of 30 takes it to 0.
func TestProbingAgentDropsFast(t *testing.T) {
	a := newAgent(t)
	a.steady(t0, 1, 10, 0)
	at := t0.Add(20 * time.Hour)
	a.apply(at, SignalProbe, 1)
	a.wantLevel(at, LevelLimited)
	a.apply(at.Add(time.Minute), SignalProbe, 2)
	a.wantLevel(at.Add(time.Minute), LevelUntrusted)
	a.apply(at.Add(2*time.Minute), SignalProbe, 27)
	if b := a.wantLevel(at.Add(10*time.Minute), LevelUntrusted); b.Score != 0 {
		t.Fatalf("after 30 probes the score is %.2f", b.Score)
	}
}

// TestDenialsWithoutProbeFlagStillSink: the same campaign seen as plain
// PERMISSION_DENIED (the caller could not tell they were far outside the
// grants) counts by its share of decisions, and most decisions denied
// is untrusted too.
func TestDenialsWithoutProbeFlagStillSink(t *testing.T) {
	a := newAgent(t)
	a.apply(t0, SignalAllowed, 5)
	for i := range 30 {
		a.apply(t0.Add(time.Duration(i)*time.Second), SignalDenied, 1)
	}
	a.wantLevel(t0.Add(time.Hour), LevelUntrusted)

	// A single early denial, by contrast, costs a new agent little.
	b := newAgent(t)
	b.apply(t0, SignalDenied, 1)
	if got := b.score(t0); got.Score < 46 || got.Level != LevelLimited {
		t.Fatalf("one denial: %.2f %s", got.Score, got.Level)
	}
}

// TestOldViolationsMatterLess: two agents with the same six clean weeks,
// except for a burst of 10 probes: in week 1 for one, week 5 for the
// other. At week 6 the early offender has recovered more, and its probes
// weigh (1/2)^(4 weeks / 1 week) = 1/16 of the late one's.
func TestOldViolationsMatterLess(t *testing.T) {
	early, late := newAgent(t), newAgent(t)
	early.steady(t0, 42, 50, 0)
	late.steady(t0, 42, 50, 0)
	early.apply(t0.Add(7*Day), SignalProbe, 10)
	late.apply(t0.Add(35*Day), SignalProbe, 10)
	now := t0.Add(42 * Day)
	be, bl := early.score(now), late.score(now)
	if be.Score <= bl.Score {
		t.Fatalf("early offender %.2f, late offender %.2f", be.Score, bl.Score)
	}
	ve, vl := be.Contributions[iProbe].Value, bl.Contributions[iProbe].Value
	if r := ve / vl; math.Abs(r-1.0/16) > 1e-12 {
		t.Fatalf("probe values %v and %v: ratio %v, want 1/16", ve, vl, r)
	}
	if bl.Level.Rank() >= LevelTrusted.Rank() {
		t.Fatalf("ten probes a week ago leave the agent %s (%.2f)", bl.Level, bl.Score)
	}
	if be.Level != LevelElevated {
		t.Fatalf("ten probes five weeks ago leave the agent %s (%.2f)", be.Level, be.Score)
	}
}

// TestOneMistakeDoesNotSink: an elevated agent makes one mistake of each
// ordinary kind. It stays at least trusted, and a week of clean work
// brings it back to elevated.
func TestOneMistakeDoesNotSink(t *testing.T) {
	for _, c := range []struct {
		sig  Signal
		want Level // right after the mistake
	}{
		{SignalDenied, LevelElevated},
		{SignalRateLimited, LevelElevated},
		{SignalInvalidClientAuth, LevelElevated},
		{SignalProbe, LevelTrusted},
		{SignalConstraintViolation, LevelTrusted},
		{SignalApprovalDenied, LevelTrusted},
		{SignalBudgetBreach, LevelTrusted},
	} {
		t.Run(string(c.sig), func(t *testing.T) {
			a := newAgent(t)
			a.steady(t0, 35, 50, 0)
			now := t0.Add(35 * Day)
			a.wantLevel(now, LevelElevated)
			a.apply(now, c.sig, 1)
			a.wantLevel(now, c.want)
			a.steady(now, 7, 50, 0)
			a.wantLevel(now.Add(7*Day), LevelElevated)
		})
	}
}

// TestSeriousSignalsCost: a refresh token reused costs a trusted agent
// its trust at once.
func TestSeriousSignalsCost(t *testing.T) {
	a := newAgent(t)
	a.steady(t0, 35, 50, 0)
	now := t0.Add(35 * Day)
	a.apply(now, SignalRefreshTokenReuse, 1)
	a.wantLevel(now, LevelStandard)
	a.apply(now, SignalRefreshTokenReuse, 1)
	if b := a.score(now); b.Level.Rank() > LevelLimited.Rank() {
		t.Fatalf("two reuses leave the agent %s (%.2f)", b.Level, b.Score)
	}
}

// TestOutsidersCannotSinkAnAgent: failed client authentications can come
// from anyone who knows a client id; however many there are, an
// elevated agent stays trusted.
func TestOutsidersCannotSinkAnAgent(t *testing.T) {
	a := newAgent(t)
	a.steady(t0, 35, 50, 0)
	now := t0.Add(35 * Day)
	a.apply(now, SignalInvalidClientAuth, 10_000)
	b := a.wantLevel(now, LevelTrusted)
	if c := b.Contributions[iInvalidClientAuth]; c.Points != -15 || c.Count != 10_000 {
		t.Fatalf("contribution %+v", c)
	}
	if !a.s.LastViolationAt.IsZero() {
		t.Fatal("a failed client authentication counted as a violation")
	}
}

// TestProberRecovers: an agent that probed and then behaves climbs back;
// nothing is permanent.
func TestProberRecovers(t *testing.T) {
	a := newAgent(t)
	a.steady(t0, 7, 50, 0)
	a.apply(t0.Add(7*Day), SignalProbe, 30)
	a.wantLevel(t0.Add(7*Day), LevelUntrusted)
	a.steady(t0.Add(7*Day), 28, 50, 0)
	a.wantLevel(t0.Add(35*Day), LevelTrusted)
}

func TestSeverityScalesAnomalies(t *testing.T) {
	a := newAgent(t)
	a.s.Apply(Event{At: t0, Signal: SignalAnomaly, Severity: 0.5}, a.m)
	if b := a.score(t0); b.Contributions[iAnomaly].Points != -2.5 || !a.s.LastViolationAt.IsZero() {
		t.Fatalf("a mild anomaly: %+v, last violation %v", b.Contributions[iAnomaly], a.s.LastViolationAt)
	}
	a.s.Apply(Event{At: t0.Add(time.Minute), Signal: SignalAnomaly, Severity: 2}, a.m)
	if a.s.LastViolationAt != t0.Add(time.Minute) {
		t.Fatal("an anomaly of severity 2 is a violation")
	}
}

func TestScoreBreakdownAddsUp(t *testing.T) {
	a := newAgent(t)
	for _, e := range randomEvents(7, 3000) {
		a.s.Apply(e, a.m)
	}
	for _, now := range []time.Time{a.s.LastAt, a.s.LastAt.Add(Day), a.s.LastAt.Add(100 * Day)} {
		b := a.score(now)
		sum := b.Base
		for i, c := range b.Contributions {
			if math.Abs(c.Points) > c.Cap+1e-9 {
				t.Errorf("%s: points %v beyond cap %v", c.Signal, c.Points, c.Cap)
			}
			if i < NumEventSignals && (c.Signal != eventSignals[i] || c.Count != a.s.Counts[i]) {
				t.Errorf("contribution %d: %+v", i, c)
			}
			sum += c.Points
		}
		if want := max(0, min(100, sum)); b.Score != want {
			t.Errorf("score %v, contributions add up to %v", b.Score, want)
		}
		if b.Contributions[NumEventSignals].Signal != SignalAge || b.Contributions[NumEventSignals+1].Signal != SignalSinceViolation {
			t.Errorf("derived contributions %+v", b.Contributions[NumEventSignals:])
		}
	}
}

func TestScoreBeforeLastEvent(t *testing.T) {
	a := newAgent(t)
	a.steady(t0, 3, 10, 0)
	if a.score(t0) != a.score(a.s.LastAt) {
		t.Fatal("a score before the last event must be the score at it")
	}
	if got := a.score(t0).At; got != a.s.LastAt {
		t.Fatalf("breakdown at %v", got)
	}
}

func TestScoreIgnoresWeightsChangedLater(t *testing.T) {
	// The sums are raw counts: a model with other weights scores the same
	// state without a recompute.
	a := newAgent(t)
	a.steady(t0, 10, 20, 10)
	m := a.m
	m.Denied.Weight = 80
	b1, b2 := a.s.Score(t0.Add(10*Day), a.m), a.s.Score(t0.Add(10*Day), m)
	if b2.Contributions[iDenied].Points != 2*b1.Contributions[iDenied].Points {
		t.Fatalf("denied points %v then %v", b1.Contributions[iDenied].Points, b2.Contributions[iDenied].Points)
	}
}
