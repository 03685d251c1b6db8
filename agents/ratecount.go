package agents

import (
	"fmt"
	"sync"
	"time"
)

// rateCounterKeys bounds the counters kept at once (agent × grant ×
// window). Keys come from stored grants, not from callers, so an attacker
// cannot mint them; the bound only caps memory.
const rateCounterKeys = 100_000

// rateCounters enforce grants' rate limits (Outcome.RateLimits) in process
// memory, per agent, grant and window. Windows are fixed and aligned to
// UTC: a minute, an hour or a day starting on its boundary, so every node
// and every restart agrees on when a window ends. Counters are per node:
// with several nodes each allows the limit, until a shared store replaces
// this type (see DESIGN.md, Scale-out).
type rateCounters struct {
	max int

	mu sync.Mutex
	m  map[rateKey]*rateCount
}

type rateKey struct {
	agent, grant string
	window       RateWindow
}

type rateCount struct {
	start time.Time // the window's start
	end   time.Time
	n     int
}

func newRateCounters(max int) *rateCounters {
	return &rateCounters{max: max, m: make(map[rateKey]*rateCount)}
}

// rateCharge is one set of limits a call counts against: the deciding
// grant of the agent, or (delegation) of an agent above it.
type rateCharge struct {
	agent, grant string
	limits       []RateLimit
}

// take reports whether one more call fits every limit of every charge at
// now; if it does and consume is set, the call is counted against all of
// them. A refused call counts against none. It returns the charge and the
// limit that refused.
func (rc *rateCounters) take(charges []rateCharge, now time.Time, consume bool) (rateCharge, RateLimit, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, ch := range charges {
		for _, l := range ch.limits {
			c := rc.m[rateKey{ch.agent, ch.grant, l.Window}]
			if c != nil && !now.Before(c.start) && now.Before(c.end) && c.n >= l.Max {
				return ch, l, false
			}
		}
	}
	if !consume {
		return rateCharge{}, RateLimit{}, true
	}
	for _, ch := range charges {
		for _, l := range ch.limits {
			k := rateKey{ch.agent, ch.grant, l.Window}
			c := rc.m[k]
			if c == nil {
				if len(rc.m) >= rc.max {
					rc.shrink(now)
				}
				c = &rateCount{}
				rc.m[k] = c
			}
			if now.Before(c.start) || !now.Before(c.end) {
				d := l.Window.Duration()
				c.start = now.Truncate(d)
				c.end, c.n = c.start.Add(d), 0
			}
			c.n++
		}
	}
	return rateCharge{}, RateLimit{}, true
}

// giveBack undoes a take(charges, now, true) that counted a call which was
// then refused after all; call it with the same arguments as the take.
func (rc *rateCounters) giveBack(charges []rateCharge, now time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, ch := range charges {
		for _, l := range ch.limits {
			if c := rc.m[rateKey{ch.agent, ch.grant, l.Window}]; c != nil && !now.Before(c.start) && now.Before(c.end) && c.n > 0 {
				c.n--
			}
		}
	}
}

// hasLimits reports whether any charge has a limit.
func hasLimits(charges []rateCharge) bool {
	for _, ch := range charges {
		if len(ch.limits) > 0 {
			return true
		}
	}
	return false
}

// rateLimited is the decision refusing a call over ch's limit l.
func rateLimited(ch rateCharge, l RateLimit, self string) Decision {
	if ch.agent != self {
		return Decision{Code: CodeRateLimited, Reason: fmt.Sprintf("grant %q of %q, above this agent, allows %d calls per %s", ch.grant, ch.agent, l.Max, l.Window)}
	}
	return Decision{Code: CodeRateLimited, Reason: fmt.Sprintf("grant %q allows %d calls per %s", ch.grant, l.Max, l.Window)}
}

// shrink drops counters whose window has ended and, if that is not enough,
// an arbitrary tenth of the rest (each loses its count: a few calls more
// are allowed, never fewer).
func (rc *rateCounters) shrink(now time.Time) {
	for k, c := range rc.m {
		if !now.Before(c.end) {
			delete(rc.m, k)
		}
	}
	for k := range rc.m {
		if len(rc.m) < rc.max-rc.max/10 {
			return
		}
		delete(rc.m, k)
	}
}

// len reports how many counters are kept.
func (rc *rateCounters) len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.m)
}
