package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var raceTests = []test{
	{"ConsumeOnce", testRaceConsumeOnce},
	{"RecordFailedLogin", testRaceRecordFailedLogin},
	{"CreateSameEmail", testRaceCreateSameEmail},
	{"Transactions", testRaceTransactions},
}

// racers is how many goroutines each race starts, and rounds how many
// times each race runs: one round of fast statements on a small machine
// can happen to run one after another and hide a lost update.
const (
	racers = 20
	rounds = 5
)

// race runs fn on racers goroutines released at the same moment and
// returns their errors, indexed by goroutine.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// wantOneWinner fails the test unless exactly one error is nil and every
// other one is loser.
func wantOneWinner(t *testing.T, errs []error, loser error) {
	t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			t.Errorf("racer %d: %v, want nil or %v", i, err, loser)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers won, want exactly 1", wins)
	}
}

func testRaceConsumeOnce(t *testing.T, s storage.Store) {
	u := createUser(t, s)
	for range rounds {
		v := createVerification(t, s, u, storage.PurposePasswordReset, now().Add(time.Hour))
		errs := race(func(int) error {
			_, err := s.Verifications().Consume(t.Context(), v.Purpose, v.TokenHash, now())
			return err
		})
		wantOneWinner(t, errs, storage.ErrNotFound)
	}
}

func testRaceRecordFailedLogin(t *testing.T, s storage.Store) {
	for range rounds {
		raceRecordFailedLogin(t, s, createUser(t, s))
	}
}

func raceRecordFailedLogin(t *testing.T, s storage.Store, u *storage.User) {
	const threshold, lockFor = 5, 10 * time.Minute
	at := now()
	counts := make([]int, racers)
	locks := make([]*time.Time, racers)
	errs := race(func(i int) error {
		var err error
		counts[i], locks[i], err = s.Users().RecordFailedLogin(t.Context(), u.ID, at, threshold, lockFor)
		return err
	})
	for i, err := range errs {
		must(t, fmt.Sprintf("racer %d", i), err)
	}

	// No lost or doubled increments: the callers saw 1..racers, each once.
	sorted := slices.Sorted(slices.Values(counts))
	for i, n := range sorted {
		if n != i+1 {
			t.Fatalf("counts seen by racers = %v, want 1..%d each once", sorted, racers)
		}
	}
	wantLock := at.Add(lockFor)
	for i, n := range counts {
		if n >= threshold {
			wantSame(t, fmt.Sprintf("lock returned with count %d", n), locks[i], &wantLock)
		} else {
			wantSame(t, fmt.Sprintf("lock returned with count %d", n), locks[i], (*time.Time)(nil))
		}
	}
	got, err := s.Users().Get(t.Context(), u.ID)
	must(t, "get", err)
	if got.FailedLogins != racers {
		t.Fatalf("stored count = %d, want %d", got.FailedLogins, racers)
	}
	wantSame(t, "stored lock", got.LockedUntil, &wantLock)
}

func testRaceCreateSameEmail(t *testing.T, s storage.Store) {
	for round := range rounds {
		errs := race(func(i int) error {
			email := fmt.Sprintf("race%d@example.com", round)
			if i%2 == 1 {
				email = fmt.Sprintf("Race%d@Example.COM", round)
			}
			return s.Users().Create(t.Context(), &storage.User{ID: fmt.Sprintf("usr_race_%d_%d", round, i), Email: email})
		})
		wantOneWinner(t, errs, storage.ErrAlreadyExists)
	}
	all, err := s.Users().List(t.Context(), 0, 0)
	must(t, "list", err)
	if len(all) != rounds {
		t.Fatalf("%d users stored, want %d (one per round)", len(all), rounds)
	}
}

// testRaceTransactions checks that concurrent writing transactions queue
// rather than fail (on SQLite, BEGIN IMMEDIATE plus the busy timeout).
func testRaceTransactions(t *testing.T, s storage.Store) {
	errs := race(func(i int) error {
		return s.InTx(t.Context(), func(tx storage.Store) error {
			id := fmt.Sprintf("usr_tx_%d", i)
			if err := tx.Users().Create(t.Context(), &storage.User{ID: id, Email: id + "@example.com"}); err != nil {
				return err
			}
			return tx.Events().Append(t.Context(), &storage.Event{Type: "user.created", Subject: id})
		})
	})
	for i, err := range errs {
		must(t, fmt.Sprintf("racer %d", i), err)
	}
	events, err := s.Events().Pending(t.Context(), 0)
	must(t, "pending", err)
	if len(events) != racers {
		t.Fatalf("%d events, want %d", len(events), racers)
	}
}
