package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// API keys are Config.KeyPrefix followed by id.Secret (256 random bits,
// 43 base64url characters). Only their SHA-256 is stored, so a lookup by
// hash is the whole check: there is no secret comparison to time.
const (
	keySecretLen = 43
	// keyDisplayLen is how much of a key is kept for display ("kv_" and
	// nine characters of the secret, 54 bits: enough to tell keys apart,
	// far too little to guess the rest).
	keyDisplayLen = 12
	// MaxRotateOverlap bounds how long a replaced key keeps working.
	MaxRotateOverlap = 7 * 24 * time.Hour
)

func (s *Service) newKey(agentID string, now time.Time) (string, storage.AgentKey) {
	key := s.cfg.KeyPrefix + id.Secret()
	return key, storage.AgentKey{
		ID: id.New("agk"), AgentID: agentID, Hash: id.Hash(key), Prefix: key[:min(keyDisplayLen, len(key))], CreatedAt: now,
	}
}

// Rotate issues a new API key for the agent and returns it (it is shown
// only here). The agent's other keys keep working for overlap, then stop;
// 0 stops them now. A key whose revocation is already nearer stays as it
// is. Rotating a revoked agent is refused.
func (s *Service) Rotate(ctx context.Context, agentID string, overlap time.Duration) (string, error) {
	if overlap < 0 || overlap > MaxRotateOverlap {
		return "", invalid("overlap", "must be between 0 and %s", MaxRotateOverlap)
	}
	now := s.now()
	key, k := s.newKey(agentID, now)
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := tx.Agents().Get(ctx, agentID)
		if err != nil {
			return agentErr("get agent", err)
		}
		if a.Status == storage.AgentRevoked {
			return ErrAgentRevoked
		}
		if err := tx.AgentKeys().Create(ctx, &k); err != nil {
			return fmt.Errorf("create agent key: %w", err)
		}
		n, err := tx.AgentKeys().RevokeAgentKeys(ctx, a.ID, k.ID, now.Add(overlap))
		if err != nil {
			return fmt.Errorf("revoke old agent keys: %w", err)
		}
		info := map[string]any{"keyPrefix": k.Prefix, "overlapSeconds": int64(overlap / time.Second), "keysRetired": n}
		payload := map[string]any{"agentId": a.ID, "keyPrefix": k.Prefix, "overlapSeconds": int64(overlap / time.Second)}
		if err := emit(ctx, tx, EventAgentRotated, a.ID, payload, now); err != nil {
			return err
		}
		return appendSecurity(ctx, tx, securityRecord(ctx, EventAgentRotated, a, now, info))
	})
	s.keys.clear() // the agent's old keys now end sooner
	if err != nil {
		return "", fmt.Errorf("rotate agent key: %w", err)
	}
	return key, nil
}

// The key cache keeps recently used keys (by hash) in memory, so a call
// with an API key costs no database read. Rotations and revocations made
// through this process clear it at once; those made on another node apply
// here within principalCacheTTL, as for the agent itself. Unknown keys are
// never cached.
type keyCache struct {
	mu  sync.RWMutex
	m   map[string]cachedKey
	gen uint64 // counts clears: a lookup that started before one stores nothing
}

type cachedKey struct {
	key storage.AgentKey
	at  time.Time
}

const keyCacheSize = 10_000

func (c *keyCache) get(hash string, now time.Time) (storage.AgentKey, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[hash]
	if ok {
		if age := now.Sub(e.at); age < 0 || age >= principalCacheTTL {
			ok = false
		}
	}
	return e.key, c.gen, ok
}

func (c *keyCache) put(hash string, k storage.AgentKey, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil || len(c.m) >= keyCacheSize {
		c.m = make(map[string]cachedKey)
	}
	c.m[hash] = cachedKey{key: k, at: now}
}

func (c *keyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
	c.gen++
}

// lookupKey returns the stored key with this hash, from the cache when
// fresh.
func (s *Service) lookupKey(ctx context.Context, hash string, now time.Time) (storage.AgentKey, error) {
	k, gen, ok := s.keys.get(hash, now)
	if ok {
		return k, nil
	}
	stored, err := s.store.AgentKeys().GetByHash(ctx, hash)
	if err != nil {
		return storage.AgentKey{}, err
	}
	s.keys.put(hash, *stored, gen, now)
	return *stored, nil
}

// AuthenticateKey returns the agent an API key belongs to. Malformed,
// unknown, revoked and expired keys are all ErrInvalidKey. A valid key of
// an agent that may not act returns the agent together with
// ErrAgentSuspended, ErrAgentRevoked or ErrAgentExpired, so the caller can
// refuse with a precise answer (and still record a decision about it).
// The agent comes from the decision cache: a suspension made on another
// node applies within principalCacheTTL; a revoked key applies at once.
func (s *Service) AuthenticateKey(ctx context.Context, key string) (storage.Agent, error) {
	a, _, err := s.AuthenticateKeyID(ctx, key)
	return a, err
}

// AuthenticateKeyID is AuthenticateKey that also returns the key's id,
// which names the credential of a decision (DecideRequest.TokenID). The id
// is set whenever the agent is.
func (s *Service) AuthenticateKeyID(ctx context.Context, key string) (storage.Agent, string, error) {
	if len(key) != len(s.cfg.KeyPrefix)+keySecretLen || !strings.HasPrefix(key, s.cfg.KeyPrefix) {
		return storage.Agent{}, "", ErrInvalidKey
	}
	now := s.now()
	k, err := s.lookupKey(ctx, id.Hash(key), now)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
			return storage.Agent{}, "", ErrInvalidKey
		}
		return storage.Agent{}, "", fmt.Errorf("authenticate agent key: %w", err)
	}
	if k.RevokedAt != nil && !now.Before(*k.RevokedAt) || k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return storage.Agent{}, "", ErrInvalidKey
	}
	p, err := s.principal(ctx, k.AgentID, now)
	if err != nil {
		if errors.Is(err, ErrAgentNotFound) {
			return storage.Agent{}, "", ErrInvalidKey
		}
		return storage.Agent{}, "", fmt.Errorf("authenticate agent key: %w", err)
	}
	a := publicAgent(p.agent, now)
	if err := statusErr(a.Status); err != nil {
		return a, k.ID, err
	}
	s.touch(ctx, p, now)
	return a, k.ID, nil
}
