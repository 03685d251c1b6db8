package users

import (
	"sync"
	"time"
)

// sessionCache keeps recently validated sessions in memory so that most
// lookups cost no query. Entries live for ttl at most; revocations on this
// node invalidate at once, revocations on other nodes are seen within ttl.
type sessionCache struct {
	mu sync.RWMutex
	// gen counts invalidations. A lookup that read the store notes gen
	// first and may only cache its result if no invalidation happened in
	// between; otherwise a revocation racing the read could be undone by
	// caching the pre-revocation view.
	gen     uint64
	ttl     time.Duration
	max     int
	entries map[string]cacheEntry      // by token hash
	byUser  map[string]map[string]bool // user id → token hashes
}

type cacheEntry struct {
	view     SessionView
	cachedAt time.Time
}

func newSessionCache(ttl time.Duration, max int) *sessionCache {
	return &sessionCache{ttl: ttl, max: max, entries: map[string]cacheEntry{}, byUser: map[string]map[string]bool{}}
}

func (c *sessionCache) get(hash string, now time.Time) (SessionView, bool) {
	if c.ttl <= 0 {
		return SessionView{}, false
	}
	c.mu.RLock()
	e, ok := c.entries[hash]
	c.mu.RUnlock()
	if !ok || now.Sub(e.cachedAt) >= c.ttl || !now.Before(e.view.Session.ExpiresAt) {
		return SessionView{}, false
	}
	return e.view, true
}

// generation returns the invalidation counter to pass to put.
func (c *sessionCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches v unless an invalidation happened since gen was read.
func (c *sessionCache) put(hash string, v SessionView, now time.Time, gen uint64) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, exists := c.entries[hash]; !exists && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[hash] = cacheEntry{view: v, cachedAt: now}
	set := c.byUser[v.User.ID]
	if set == nil {
		set = map[string]bool{}
		c.byUser[v.User.ID] = set
	}
	set[hash] = true
}

// evictLocked frees at least a tenth of the cache, stale entries first, so
// that a full cache costs one scan per max/10 insertions, not one per
// insertion, and never blocks new sign-ins.
func (c *sessionCache) evictLocked(now time.Time) {
	target := c.max/10 + 1
	for h, e := range c.entries {
		if now.Sub(e.cachedAt) >= c.ttl {
			c.removeLocked(h)
			target--
		}
	}
	for h := range c.entries {
		if target <= 0 {
			return
		}
		c.removeLocked(h)
		target--
	}
}

func (c *sessionCache) removeLocked(hash string) {
	e, ok := c.entries[hash]
	if !ok {
		return
	}
	delete(c.entries, hash)
	if set := c.byUser[e.view.User.ID]; set != nil {
		delete(set, hash)
		if len(set) == 0 {
			delete(c.byUser, e.view.User.ID)
		}
	}
}

// drop forgets an entry the store no longer has (unknown or expired
// token). Unlike invalidate it does not bump gen: nothing is being revoked
// that a racing lookup could resurrect, and bumping would let a flood of
// random tokens keep every concurrent lookup from being cached.
func (c *sessionCache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(hash)
}

func (c *sessionCache) invalidate(hashes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, h := range hashes {
		c.removeLocked(h)
	}
}

// invalidateUser drops every cached session of a user (profile changed,
// password reset, user deleted).
func (c *sessionCache) invalidateUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h := range c.byUser[userID] {
		delete(c.entries, h)
	}
	delete(c.byUser, userID)
}
