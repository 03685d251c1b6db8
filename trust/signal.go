package trust

import "time"

// Signal names one kind of behaviour that moves an agent's score. The
// names are part of the persisted State and of the API's breakdown: add
// new ones, never rename one.
type Signal string

// Event signals: each is something that happened at a moment, applied
// with State.Apply.
const (
	// SignalAllowed is an allowed decision.
	SignalAllowed Signal = "allowed"
	// SignalDenied is a denied decision that is not a probe: the agent
	// asked for something near what it may do (PERMISSION_DENIED inside
	// the area its grants cover, or a malformed request).
	SignalDenied Signal = "denied"
	// SignalProbe is a denial far outside the agent's grants: asking for
	// resources or scopes it has no reason to ask for. The caller decides
	// what "far" means (see SignalForDecision).
	SignalProbe Signal = "probe"
	// SignalConstraintViolation is a call refused by a grant's constraint:
	// outside its time window, from an address it does not allow, or with
	// arguments it does not allow.
	SignalConstraintViolation Signal = "constraint_violation"
	// SignalApprovalDenied is a human refusing a call the agent asked
	// approval for.
	SignalApprovalDenied Signal = "approval_denied"
	// SignalRateLimited is a call refused by a rate limit.
	SignalRateLimited Signal = "rate_limited"
	// SignalBudgetBreach is a call refused because a budget had no room.
	SignalBudgetBreach Signal = "budget_breach"
	// SignalRefreshTokenReuse is the reuse of a rotated refresh token of
	// the agent's client: someone holds a copy of a token.
	SignalRefreshTokenReuse Signal = "refresh_token_reuse"
	// SignalInvalidClientAuth is a failed client authentication with the
	// agent's client id (a wrong secret or assertion).
	SignalInvalidClientAuth Signal = "invalid_client_auth"
	// SignalAnomaly is an anomaly finding of the detectors (Finding.Event);
	// its Severity is the finding's.
	SignalAnomaly Signal = "anomaly"
)

// Derived signals: inputs of the score computed from the State's times,
// never applied as events. They appear in Breakdown.
const (
	// SignalAge is the time since the agent's first event.
	SignalAge Signal = "age"
	// SignalSinceViolation is the time since the agent's last violation
	// (see Model.ViolationPoints), or since its first event when it has
	// none.
	SignalSinceViolation Signal = "time_since_violation"
)

// NumEventSignals is the number of event signals; State keeps one sum per
// event signal, in the order of EventSignals.
const NumEventSignals = 10

// eventSignals is the order of the per-signal arrays in State.
var eventSignals = [NumEventSignals]Signal{
	SignalAllowed, SignalDenied, SignalProbe, SignalConstraintViolation,
	SignalApprovalDenied, SignalRateLimited, SignalBudgetBreach,
	SignalRefreshTokenReuse, SignalInvalidClientAuth, SignalAnomaly,
}

// Indices into the per-signal arrays, in the order of eventSignals.
const (
	iAllowed = iota
	iDenied
	iProbe
	iConstraint
	iApprovalDenied
	iRateLimited
	iBudget
	iRefreshReuse
	iInvalidClientAuth
	iAnomaly
)

// EventSignals returns the event signals in the order of the State's
// per-signal arrays.
func EventSignals() [NumEventSignals]Signal { return eventSignals }

// index is the signal's position in the per-signal arrays, or -1 when it
// is not an event signal.
func (s Signal) index() int {
	switch s {
	case SignalAllowed:
		return iAllowed
	case SignalDenied:
		return iDenied
	case SignalProbe:
		return iProbe
	case SignalConstraintViolation:
		return iConstraint
	case SignalApprovalDenied:
		return iApprovalDenied
	case SignalRateLimited:
		return iRateLimited
	case SignalBudgetBreach:
		return iBudget
	case SignalRefreshTokenReuse:
		return iRefreshReuse
	case SignalInvalidClientAuth:
		return iInvalidClientAuth
	case SignalAnomaly:
		return iAnomaly
	}
	return -1
}

// IsEvent reports whether s is an event signal, one State.Apply accepts.
func (s Signal) IsEvent() bool { return s.index() >= 0 }

// MaxSeverity bounds Event.Severity: one event never weighs more than ten
// ordinary ones, so a caller's mistake in a severity cannot zero a score
// by itself (the per-signal caps bound it further).
const MaxSeverity = 10

// Event is one occurrence of an event signal.
type Event struct {
	At     time.Time `json:"at"`
	Signal Signal    `json:"signal"`
	// Severity multiplies the event's weight; 0 means 1. Values are
	// clamped to [0, MaxSeverity]; a negative, NaN or infinite one counts
	// as 1.
	Severity float64 `json:"severity,omitempty"`
}

// weight is the event's multiplier after the rules of Severity.
func (e Event) weight() float64 {
	s := e.Severity
	switch {
	case s == 0, s < 0, s != s: // s != s: NaN
		return 1
	case s > MaxSeverity: // includes +Inf
		return MaxSeverity
	}
	return s
}

// SignalForDecision maps a reason code of the decision point (package
// agents' Code constants) to the signal it produces, and "" for codes
// that say nothing about the agent's behaviour. probe marks a
// PERMISSION_DENIED far outside the agent's grants; the caller decides
// it (see docs/trust.md for a suggested rule).
//
// Codes that produce no signal, and why:
//   - APPROVAL_REQUIRED: asking a human is the designed path; a refusal
//     arrives later as SignalApprovalDenied.
//   - AGENT_SUSPENDED, AGENT_REVOKED, AGENT_EXPIRED, AGENT_NOT_FOUND,
//     USER_NOT_FOUND: the agent may not act at all; counting its calls
//     would only push a suspended agent further down, so that it could
//     never recover once resumed.
//   - TRUST_TOO_LOW: the same spiral: a refusal because of a low score
//     must not lower the score.
//   - INVALID_GRANT, UNAVAILABLE: the server's failure, not the agent's.
//   - any code this function does not know: a new code must be mapped
//     here on purpose, not guessed.
func SignalForDecision(code string, probe bool) Signal {
	switch code {
	case "ALLOWED":
		return SignalAllowed
	case "PERMISSION_DENIED":
		if probe {
			return SignalProbe
		}
		return SignalDenied
	case "INVALID_REQUEST":
		// A malformed action or resource: a client bug more often than an
		// attack; it counts like a near denial.
		return SignalDenied
	case "OUTSIDE_TIME_WINDOW", "IP_NOT_ALLOWED", "ARGUMENT_NOT_ALLOWED":
		return SignalConstraintViolation
	case "RATE_LIMITED":
		return SignalRateLimited
	case "BUDGET_EXCEEDED":
		return SignalBudgetBreach
	}
	return ""
}
