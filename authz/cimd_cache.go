package authz

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// docCache keeps clients built from metadata documents for as long as the
// documents' caching headers allow, holds at most size of them, and makes
// concurrent requests for one document share a single fetch. Failures are
// never kept (the draft forbids caching errors and invalid documents).
type docCache struct {
	size     int
	now      func() time.Time
	mu       sync.Mutex
	entries  map[string]docEntry
	inflight map[string]*docFetch
}

type docEntry struct {
	c     *Client
	until time.Time
}

// docFetch is one fetch in progress; c and err are set before done closes.
type docFetch struct {
	done chan struct{}
	c    *Client
	err  error
}

// docLoader fetches a document; ttl 0 means "do not keep".
type docLoader func(ctx context.Context, clientID string) (c *Client, ttl time.Duration, err error)

var errFetchAborted = errors.New("client metadata document fetch aborted")

func newDocCache(size int, now func() time.Time) *docCache {
	return &docCache{size: size, now: now, entries: map[string]docEntry{}, inflight: map[string]*docFetch{}}
}

func (dc *docCache) get(ctx context.Context, clientID string, load docLoader) (*Client, error) {
	dc.mu.Lock()
	if e, ok := dc.entries[clientID]; ok && dc.now().Before(e.until) {
		dc.mu.Unlock()
		return e.c, nil
	}
	f, leader := dc.inflight[clientID], false
	if f == nil {
		f, leader = &docFetch{done: make(chan struct{}), err: errFetchAborted}, true
		dc.inflight[clientID] = f
	}
	dc.mu.Unlock()
	if leader {
		// Others wait for this fetch, so it outlives this request's
		// cancellation; the fetch timeout still bounds it.
		dc.fetch(context.WithoutCancel(ctx), clientID, f, load)
	}
	select {
	case <-f.done:
		return f.c, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (dc *docCache) fetch(ctx context.Context, clientID string, f *docFetch, load docLoader) {
	var ttl time.Duration
	defer func() {
		dc.mu.Lock()
		delete(dc.inflight, clientID)
		if f.err == nil && ttl > 0 {
			dc.put(clientID, docEntry{c: f.c, until: dc.now().Add(ttl)})
		} else {
			delete(dc.entries, clientID)
		}
		dc.mu.Unlock()
		close(f.done)
	}()
	f.c, ttl, f.err = load(ctx, clientID)
}

// put stores e, first dropping expired entries and then, if still full,
// those that expire soonest. Called with mu held.
func (dc *docCache) put(clientID string, e docEntry) {
	if _, ok := dc.entries[clientID]; !ok && len(dc.entries) >= dc.size {
		now := dc.now()
		for k, v := range dc.entries {
			if !now.Before(v.until) {
				delete(dc.entries, k)
			}
		}
		for len(dc.entries) >= dc.size {
			var oldest string
			for k, v := range dc.entries {
				if oldest == "" || v.until.Before(dc.entries[oldest].until) {
					oldest = k
				}
			}
			delete(dc.entries, oldest)
		}
	}
	dc.entries[clientID] = e
}

func (dc *docCache) forget(clientID string) {
	dc.mu.Lock()
	delete(dc.entries, clientID)
	dc.mu.Unlock()
}

func (dc *docCache) len() int {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return len(dc.entries)
}

// cacheTTL is how long a response may be used (RFC 9111 freshness, within
// [minTTL, maxTTL]): max-age less Age, else Expires less Date, else minTTL.
// no-store and no-cache give 0: fetched again on every use.
func cacheTTL(h http.Header, now time.Time, minTTL, maxTTL time.Duration) time.Duration {
	var ttl time.Duration
	known := false
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				if secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64); err == nil && secs >= 0 {
					ttl, known = time.Duration(min(secs, int64(maxTTL/time.Second)+1))*time.Second, true
				}
			}
		}
	}
	if known {
		if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
			ttl -= time.Duration(min(age, int64(maxTTL/time.Second)+1)) * time.Second
		}
	} else if exp := h.Get("Expires"); exp != "" {
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		if t, err := http.ParseTime(exp); err == nil {
			ttl = t.Sub(base)
		} // an invalid Expires means already expired (RFC 9111 §5.3)
	} else {
		ttl = minTTL
	}
	return min(max(ttl, minTTL), maxTTL)
}
