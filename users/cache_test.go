package users

import (
	"fmt"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

func view(user, sess string, expires time.Time) SessionView {
	return SessionView{User: storage.User{ID: user}, Session: storage.Session{ID: sess, UserID: user, ExpiresAt: expires}}
}

func TestSessionCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)

	t.Run("hit within ttl, miss after", func(t *testing.T) {
		c := newSessionCache(30*time.Second, 10)
		c.put("h", view("u", "s", later), now, c.generation())
		if _, ok := c.get("h", now.Add(29*time.Second)); !ok {
			t.Fatal("miss within ttl")
		}
		if _, ok := c.get("h", now.Add(30*time.Second)); ok {
			t.Fatal("hit after ttl")
		}
	})
	t.Run("never serves an expired session", func(t *testing.T) {
		c := newSessionCache(time.Hour, 10)
		c.put("h", view("u", "s", now.Add(time.Second)), now, c.generation())
		if _, ok := c.get("h", now.Add(time.Second)); ok {
			t.Fatal("served an expired session")
		}
	})
	t.Run("invalidate one and by user", func(t *testing.T) {
		c := newSessionCache(time.Hour, 10)
		c.put("a1", view("a", "s1", later), now, c.generation())
		c.put("a2", view("a", "s2", later), now, c.generation())
		c.put("b1", view("b", "s3", later), now, c.generation())
		c.invalidate("a1")
		if _, ok := c.get("a1", now); ok {
			t.Fatal("a1 still cached")
		}
		c.invalidateUser("a")
		if _, ok := c.get("a2", now); ok {
			t.Fatal("a2 still cached after invalidateUser")
		}
		if _, ok := c.get("b1", now); !ok {
			t.Fatal("b1 lost")
		}
	})
	t.Run("bounded size", func(t *testing.T) {
		c := newSessionCache(time.Hour, 100)
		for i := range 10_000 {
			c.put(fmt.Sprint("h", i), view(fmt.Sprint("u", i), "s", later), now, c.generation())
		}
		if len(c.entries) > 100 || len(c.byUser) > 100 {
			t.Fatalf("cache grew to %d entries, %d users", len(c.entries), len(c.byUser))
		}
		if _, ok := c.get("h9999", now); !ok {
			t.Fatal("newest entry was evicted")
		}
	})
	t.Run("a lookup racing an invalidation is not cached", func(t *testing.T) {
		c := newSessionCache(time.Hour, 10)
		gen := c.generation() // the lookup starts reading the store
		c.invalidate("h")     // meanwhile the session is revoked
		c.put("h", view("u", "s", later), now, gen)
		if _, ok := c.get("h", now); ok {
			t.Fatal("a view read before the revocation was cached after it")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		c := newSessionCache(-1, 10)
		c.put("h", view("u", "s", later), now, c.generation())
		if _, ok := c.get("h", now); ok {
			t.Fatal("disabled cache served an entry")
		}
	})
}
