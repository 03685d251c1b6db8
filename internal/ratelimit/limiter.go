package ratelimit

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a limiter made by New tracks at once. With
// short keys such as IP prefixes a key costs about 200 bytes, so the
// limiter stays near 20 MB however many clients appear.
const DefaultMaxKeys = 100_000

// Limiter admits at most limit requests per key in each fixed window. A
// key's window opens with its first request and lasts window; the next
// request after that opens a new one.
//
// Fixed windows let a key make up to 2×limit requests across a window
// boundary. That is acceptable for an abuse brake, keeps the arithmetic and
// the Retry-After value exact, and matches what a shared store does with
// INCR and PEXPIRE, so a multi-node deployment behaves the same.
//
// Memory is bounded: keys whose window has ended are swept on every call,
// and when maxKeys live keys are tracked, admitting a new key evicts the key
// whose window opened first. Eviction was chosen over refusing new keys
// because refusing would let a flood of random keys lock every legitimate
// client out; the evicted counter is the one closest to resetting anyway, so
// an attacker gains at most one early reset per maxKeys fresh keys.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	limit   int
	window  time.Duration
	maxKeys int

	mu   sync.Mutex
	keys map[string]*list.Element // of *counter
	// byStart orders counters by window start, oldest first, so sweeping and
	// eviction take the front without scanning.
	byStart *list.List
}

type counter struct {
	key   string
	start time.Time
	count int
}

// New returns a limiter that admits limit requests per key per window and
// tracks at most DefaultMaxKeys keys. It panics if limit or window is not
// positive: a limiter that admits nothing is a configuration bug.
func New(limit int, window time.Duration) *Limiter {
	return NewWithMaxKeys(limit, window, DefaultMaxKeys)
}

// NewWithMaxKeys is New with an explicit bound on tracked keys.
func NewWithMaxKeys(limit int, window time.Duration, maxKeys int) *Limiter {
	if limit <= 0 || window <= 0 || maxKeys <= 0 {
		panic(fmt.Sprintf("ratelimit: limit (%d), window (%v) and maxKeys (%d) must be positive", limit, window, maxKeys))
	}
	return &Limiter{
		limit:   limit,
		window:  window,
		maxKeys: maxKeys,
		keys:    make(map[string]*list.Element),
		byStart: list.New(),
	}
}

// Allow records a request for key at now and reports whether it is within
// the limit. When it is not, retryAfter is how long until the key's window
// ends; refused requests are not counted.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()

	l.sweep(now)
	c := l.counterFor(key, now)
	if c.count >= l.limit {
		// Clamped so a clock that stepped backwards cannot ask for more
		// than one window.
		return false, min(c.start.Add(l.window).Sub(now), l.window)
	}
	c.count++
	return true, 0
}

// Reset forgets key, for example after a successful sign-in.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.keys[key]; ok {
		l.remove(el)
	}
}

// Len reports how many keys are tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// counterFor returns key's counter for the window containing now, opening a
// new window (and evicting the oldest key when full) as needed.
func (l *Limiter) counterFor(key string, now time.Time) *counter {
	if el, ok := l.keys[key]; ok {
		c := el.Value.(*counter)
		if l.expired(c, now) {
			c.start, c.count = now, 0
			l.byStart.MoveToBack(el)
		}
		return c
	}
	if len(l.keys) >= l.maxKeys {
		l.remove(l.byStart.Front())
	}
	c := &counter{key: key, start: now}
	l.keys[key] = l.byStart.PushBack(c)
	return c
}

// sweep drops counters whose window has ended. Callers pass their own clock
// readings, so the list is only nearly sorted; sweep stops at the first live
// counter and leaves any stragglers for a later call or for eviction.
func (l *Limiter) sweep(now time.Time) {
	for el := l.byStart.Front(); el != nil; el = l.byStart.Front() {
		if !l.expired(el.Value.(*counter), now) {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) expired(c *counter, now time.Time) bool {
	return !now.Before(c.start.Add(l.window))
}

func (l *Limiter) remove(el *list.Element) {
	c := l.byStart.Remove(el).(*counter)
	delete(l.keys, c.key)
}
