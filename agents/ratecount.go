package agents

import (
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

// take reports whether one more call fits every limit at now; if it does
// and consume is set, the call is counted against all of them. A refused
// call counts against none. The limit returned is the one that refused.
func (rc *rateCounters) take(agent, grant string, limits []RateLimit, now time.Time, consume bool) (RateLimit, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, l := range limits {
		c := rc.m[rateKey{agent, grant, l.Window}]
		if c != nil && !now.Before(c.start) && now.Before(c.end) && c.n >= l.Max {
			return l, false
		}
	}
	if !consume {
		return RateLimit{}, true
	}
	for _, l := range limits {
		k := rateKey{agent, grant, l.Window}
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
	return RateLimit{}, true
}

// giveBack undoes a take(…, now, true) that counted a call which was then
// refused after all; call it with the same arguments as the take.
func (rc *rateCounters) giveBack(agent, grant string, limits []RateLimit, now time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, l := range limits {
		if c := rc.m[rateKey{agent, grant, l.Window}]; c != nil && !now.Before(c.start) && now.Before(c.end) && c.n > 0 {
			c.n--
		}
	}
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
