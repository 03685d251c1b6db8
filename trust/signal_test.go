package trust

import "testing"

func TestSignalForDecision(t *testing.T) {
	for _, c := range []struct {
		code  string
		probe bool
		want  Signal
	}{
		{"ALLOWED", false, SignalAllowed},
		{"ALLOWED", true, SignalAllowed}, // probe only qualifies denials
		{"PERMISSION_DENIED", false, SignalDenied},
		{"PERMISSION_DENIED", true, SignalProbe},
		{"INVALID_REQUEST", false, SignalDenied},
		{"OUTSIDE_TIME_WINDOW", false, SignalConstraintViolation},
		{"IP_NOT_ALLOWED", false, SignalConstraintViolation},
		{"ARGUMENT_NOT_ALLOWED", true, SignalConstraintViolation},
		{"RATE_LIMITED", false, SignalRateLimited},
		{"BUDGET_EXCEEDED", false, SignalBudgetBreach},
		{"APPROVAL_REQUIRED", false, ""},
		{"AGENT_SUSPENDED", false, ""},
		{"AGENT_REVOKED", false, ""},
		{"AGENT_EXPIRED", false, ""},
		{"AGENT_NOT_FOUND", false, ""},
		{"USER_NOT_FOUND", false, ""},
		{"TRUST_TOO_LOW", true, ""},
		{"INVALID_GRANT", false, ""},
		{"UNAVAILABLE", false, ""},
		{"SOMETHING_NEW", false, ""},
		{"allowed", false, ""}, // codes are case-sensitive
	} {
		if got := SignalForDecision(c.code, c.probe); got != c.want {
			t.Errorf("SignalForDecision(%q, %v) = %q, want %q", c.code, c.probe, got, c.want)
		}
	}
}

func TestSignalsAreDistinctAndIndexed(t *testing.T) {
	seen := map[Signal]bool{}
	for i, s := range EventSignals() {
		if seen[s] || s.index() != i || !s.IsEvent() {
			t.Fatalf("signal %q at %d: index %d, duplicate %v", s, i, s.index(), seen[s])
		}
		seen[s] = true
	}
	for _, s := range []Signal{SignalAge, SignalSinceViolation, "", "nope"} {
		if s.IsEvent() {
			t.Errorf("%q is not an event signal", s)
		}
	}
}

func TestEventWeight(t *testing.T) {
	nan, inf := zero/zero, 1/zero
	for _, c := range []struct{ sev, want float64 }{
		{0, 1}, {1, 1}, {0.5, 0.5}, {3, 3}, {-2, 1}, {nan, 1}, {inf, MaxSeverity}, {-inf, 1}, {MaxSeverity + 1, MaxSeverity},
	} {
		if got := (Event{Severity: c.sev}).weight(); got != c.want {
			t.Errorf("weight of severity %v = %v, want %v", c.sev, got, c.want)
		}
	}
}

var zero float64 // a variable, so that 0/0 is computed at run time
