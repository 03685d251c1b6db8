package trust

import "strings"

// The detectors run on live traffic in two steps. Observe, on the hot
// path, only appends to an in-memory queue per agent; Flush replays each
// agent's queue through its stored baseline, under the same row lock that
// merges the score, and stores the findings (see flush_findings.go).

// Bounds of the queue between two flushes (about a second). Beyond them
// observations are dropped, counted and logged, for memory must stay
// bounded even when flushes fail for a while: a queued observation takes
// a few hundred bytes, at most about 1 KB with the cuts below.
const (
	// MaxQueuedObservations bounds one agent's observations. An agent
	// calling more often than this is far past every detector's threshold
	// already; one agent reaches about 12,000 decisions a second on two
	// cores (BenchmarkDecideWithTrust), which the bound leaves room for.
	MaxQueuedObservations = 20_000
	// MaxQueuedObservationsTotal bounds all agents' together: several
	// seconds of a node's decisions.
	MaxQueuedObservationsTotal = 100_000
)

// Longest strings an observation keeps. Longer ones are cut (the
// detectors only hash them), so that a client's oversized header cannot
// make the queue hold megabytes.
const (
	maxObservedUserAgent = 256
	maxObservedResource  = 512 // agents.MaxResourceBytes
	maxObservedTokenID   = 128
)

// ObservationForDecision returns how the detectors see a decision with
// this reason code (Allowed and Denied set; the caller fills in the
// rest), and false for decisions they do not observe.
//
// Observed are the calls an agent that may act really made: every code
// with a signal (SignalForDecision), and APPROVAL_REQUIRED (asking a
// human is a real call, from a real address with a real token). Not
// observed are the codes without a signal, for their reasons: a
// suspended or unknown agent, and the server's own failures.
//
// Only refusals of what was asked count as denied (PERMISSION_DENIED,
// INVALID_REQUEST and the constraint codes): RATE_LIMITED and
// BUDGET_EXCEEDED refuse by volume or cost, which their own signals
// already weigh, so they are neither allowed nor denied here, like
// APPROVAL_REQUIRED. Otherwise an agent retrying into its rate limit
// would fire denial_rise, a violation, on top of the mild rate_limited
// signal meant for it.
func ObservationForDecision(code string, probe bool) (Observation, bool) {
	switch SignalForDecision(code, probe) {
	case SignalAllowed:
		return Observation{Allowed: true}, true
	case SignalDenied, SignalProbe, SignalConstraintViolation:
		return Observation{Denied: true}, true
	case SignalRateLimited, SignalBudgetBreach:
		return Observation{}, true
	}
	return Observation{}, code == "APPROVAL_REQUIRED"
}

// Observe queues one observation of an agent for the detectors, which
// run at the next Flush. It costs an append.
func (s *Service) Observe(agentID string, o Observation) {
	if agentID == "" {
		return
	}
	o.UserAgent = bounded(o.UserAgent, maxObservedUserAgent)
	o.Resource = bounded(o.Resource, maxObservedResource)
	o.TokenID = bounded(o.TokenID, maxObservedTokenID)
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.observed[agentID]
	if len(q) >= MaxQueuedObservations || s.queued >= MaxQueuedObservationsTotal {
		s.dropped[agentID]++
		return
	}
	s.observed[agentID] = append(q, o)
	s.queued++
}

// bounded is s cut to at most n bytes, copied when cut so that the queue
// does not keep the original alive.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.Clone(s[:n])
}

// takeObservations returns the queued observations and the drop counts,
// and starts new ones. s.mu must be held.
func (s *Service) takeObservations() (map[string][]Observation, map[string]int) {
	obs, dropped := s.observed, s.dropped
	s.observed = make(map[string][]Observation, len(obs))
	s.dropped = make(map[string]int)
	s.queued = 0
	return obs, dropped
}

// requeue puts back the observations of a failed flush, ahead of those
// queued since (they are older), within the bounds; what does not fit
// is dropped from the newest end. s.mu must be held.
func (s *Service) requeue(agentID string, obs []Observation) {
	if len(obs) == 0 {
		return
	}
	newer := s.observed[agentID]
	keep := min(len(obs)+len(newer), MaxQueuedObservations, len(newer)+MaxQueuedObservationsTotal-s.queued)
	q := append(obs, newer...)
	if keep < len(q) {
		s.dropped[agentID] += len(q) - keep
		q = q[:keep]
	}
	s.queued += len(q) - len(newer)
	s.observed[agentID] = q
}

// logDropped reports the observations the queue had no room for.
func (s *Service) logDropped(dropped map[string]int) {
	for agentID, n := range dropped {
		s.logger.Warn("trust: observations dropped: the anomaly detectors' queue was full",
			"agent", agentID, "dropped", n, "maxPerAgent", MaxQueuedObservations, "maxTotal", MaxQueuedObservationsTotal)
	}
}
