package authz

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage/storagetest"
)

func TestRotate(t *testing.T) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			store, clock := d.Open(t), newKeysClock()
			m := newKeys(t, store, clock)
			peer := newKeys(t, store, clock) // another node on the same store
			oldKIDs := signingKIDs(t, m)
			oldTokens := map[string]string{}
			for _, alg := range allKeyAlgs {
				oldTokens[alg] = mustSign(t, m, alg, map[string]any{"sub": "before"})
			}

			clock.Advance(time.Minute)
			const publishFor = time.Hour
			if err := m.Rotate(ctx, publishFor); err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			newKIDs := signingKIDs(t, m)
			for _, alg := range allKeyAlgs {
				if newKIDs[alg] == "" || newKIDs[alg] == oldKIDs[alg] {
					t.Errorf("%s: signs with %q after rotation, was %q", alg, newKIDs[alg], oldKIDs[alg])
				}
				if h := headerOf(t, mustSign(t, m, alg, map[string]any{"sub": "after"})); h.KID != newKIDs[alg] {
					t.Errorf("%s: new token has kid %s, want %s", alg, h.KID, newKIDs[alg])
				}
				if _, _, err := m.Verify(oldTokens[alg], []string{alg}); err != nil {
					t.Errorf("%s: token of the retired key no longer verifies: %v", alg, err)
				}
			}
			wantBoth := slices.Sorted(slices.Values(append(mapValues(oldKIDs), mapValues(newKIDs)...)))
			if got := jwksKIDs(t, m.JWKS()); !slices.Equal(got, wantBoth) {
				t.Errorf("JWKS kids during overlap %v, want %v", got, wantBoth)
			}
			rows := storedKeys(t, store)
			for _, row := range rows {
				retired := row.RetiredAt != nil
				if wasOld := slices.Contains(mapValues(oldKIDs), row.KID); retired != wasOld {
					t.Errorf("%s: retired %v, want %v", row.KID, retired, wasOld)
				}
				if retired && (!row.RetiredAt.Equal(clock.Now()) || !row.ExpiresAt.Equal(clock.Now().Add(publishFor))) {
					t.Errorf("%s: retired %v expires %v, want %v and %v", row.KID, row.RetiredAt, row.ExpiresAt, clock.Now(), clock.Now().Add(publishFor))
				}
			}

			// The peer signs with the old keys until it reloads, and
			// verifies new tokens only after.
			if got := headerOf(t, mustSign(t, peer, AlgEdDSA, map[string]any{})).KID; got != oldKIDs[AlgEdDSA] {
				t.Errorf("peer signs with %s before Reload, want the key it knows, %s", got, oldKIDs[AlgEdDSA])
			}
			if err := peer.Reload(ctx); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if got := signingKIDs(t, peer); !mapsEqual(got, newKIDs) {
				t.Errorf("peer signs with %v after Reload, want %v", got, newKIDs)
			}
			if !bytes.Equal(peer.JWKS(), m.JWKS()) {
				t.Errorf("peer JWKS after Reload differs:\n%s\n%s", peer.JWKS(), m.JWKS())
			}
			if _, _, err := peer.Verify(mustSign(t, m, AlgES256, map[string]any{}), []string{AlgES256}); err != nil {
				t.Errorf("peer does not verify a new token after Reload: %v", err)
			}

			// Once the publication ends, old tokens fail even before a
			// Reload, and the JWKS drops the old keys.
			clock.Advance(publishFor)
			for _, alg := range allKeyAlgs {
				if _, _, err := m.Verify(oldTokens[alg], []string{alg}); !errors.Is(err, ErrInvalidJWS) || !strings.Contains(err.Error(), "unknown or expired key") {
					t.Errorf("%s: token of an expired key: %v, want unknown or expired key", alg, err)
				}
			}
			wantNew := slices.Sorted(slices.Values(mapValues(newKIDs)))
			if got := jwksKIDs(t, m.JWKS()); !slices.Equal(got, wantNew) {
				t.Errorf("JWKS kids after expiry, before Reload: %v, want %v", got, wantNew)
			}
			for _, mgr := range []*KeyManager{m, peer} {
				if err := mgr.Reload(ctx); err != nil {
					t.Fatalf("Reload: %v", err)
				}
				if got := jwksKIDs(t, mgr.JWKS()); !slices.Equal(got, wantNew) {
					t.Errorf("JWKS kids after Reload: %v, want %v", got, wantNew)
				}
				if _, _, err := mgr.Verify(oldTokens[AlgRS256], []string{AlgRS256}); !errors.Is(err, ErrInvalidJWS) {
					t.Errorf("token of an expired key after Reload: %v", err)
				}
			}

			// A later start on this store keeps the new keys.
			if got := signingKIDs(t, newKeys(t, store, clock)); !mapsEqual(got, newKIDs) {
				t.Errorf("restart signs with %v, want %v", got, newKIDs)
			}
		})
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestRotateImmediately(t *testing.T) {
	clock := newKeysClock()
	m := newKeys(t, storagetest.OpenSQLite(t), clock, AlgEdDSA)
	old := mustSign(t, m, AlgEdDSA, map[string]any{})
	if err := m.Rotate(context.Background(), 0); err != nil {
		t.Fatalf("Rotate(0): %v", err)
	}
	if _, _, err := m.Verify(old, []string{AlgEdDSA}); !errors.Is(err, ErrInvalidJWS) {
		t.Errorf("token of a key rotated with no publication period: %v, want ErrInvalidJWS", err)
	}
	if n := len(jwksKIDs(t, m.JWKS())); n != 1 {
		t.Errorf("JWKS has %d keys, want 1", n)
	}
	if err := m.Rotate(context.Background(), -time.Second); err == nil {
		t.Error("Rotate with a negative period succeeded")
	}
}

// TestKeyManagerConcurrentUse runs signing and verification while keys
// rotate and reload; run with -race.
func TestKeyManagerConcurrentUse(t *testing.T) {
	clock := newKeysClock()
	store := storagetest.OpenSQLite(t)
	m := newKeys(t, store, clock, AlgEdDSA, AlgES256)
	peer := newKeys(t, store, clock, AlgEdDSA, AlgES256)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, alg := range []string{AlgEdDSA, AlgES256} {
					token, err := m.Sign(alg, "at+jwt", map[string]any{"sub": "u"})
					if err != nil {
						t.Error(err)
						return
					}
					// Retired keys stay published for an hour, so a token
					// signed just before a rotation still verifies.
					if _, _, err := m.Verify(token, []string{alg}); err != nil {
						t.Error(err)
						return
					}
					_ = peer.JWKS()
				}
			}
		})
	}
	for range 5 {
		if err := m.Rotate(ctx, time.Hour); err != nil {
			t.Error(err)
		}
		if err := peer.Reload(ctx); err != nil {
			t.Error(err)
		}
		clock.Advance(time.Minute)
	}
	close(stop)
	wg.Wait()
	if n := len(jwksKIDs(t, peer.JWKS())); n != 12 {
		t.Errorf("peer JWKS has %d keys after 5 rotations of 2 algorithms, want 12", n)
	}
}
