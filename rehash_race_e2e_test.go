package kavach_test

import (
	"context"
	"testing"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

// TestConcurrentLegacyHashSignInsBothSucceed, found in review (it fails if the bug comes back): two sign-ins of the same
// user with the right password, both started while the stored hash is a
// legacy one (imported, or made with weaker parameters), must both get a
// session. Both see the legacy hash and rehash it; the first
// compare-and-swap wins, the second loses and rehash returns the legacy
// hash, which the sign-in's re-read inside its transaction then finds
// changed (by the other sign-in's upgrade, not by a reset or takeover) and
// refuses with INVALID_CREDENTIALS. The verifier holds both checks open
// until both have read the stored hash, so the order is certain; two tabs,
// a retry or two devices give the same overlap with a slow hash.
func TestConcurrentLegacyHashSignInsBothSucceed(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		entered, release := make(chan struct{}, 2), make(chan struct{})
		e := newEnv(t, open, func(c *kavach.Config) {
			c.VerifyLegacyHash = func(ctx context.Context, stored, password string) (bool, error) {
				if stored != "legacy:"+goodPassword || password != goodPassword {
					return false, nil
				}
				entered <- struct{}{}
				<-release
				return true, nil
			}
		})
		insertUserWithHash(t, e.store, "lena@example.com", "legacy:"+goodPassword)
		released := false
		t.Cleanup(func() {
			if !released {
				close(release)
			}
		})
		done := make(chan *response, 2)
		for range 2 {
			c := e.client()
			go func() { done <- c.signIn("lena@example.com", goodPassword) }()
		}
		for range 2 {
			select {
			case <-entered:
			case r := <-done:
				t.Fatalf("a sign-in did not reach the legacy verifier: %d %s", r.Status, r.Raw)
			}
		}
		close(release)
		released = true
		for range 2 {
			r := <-done
			if r.Status != 200 {
				t.Errorf("a sign-in with the right password was refused because another one upgraded the hash meanwhile: %d %s", r.Status, r.Raw)
			}
		}
	})
}
