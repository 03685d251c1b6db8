package agents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kavachos/kavach/storage"
)

// The decision cache keeps each recently active agent and its compiled
// grants in memory, so Decide costs no database read. Changes made through
// this process's Service invalidate the entry at once; changes made on
// another node apply when the entry is older than principalCacheTTL.
const (
	principalCacheTTL  = 5 * time.Second
	principalCacheSize = 10_000
	// touchEvery bounds how often an agent's LastActiveAt is written.
	touchEvery = time.Minute
)

// principal is an agent as Decide sees it. It is immutable once cached,
// apart from its two atomics.
type principal struct {
	// agent is the agent; for a user (isUser), only ID (the user's id)
	// and Status (active) are set.
	isUser   bool
	agent    storage.Agent
	ownerKey string           // the owner's cache key (userKeyPrefix + id), "" when none
	set      *GrantSet        // nil when setErr is set
	setErr   error            // the stored grants do not compile: every decision is refused
	budgets  []storage.Budget // of every scope of the agent (BudgetScopes); nil when none
	loadedAt time.Time

	lastTouch  atomic.Int64 // UnixNano of LastActiveAt as this process knows it
	refreshing atomic.Bool  // one caller reloads a stale entry; others use it meanwhile
}

type principalCache struct {
	ttl time.Duration
	max int

	mu sync.RWMutex
	m  map[string]*principal
	// gen counts invalidations. A load that started before one must not
	// store what it read, which may predate the change.
	gen uint64
}

func newPrincipalCache(ttl time.Duration, max int) *principalCache {
	return &principalCache{ttl: ttl, max: max, m: make(map[string]*principal)}
}

func (c *principalCache) get(id string) (*principal, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[id], c.gen
}

func (c *principalCache) fresh(p *principal, now time.Time) bool {
	age := now.Sub(p.loadedAt)
	return age >= 0 && age < c.ttl
}

// put stores p unless an invalidation happened since gen was read. When
// the cache is full it drops stale entries, and if none are stale, an
// arbitrary tenth of the entries.
func (c *principalCache) put(id string, p *principal, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
		for k, e := range c.m {
			if !c.fresh(e, p.loadedAt) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max-c.max/10 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[id] = p
}

func (c *principalCache) invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
	c.gen++
}

// principal returns the agent with its compiled grants, from the cache
// when fresh. ErrAgentNotFound when there is no such agent.
func (s *Service) principal(ctx context.Context, agentID string, now time.Time) (*principal, error) {
	p, gen := s.cache.get(agentID)
	if p != nil {
		if s.cache.fresh(p, now) || !p.refreshing.CompareAndSwap(false, true) {
			return p, nil // fresh, or another caller is reloading it
		}
		defer p.refreshing.Store(false)
	}
	np, err := s.loadPrincipal(ctx, agentID, now)
	if err != nil {
		if errors.Is(err, ErrAgentNotFound) {
			s.cache.invalidate(agentID)
		}
		return nil, err
	}
	if p != nil {
		// Keep a touch this process made after the store was read.
		if t := p.lastTouch.Load(); t > np.lastTouch.Load() {
			np.lastTouch.Store(t)
		}
	}
	s.cache.put(agentID, np, gen)
	return np, nil
}

func (s *Service) loadPrincipal(ctx context.Context, agentID string, now time.Time) (*principal, error) {
	if agentID == "" {
		return nil, ErrAgentNotFound
	}
	if userID, ok := strings.CutPrefix(agentID, userKeyPrefix); ok {
		return s.loadUserPrincipal(ctx, userID, now)
	}
	a, err := s.store.Agents().Get(ctx, agentID)
	if err != nil {
		return nil, agentErr("load agent", err)
	}
	rows, err := s.store.AgentGrants().List(ctx, agentID)
	if err != nil {
		return nil, agentErr("load agent grants", err)
	}
	budgets, err := s.store.Budgets().ListByScopes(ctx, BudgetScopes(a))
	if err != nil {
		return nil, fmt.Errorf("load agent budgets: %w", err)
	}
	p := &principal{agent: *a, budgets: budgets, loadedAt: now}
	if a.OwnerUserID != nil {
		p.ownerKey = userKeyPrefix + *a.OwnerUserID
	}
	if a.LastActiveAt != nil {
		p.lastTouch.Store(a.LastActiveAt.UnixNano())
	}
	grants, err := decodeGrants(rows)
	if err == nil {
		p.set, err = CompileGrants(grants)
	}
	if err != nil {
		// Fail closed, loudly: grants that validated when stored no
		// longer do (a manual edit, or stricter validation since).
		s.cfg.Logger.Error("agents: stored grants do not compile; refusing every request of the agent",
			"agent", agentID, "err", err)
		p.set, p.setErr = nil, err
	}
	return p, nil
}

// touch records that the agent was active, at most once per touchEvery
// per process (and, through the cache, roughly once across nodes). It is
// best effort: activity display must not fail a decision.
func (s *Service) touch(ctx context.Context, p *principal, now time.Time) {
	last := p.lastTouch.Load()
	if d := now.UnixNano() - last; d >= 0 && d < int64(touchEvery) {
		return
	}
	if !p.lastTouch.CompareAndSwap(last, now.UnixNano()) {
		return // another caller is touching it
	}
	if err := s.store.Agents().Touch(ctx, p.agent.ID, now); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Warn("agents: record last activity", "agent", p.agent.ID, "err", err)
	}
}

// publicAgent copies a cached agent so the caller cannot change the cache.
func publicAgent(a storage.Agent, now time.Time) storage.Agent {
	a.Metadata = slices.Clone(a.Metadata)
	a.OwnerUserID = clonePtr(a.OwnerUserID)
	a.ClientID = clonePtr(a.ClientID)
	a.LastActiveAt = clonePtr(a.LastActiveAt)
	a.ExpiresAt = clonePtr(a.ExpiresAt)
	a.ParentID = clonePtr(a.ParentID)
	a.OrganizationID = clonePtr(a.OrganizationID)
	a.Status = effectiveStatus(&a, now)
	return a
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
