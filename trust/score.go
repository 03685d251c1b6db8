package trust

import "time"

// Contribution is one signal's part in a score, for explaining it.
type Contribution struct {
	Signal Signal `json:"signal"`
	// Value is the decayed number of events (each weighted by its
	// severity) for an event signal, and a number of days for age and
	// time since the last violation.
	Value float64 `json:"value"`
	// Count is the number of events ever applied; 0 for age and time
	// since the last violation.
	Count int64 `json:"count"`
	// Weight is the points per event of a Linear signal, the points at
	// a 100% share of a Ratio signal, and the maximum of a Gain or Ramp.
	Weight float64 `json:"weight"`
	// Cap bounds |Points|.
	Cap float64 `json:"cap"`
	// Points is what the signal adds to the score (negative for
	// penalties).
	Points float64 `json:"points"`
}

// NumContributions is the length of Breakdown.Contributions: every event
// signal, then age and time since the last violation.
const NumContributions = NumEventSignals + 2

// Breakdown is a score with its explanation.
type Breakdown struct {
	// At is the time the score is for.
	At    time.Time `json:"at"`
	Score float64   `json:"score"` // 0 to 100
	Level Level     `json:"level"`
	// ScoreLevel is the level the score alone reaches. Level is lower
	// when the agent lacks the age or the allowed calls that level needs
	// (Model's LevelRule).
	ScoreLevel Level   `json:"scoreLevel"`
	Base       float64 `json:"base"`
	// Contributions lists every signal in the order of EventSignals, then
	// SignalAge and SignalSinceViolation. Score is Base plus their
	// Points, clamped to 0–100.
	Contributions [NumContributions]Contribution `json:"contributions"`
}

// Score computes the agent's score at now. A now before LastAt is taken
// as LastAt: the score of a moment the state has already passed is not
// known. It reads no clock and allocates nothing.
func (s State) Score(now time.Time, m Model) Breakdown {
	now = now.UTC()
	if now.Before(s.LastAt) {
		now = s.LastAt
	}
	b := Breakdown{At: now, Base: m.Base}

	var v Sums
	if s.Events > 0 && m.HalfLife > 0 {
		decay := exp2(-(float64(now.Sub(s.Ref)) / float64(m.HalfLife)))
		for i, sum := range s.Sums {
			v[i] = float64(sum * decay)
		}
	}
	total := m.Base
	for i, sig := range eventSignals {
		c := Contribution{Signal: sig, Value: v[i], Count: s.Counts[i]}
		switch i {
		case iAllowed:
			c.Weight, c.Cap = m.Allowed.Cap, m.Allowed.Cap
			if m.Allowed.Scale > 0 {
				c.Points = float64(m.Allowed.Cap * (1 - exp2(-(v[i] / m.Allowed.Scale))))
			}
		case iDenied:
			c.Weight, c.Cap = m.Denied.Weight, m.Denied.Weight
			if den := v[i] + v[iAllowed] + m.Denied.Prior; den > 0 {
				c.Points = -(float64(m.Denied.Weight*v[i]) / den)
			}
		default:
			l := m.linear(i)
			c.Weight, c.Cap = l.Weight, l.Cap
			c.Points = -min(l.Cap, float64(l.Weight*v[i]))
		}
		b.Contributions[i] = c
		total += c.Points
	}

	var age, clean time.Duration
	if !s.FirstAt.IsZero() {
		age = now.Sub(s.FirstAt)
		clean = age
		if !s.LastViolationAt.IsZero() {
			clean = now.Sub(s.LastViolationAt)
		}
	}
	for k, r := range [2]struct {
		sig Signal
		d   time.Duration
		r   Ramp
	}{{SignalAge, age, m.Age}, {SignalSinceViolation, clean, m.SinceViolation}} {
		c := Contribution{Signal: r.sig, Value: float64(r.d) / float64(Day), Weight: r.r.Cap, Cap: r.r.Cap}
		if r.r.Full > 0 {
			c.Points = float64(r.r.Cap * min(1, float64(r.d)/float64(r.r.Full)))
		}
		b.Contributions[NumEventSignals+k] = c
		total += c.Points
	}

	if total != total {
		// NaN: only a corrupted persisted state (sums near float64's
		// limit) gets here; trust nothing from it.
		total = 0
	}
	b.Score = max(0, min(100, total))
	b.ScoreLevel = m.levelOf(b.Score, 1<<62, 1<<62)
	b.Level = m.levelOf(b.Score, age, s.Counts[iAllowed])
	return b
}
