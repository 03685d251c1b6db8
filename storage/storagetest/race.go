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
	{"Claim", testRaceClaim},
	{"CreateSameEmail", testRaceCreateSameEmail},
	{"Transactions", testRaceTransactions},
	{"DeactivateOnce", testRaceDeactivateOnce},
	{"RetireOnce", testRaceRetireOnce},
	{"UsageCap", testRaceUsageCap},
}

// errLost is what a racer returns when the store told it another racer won.
var errLost = errors.New("storagetest: lost the race")

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

// testRaceClaim checks that concurrent claims let exactly threshold
// attempts through before the lock: no lost increments, no two callers
// both taking the last allowed attempt.
func testRaceClaim(t *testing.T, s storage.Store) {
	const threshold, lockFor = 5, 10 * time.Minute
	key := newID("key")
	for round := range rounds {
		at := now()
		wantLock := at.Add(lockFor)
		allowed := make([]bool, racers)
		counts := make([]int, racers)
		locks := make([]*time.Time, racers)
		errs := race(func(i int) error {
			var err error
			allowed[i], counts[i], locks[i], err = s.LoginAttempts().Claim(t.Context(), key, at, threshold, lockFor)
			return err
		})
		var allowedCounts []int
		for i, err := range errs {
			must(t, fmt.Sprintf("round %d: racer %d", round, i), err)
			what := fmt.Sprintf("round %d: racer %d (allowed %v, count %d): lock", round, i, allowed[i], counts[i])
			switch {
			case !allowed[i]:
				wantSame(t, what, locks[i], &wantLock)
			case counts[i] == threshold:
				allowedCounts = append(allowedCounts, counts[i])
				wantSame(t, what, locks[i], &wantLock)
			default:
				allowedCounts = append(allowedCounts, counts[i])
				wantSame(t, what, locks[i], (*time.Time)(nil))
			}
		}
		// The allowed callers saw 1..threshold, each once.
		slices.Sort(allowedCounts)
		if want := []int{1, 2, 3, 4, 5}; !slices.Equal(allowedCounts, want) {
			t.Fatalf("round %d: allowed claims saw counts %v, want %v", round, allowedCounts, want)
		}
		count, lock, err := s.LoginAttempts().Get(t.Context(), key)
		must(t, "get", err)
		if count != threshold {
			t.Fatalf("round %d: stored count = %d, want %d", round, count, threshold)
		}
		wantSame(t, fmt.Sprintf("round %d: stored lock", round), lock, &wantLock)
		must(t, "reset", s.LoginAttempts().Reset(t.Context(), key))
	}
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

// testRaceDeactivateOnce checks what single-use codes and refresh rotation
// rely on: of concurrent Deactivate calls on one row, exactly one gets true.
func testRaceDeactivateOnce(t *testing.T, s storage.Store) {
	c := createOAuthClient(t, s)
	for range rounds {
		x := createOAuthToken(t, s, c.ID, storage.TokenKindCode, newID("req"), now().Add(time.Minute))
		errs := race(func(int) error {
			ok, err := s.OAuthTokens().Deactivate(t.Context(), x.Kind, x.Signature)
			if err == nil && !ok {
				return errLost
			}
			return err
		})
		wantOneWinner(t, errs, errLost)
	}
}

// testRaceRetireOnce checks that concurrent rotations retire a key once,
// so its expiry is the one the winner chose.
func testRaceRetireOnce(t *testing.T, s storage.Store) {
	for round := range rounds {
		k := createSigningKey(t, s, fmt.Sprintf("kid_race_%d", round), now(), nil)
		at := now()
		expires := make([]time.Time, racers)
		errs := race(func(i int) error {
			expires[i] = at.Add(time.Duration(i+1) * time.Hour)
			ok, err := s.SigningKeys().Retire(t.Context(), k.KID, at, expires[i])
			if err == nil && !ok {
				return errLost
			}
			return err
		})
		wantOneWinner(t, errs, errLost)
		winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		wantSame(t, fmt.Sprintf("round %d: stored expiry", round), listKey(t, s, k.KID, at).ExpiresAt, &expires[winner])
	}
}
