package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var loginAttemptTests = []test{
	{"ClaimNewKey", testLoginAttemptClaimNewKey},
	{"ClaimLocksAtThreshold", testLoginAttemptClaimLocksAtThreshold},
	{"ClaimWhileLockedRefused", testLoginAttemptClaimWhileLocked},
	{"ClaimAfterLockRestarts", testLoginAttemptClaimAfterLock},
	{"ClaimThresholdOneLocksAgain", testLoginAttemptClaimThresholdOne},
	{"ClaimThresholdZeroNeverLocks", testLoginAttemptClaimThresholdZero},
	{"GetUnknown", testLoginAttemptGetUnknown},
	{"Reset", testLoginAttemptReset},
	{"DeleteStale", testLoginAttemptDeleteStale},
}

// claim is one Claim call and the result it should have.
type claim struct {
	name        string
	at          time.Time
	wantAllowed bool
	wantCount   int
	wantLock    *time.Time
}

// runClaims makes each claim on key in order and checks its result and the
// state Get reports afterwards.
func runClaims(t *testing.T, s storage.Store, key string, threshold int, lockFor time.Duration, claims []claim) {
	t.Helper()
	ctx := t.Context()
	for _, c := range claims {
		allowed, count, lock, err := s.LoginAttempts().Claim(ctx, key, c.at, threshold, lockFor)
		must(t, c.name+": claim", err)
		if allowed != c.wantAllowed || count != c.wantCount {
			t.Fatalf("%s: claim = (%v, %d), want (%v, %d)", c.name, allowed, count, c.wantAllowed, c.wantCount)
		}
		wantSame(t, c.name+": lock", lock, c.wantLock)
		if lock != nil {
			wantUTC(t, c.name, *lock)
		}
		count, lock, err = s.LoginAttempts().Get(ctx, key)
		must(t, c.name+": get", err)
		if count != c.wantCount {
			t.Fatalf("%s: stored count = %d, want %d", c.name, count, c.wantCount)
		}
		wantSame(t, c.name+": stored lock", lock, c.wantLock)
	}
}

func testLoginAttemptClaimNewKey(t *testing.T, s storage.Store) {
	key, other := newID("key"), newID("key")
	t0 := now()
	runClaims(t, s, key, 3, time.Minute, []claim{
		{"first", t0, true, 1, nil},
		{"second", t0, true, 2, nil},
	})
	// Keys are counted apart.
	runClaims(t, s, other, 3, time.Minute, []claim{{"other key", t0, true, 1, nil}})
}

func testLoginAttemptClaimLocksAtThreshold(t *testing.T, s storage.Store) {
	t0 := now()
	lock := t0.Add(15 * time.Minute)
	runClaims(t, s, newID("key"), 3, 15*time.Minute, []claim{
		{"first", t0, true, 1, nil},
		{"second", t0.Add(time.Second), true, 2, nil},
		{"reaching threshold is allowed and locks", t0, true, 3, &lock},
	})
}

func testLoginAttemptClaimWhileLocked(t *testing.T, s storage.Store) {
	const threshold, lockFor = 2, 15 * time.Minute
	t0 := now()
	lock := t0.Add(lockFor)
	runClaims(t, s, newID("key"), threshold, lockFor, []claim{
		{"first", t0, true, 1, nil},
		{"locks", t0, true, 2, &lock},
		// Refused claims change nothing: not the count, not the lock.
		{"refused", t0.Add(time.Minute), false, 2, &lock},
		{"refused again", t0.Add(2 * time.Minute), false, 2, &lock},
		{"refused just before the lock ends", lock.Add(-time.Millisecond), false, 2, &lock},
	})
}

func testLoginAttemptClaimAfterLock(t *testing.T, s storage.Store) {
	const threshold, lockFor = 2, time.Minute
	t0 := now()
	lock := t0.Add(lockFor)
	relock := lock.Add(time.Second).Add(lockFor)
	runClaims(t, s, newID("key"), threshold, lockFor, []claim{
		{"first", t0, true, 1, nil},
		{"locks", t0, true, 2, &lock},
		{"lock ends at its time: count restarts", lock, true, 1, nil},
		{"counting again", lock.Add(time.Second), true, 2, &relock},
	})
}

func testLoginAttemptClaimThresholdOne(t *testing.T, s storage.Store) {
	const lockFor = time.Minute
	t0 := now()
	lock := t0.Add(lockFor)
	relock := lock.Add(lockFor)
	runClaims(t, s, newID("key"), 1, lockFor, []claim{
		{"first locks at once", t0, true, 1, &lock},
		{"refused", t0.Add(time.Second), false, 1, &lock},
		{"after the lock: allowed and locked again", lock, true, 1, &relock},
	})
}

func testLoginAttemptClaimThresholdZero(t *testing.T, s storage.Store) {
	t0 := now()
	var claims []claim
	for i := 1; i <= 10; i++ {
		claims = append(claims, claim{fmt.Sprintf("claim %d", i), t0, true, i, nil})
	}
	runClaims(t, s, newID("key"), 0, time.Hour, claims)
}

func testLoginAttemptGetUnknown(t *testing.T, s storage.Store) {
	count, lock, err := s.LoginAttempts().Get(t.Context(), newID("key"))
	must(t, "get unknown", err)
	if count != 0 || lock != nil {
		t.Fatalf("get unknown = (%d, %v), want (0, nil)", count, lock)
	}
}

func testLoginAttemptReset(t *testing.T, s storage.Store) {
	ctx := t.Context()
	key, other := newID("key"), newID("key")
	t0 := now()
	lock := t0.Add(time.Hour)
	runClaims(t, s, key, 2, time.Hour, []claim{
		{"first", t0, true, 1, nil},
		{"locks", t0, true, 2, &lock},
	})
	runClaims(t, s, other, 2, time.Hour, []claim{{"other key", t0, true, 1, nil}})

	must(t, "reset", s.LoginAttempts().Reset(ctx, key))
	// A reset key is a new key again, lock and all.
	runClaims(t, s, key, 2, time.Hour, []claim{{"after reset", t0, true, 1, nil}})
	count, _, err := s.LoginAttempts().Get(ctx, other)
	must(t, "get other", err)
	if count != 1 {
		t.Fatalf("reset changed another key: count %d, want 1", count)
	}
	must(t, "reset unknown key", s.LoginAttempts().Reset(ctx, newID("key")))
}

func testLoginAttemptDeleteStale(t *testing.T, s storage.Store) {
	ctx := t.Context()
	before := now()
	keys := []struct {
		name      string
		at        time.Time // the last claim
		threshold int
		lockFor   time.Duration
		stale     bool
	}{
		{"old, never locked", before.Add(-2 * time.Hour), 5, time.Hour, true},
		{"old, lock ended by then", before.Add(-time.Hour), 1, time.Hour, true},
		{"old, still locked then", before.Add(-2 * time.Hour), 1, 3 * time.Hour, false},
		{"updated at before", before, 5, time.Hour, false},
		{"updated after", before.Add(time.Minute), 5, time.Hour, false},
	}
	ids := make([]string, len(keys))
	wantDeleted := 0
	for i, k := range keys {
		ids[i] = newID("key")
		_, _, _, err := s.LoginAttempts().Claim(ctx, ids[i], k.at, k.threshold, k.lockFor)
		must(t, "claim "+k.name, err)
		if k.stale {
			wantDeleted++
		}
	}

	n, err := s.LoginAttempts().DeleteStale(ctx, before)
	must(t, "delete stale", err)
	if n != wantDeleted {
		t.Fatalf("delete stale removed %d, want %d", n, wantDeleted)
	}
	for i, k := range keys {
		count, _, err := s.LoginAttempts().Get(ctx, ids[i])
		must(t, "get "+k.name, err)
		if gone := count == 0; gone != k.stale {
			t.Errorf("%s: deleted = %v, want %v", k.name, gone, k.stale)
		}
	}
	n, err = s.LoginAttempts().DeleteStale(ctx, before)
	must(t, "delete stale again", err)
	if n != 0 {
		t.Fatalf("second delete stale removed %d, want 0", n)
	}
}
