package authz

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/kavachos/kavach/internal/safehttp"
)

// safeJWKSFetcher is fosite's fetcher for a registered client's jwks_uri,
// over safehttp (no private targets, bounded size and time). A key set
// that cannot be had is the client's failure to authenticate
// (invalid_client), not the server's (fosite's own fetcher answers 500).
type safeJWKSFetcher struct {
	client *safehttp.Client
	ttl    time.Duration
	mu     sync.Mutex
	cache  map[string]cachedKeySet
}

type cachedKeySet struct {
	set *josev3.JSONWebKeySet
	at  time.Time
}

var _ fosite.JWKSFetcherStrategy = (*safeJWKSFetcher)(nil)

const maxCachedKeySets = 1000

func newSafeJWKSFetcher(c *safehttp.Client) *safeJWKSFetcher {
	return &safeJWKSFetcher{client: c, ttl: 5 * time.Minute, cache: map[string]cachedKeySet{}}
}

func (f *safeJWKSFetcher) Resolve(ctx context.Context, location string, ignoreCache bool) (*josev3.JSONWebKeySet, error) {
	now := time.Now()
	if !ignoreCache {
		f.mu.Lock()
		c, ok := f.cache[location]
		f.mu.Unlock()
		if ok && now.Sub(c.at) < f.ttl {
			return c.set, nil
		}
	}
	resp, err := f.client.GetJSON(ctx, location)
	if err != nil {
		return nil, fosite.ErrInvalidClient.WithHint("The client's jwks_uri could not be fetched.").WithWrap(err)
	}
	var set josev3.JSONWebKeySet
	if err := json.Unmarshal(resp.Body, &set); err != nil || len(set.Keys) == 0 {
		return nil, fosite.ErrInvalidClient.WithHint("The client's jwks_uri does not hold a JWK set.")
	}
	f.mu.Lock()
	if len(f.cache) >= maxCachedKeySets {
		clear(f.cache) // crude, but bounded; refetching is cheap
	}
	f.cache[location] = cachedKeySet{set: &set, at: now}
	f.mu.Unlock()
	return &set, nil
}
