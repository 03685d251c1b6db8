package trust

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Level is what a score means for policies. The order, lowest first, is
// untrusted, limited, standard, trusted, elevated.
type Level string

// Levels.
const (
	LevelUntrusted Level = "untrusted"
	LevelLimited   Level = "limited"
	LevelStandard  Level = "standard"
	LevelTrusted   Level = "trusted"
	LevelElevated  Level = "elevated"
)

// Rank orders levels: 0 for untrusted up to 4 for elevated, -1 for an
// unknown level. Policies compare ranks ("at least trusted").
func (l Level) Rank() int {
	switch l {
	case LevelUntrusted:
		return 0
	case LevelLimited:
		return 1
	case LevelStandard:
		return 2
	case LevelTrusted:
		return 3
	case LevelElevated:
		return 4
	}
	return -1
}

// Gain is a reward that grows with a decayed count and saturates:
// points = Cap · (1 − 2^(−value/Scale)), so the first calls count most
// and Scale calls earn half of Cap.
type Gain struct {
	Cap   float64 `json:"cap"`
	Scale float64 `json:"scale"`
}

// Ratio is a penalty on the share of a signal among decisions:
// points = −Weight · value / (value + allowed + Prior). Prior stands for
// clean decisions every agent is credited with, so that an agent's
// first denial does not read as "100% denied".
type Ratio struct {
	Weight float64 `json:"weight"`
	Prior  float64 `json:"prior"`
}

// Linear is a penalty per event: points = −min(Cap, Weight · value).
type Linear struct {
	Weight float64 `json:"weight"`
	Cap    float64 `json:"cap"`
}

// Ramp is a reward that grows linearly with a duration up to Full:
// points = Cap · min(1, duration / Full).
type Ramp struct {
	Cap  float64       `json:"cap"`
	Full time.Duration `json:"full"`
}

// LevelRule is what an agent needs to reach a level: a score, and for
// the upper levels a history, so that a burst of good behaviour by a new
// agent cannot buy the trust that only time gives.
type LevelRule struct {
	MinScore   float64       `json:"minScore"`
	MinAge     time.Duration `json:"minAge"`     // since the agent's first event
	MinAllowed int64         `json:"minAllowed"` // allowed decisions ever
}

// Model is the score model. Scores are
//
//	score = clamp(Base + Σ points(signal), 0, 100)
//
// over the decayed value of every event signal (each with its shape:
// Gain, Ratio or Linear) and the two derived signals (Ramp). An event's
// value halves every HalfLife. DefaultModel documents every number, and
// docs/trust.md the reasons.
type Model struct {
	HalfLife time.Duration `json:"halfLife"`
	Base     float64       `json:"base"`

	Allowed             Gain   `json:"allowed"`
	Denied              Ratio  `json:"denied"`
	Probe               Linear `json:"probe"`
	ConstraintViolation Linear `json:"constraintViolation"`
	ApprovalDenied      Linear `json:"approvalDenied"`
	RateLimited         Linear `json:"rateLimited"`
	BudgetBreach        Linear `json:"budgetBreach"`
	RefreshTokenReuse   Linear `json:"refreshTokenReuse"`
	InvalidClientAuth   Linear `json:"invalidClientAuth"`
	Anomaly             Linear `json:"anomaly"`

	Age            Ramp `json:"age"`
	SinceViolation Ramp `json:"sinceViolation"`

	// ViolationPoints makes an event a violation, which restarts the
	// time since the last violation: a penalty event whose own cost,
	// Weight × severity, is at least this many points. Denials and
	// allowed calls are never violations.
	ViolationPoints float64 `json:"violationPoints"`

	// Minimums of the levels above untrusted; a score below
	// Limited.MinScore is untrusted.
	Limited  LevelRule `json:"limited"`
	Standard LevelRule `json:"standard"`
	Trusted  LevelRule `json:"trusted"`
	Elevated LevelRule `json:"elevated"`
}

// Day is 24 hours, the unit of the model's durations.
const Day = 24 * time.Hour

// DefaultModel is the model Kavach uses unless configured otherwise. The
// points add up so that a new agent starts at 50 (limited: it has earned
// nothing yet), a week of steady, clean work brings it past 80
// (trusted), and only a month of it reaches 95 (elevated): 50 + 20
// (activity) + 20 (age) + 10 (time since the last violation) = 100.
func DefaultModel() Model {
	return Model{
		// A week: behaviour of the last few days dominates, a weekly cycle
		// (weekday jobs, weekend quiet) is inside one half-life, and a
		// violation a month ago weighs 1/16 of a fresh one.
		HalfLife: 7 * Day,
		// The middle of the range: a new agent is neither trusted nor
		// suspect, and penalties have as much room as rewards.
		Base: 50,

		// Up to 20 points for activity, half of them after 50 allowed
		// calls (decayed): a low-volume agent (a few calls a day) earns
		// most of it, and volume beyond a few hundred calls buys nothing,
		// so busy agents are not favoured over careful ones.
		Allowed: Gain{Cap: 20, Scale: 50},
		// Plain denials are part of normal work (an agent trying a tool it
		// lacks), so they count by their share of decisions: an agent
		// that is refused most of the time loses up to 40 points, a busy
		// one refused 1% of the time loses 0.4. A prior of 10 clean
		// decisions keeps a new agent's first denial at −3.6.
		Denied: Ratio{Weight: 40, Prior: 10},
		// Probes are what an intruder does and a well-configured agent
		// does not; they count by number, not share, so volume cannot hide
		// them. One costs 8 (a good agent stays trusted), two take a new
		// agent below 40 (untrusted), and the cap of 60 empties any score
		// from a sustained campaign.
		Probe: Linear{Weight: 8, Cap: 60},
		// A call outside its time window, from a forbidden address or with
		// forbidden arguments: a real violation of the rules set for the
		// agent, though often a misconfiguration; 5 each, up to 30.
		ConstraintViolation: Linear{Weight: 5, Cap: 30},
		// A human refused what the agent wanted: 5 each, up to 20.
		ApprovalDenied: Linear{Weight: 5, Cap: 20},
		// Hitting a rate limit is mostly a client's back-off bug: half a
		// point each, at most 10, enough to keep a limit-hammering agent
		// out of elevated.
		RateLimited: Linear{Weight: 0.5, Cap: 10},
		// Spending past a budget: 5 each, up to 20.
		BudgetBreach: Linear{Weight: 5, Cap: 20},
		// Reuse of a rotated refresh token means a copy of the token is in
		// someone else's hands: the strongest signal, 25 each, up to 50,
		// enough to take a trusted agent to limited at once.
		RefreshTokenReuse: Linear{Weight: 25, Cap: 50},
		// A failed client authentication can come from anyone who knows
		// the client id, not only the agent: 2 each and a cap of 15, so an
		// outsider cannot push an elevated agent (95) below trusted (80),
		// and never a violation (2 < ViolationPoints).
		InvalidClientAuth: Linear{Weight: 2, Cap: 15},
		// Anomaly findings: 5 per unit of severity (a new network, at
		// severity 0.5, costs 2.5), up to 30.
		Anomaly: Linear{Weight: 5, Cap: 30},

		// Up to 20 points for age, reached after 30 days of history:
		// trust that only time gives.
		Age: Ramp{Cap: 20, Full: 30 * Day},
		// Up to 10 points for a week without a violation: one violation
		// costs its own points plus this bonus, which returns within a
		// week.
		SinceViolation: Ramp{Cap: 10, Full: 7 * Day},
		// 5 points: a probe, a constraint violation, an approval or
		// budget refusal, a token reuse and an anomaly of severity 1 or
		// more are violations; rate limits, failed client authentications
		// and mild anomalies are not.
		ViolationPoints: 5,

		// The levels of the KavachOS code, which migrating teams know:
		// 40, 60, 80, 95. Trusted also needs a week of history and 100
		// allowed calls; elevated a month and 1000 allowed calls.
		Limited:  LevelRule{MinScore: 40},
		Standard: LevelRule{MinScore: 60},
		Trusted:  LevelRule{MinScore: 80, MinAge: 7 * Day, MinAllowed: 100},
		Elevated: LevelRule{MinScore: 95, MinAge: 30 * Day, MinAllowed: 1000},
	}
}

// ErrInvalidModel is wrapped by every error Model.Validate returns.
var ErrInvalidModel = errors.New("invalid trust model")

// Validate checks that m can score: finite, non-negative numbers, a
// positive half-life and scales, and level rules that rise with the
// levels. The error names the field.
func (m Model) Validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalidModel, field, why) }
	if m.HalfLife <= 0 {
		return bad("halfLife", "must be positive")
	}
	if !finite(m.Base) || m.Base < 0 || m.Base > 100 {
		return bad("base", "must be between 0 and 100")
	}
	nonNeg := func(field string, vs ...float64) error {
		for _, v := range vs {
			if !finite(v) || v < 0 {
				return bad(field, "must be finite and not negative")
			}
		}
		return nil
	}
	if err := nonNeg("allowed.cap", m.Allowed.Cap); err != nil {
		return err
	}
	if !finite(m.Allowed.Scale) || m.Allowed.Scale <= 0 {
		return bad("allowed.scale", "must be positive")
	}
	if err := nonNeg("denied.weight", m.Denied.Weight); err != nil {
		return err
	}
	if !finite(m.Denied.Prior) || m.Denied.Prior <= 0 {
		return bad("denied.prior", "must be positive")
	}
	for _, l := range []struct {
		name string
		l    Linear
	}{
		{"probe", m.Probe}, {"constraintViolation", m.ConstraintViolation},
		{"approvalDenied", m.ApprovalDenied}, {"rateLimited", m.RateLimited},
		{"budgetBreach", m.BudgetBreach}, {"refreshTokenReuse", m.RefreshTokenReuse},
		{"invalidClientAuth", m.InvalidClientAuth}, {"anomaly", m.Anomaly},
	} {
		if err := nonNeg(l.name+".weight", l.l.Weight); err != nil {
			return err
		}
		if err := nonNeg(l.name+".cap", l.l.Cap); err != nil {
			return err
		}
	}
	for _, r := range []struct {
		name string
		r    Ramp
	}{{"age", m.Age}, {"sinceViolation", m.SinceViolation}} {
		if err := nonNeg(r.name+".cap", r.r.Cap); err != nil {
			return err
		}
		if r.r.Full <= 0 {
			return bad(r.name+".full", "must be positive")
		}
	}
	if !finite(m.ViolationPoints) || m.ViolationPoints <= 0 {
		return bad("violationPoints", "must be positive")
	}
	prev := LevelRule{}
	for _, r := range []struct {
		name string
		r    LevelRule
	}{{"limited", m.Limited}, {"standard", m.Standard}, {"trusted", m.Trusted}, {"elevated", m.Elevated}} {
		switch {
		case !finite(r.r.MinScore) || r.r.MinScore <= prev.MinScore || r.r.MinScore > 100:
			return bad(r.name+".minScore", "must be above the lower level's and at most 100")
		case r.r.MinAge < prev.MinAge:
			return bad(r.name+".minAge", "must not be below the lower level's")
		case r.r.MinAllowed < prev.MinAllowed:
			return bad(r.name+".minAllowed", "must not be below the lower level's")
		}
		prev = r.r
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// linear returns the Linear shape of a penalty signal's index.
func (m *Model) linear(i int) Linear {
	switch i {
	case iProbe:
		return m.Probe
	case iConstraint:
		return m.ConstraintViolation
	case iApprovalDenied:
		return m.ApprovalDenied
	case iRateLimited:
		return m.RateLimited
	case iBudget:
		return m.BudgetBreach
	case iRefreshReuse:
		return m.RefreshTokenReuse
	case iInvalidClientAuth:
		return m.InvalidClientAuth
	case iAnomaly:
		return m.Anomaly
	}
	return Linear{}
}

// levelOf is the highest level whose rule the score, age and count of
// allowed calls meet.
func (m *Model) levelOf(score float64, age time.Duration, allowed int64) Level {
	meets := func(r LevelRule) bool {
		return score >= r.MinScore && age >= r.MinAge && allowed >= r.MinAllowed
	}
	switch {
	case meets(m.Elevated):
		return LevelElevated
	case meets(m.Trusted):
		return LevelTrusted
	case meets(m.Standard):
		return LevelStandard
	case meets(m.Limited):
		return LevelLimited
	}
	return LevelUntrusted
}
