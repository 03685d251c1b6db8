package kavach_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/postgres"
	"github.com/kavachos/kavach/storage/storagetest"
)

// TestPasswordSignInOverlappingTakeoverTransactionIsRefused, found in review (it fails if the bug comes back): the password
// sign-in re-reads the credential inside its transaction, but on
// PostgreSQL (READ COMMITTED, a plain SELECT) that read does not wait
// for a takeover that has deleted the credential and the sessions and not
// committed yet: it sees the old password, inserts a session the
// takeover's DELETE never saw, and commits. The squatter keeps a session
// on the owner's account after the owner proved the address. The test
// holds the user row (FOR NO KEY UPDATE, which the session's foreign key
// does not wait for) so the owner's emailed-code sign-in stops just after
// dropUnprovenAccess, at "mark verified", and the squatter signs in
// meanwhile. SQLite transactions begin IMMEDIATE and cannot overlap.
func TestPasswordSignInOverlappingTakeoverTransactionIsRefused(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		url := os.Getenv(storagetest.EnvPostgresURL)
		if !strings.HasSuffix(t.Name(), "/postgres") || url == "" {
			t.Skip("SQLite write transactions are serialized (BEGIN IMMEDIATE): they cannot overlap")
		}
		ctx := t.Context()
		conn := storagetest.PostgresSchema(t, url)
		store, err := postgres.Open(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		if _, err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		pool, err := pgxpool.New(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		e := newEnv(t, func(testing.TB) storage.Store { return store }, nil)

		squatter := e.client()
		d := squatter.signUp("ada@example.com") // not Ada: the address is unverified
		e.client().do("POST", "/api/auth/email-otp/send", map[string]any{"email": "ada@example.com"}).must(t, 200)
		code := e.waitMailCode("ada@example.com")

		lock, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held := true
		release := func() {
			if held {
				held = false
				_ = lock.Rollback(ctx)
			}
		}
		t.Cleanup(release)
		var lockPID int
		if err := lock.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&lockPID); err != nil {
			t.Fatal(err)
		}
		if _, err := lock.Exec(ctx, `SELECT 1 FROM kavach_user WHERE id = $1 FOR NO KEY UPDATE`, d.User.ID); err != nil {
			t.Fatal(err)
		}
		// waiting returns a backend that blocker blocks, or 0.
		waiting := func(blocker int) int {
			var pid int
			err := pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1`, blocker).Scan(&pid)
			if err != nil {
				return 0
			}
			return pid
		}

		ownerDone := make(chan *response, 1)
		go func() {
			ownerDone <- e.client().do("POST", "/api/auth/email-otp/verify", map[string]any{"email": "ada@example.com", "code": code})
		}()
		takeoverPID := 0
		for takeoverPID == 0 {
			select {
			case r := <-ownerDone:
				t.Fatalf("the takeover did not wait for the user row: %d %s", r.Status, r.Raw)
			case <-time.After(10 * time.Millisecond):
				takeoverPID = waiting(lockPID)
			}
		}

		// The takeover has deleted the password and the sessions, and not
		// committed. The squatter signs in now.
		later := e.client()
		laterDone := make(chan *response, 1)
		go func() { laterDone <- later.signIn("ada@example.com", goodPassword) }()
		var r *response
		for r == nil {
			select {
			case r = <-laterDone:
			case <-time.After(10 * time.Millisecond):
				if waiting(takeoverPID) != 0 {
					// The sign-in waits for the takeover (the audit chain):
					// let the takeover finish first.
					release()
				}
			}
		}
		release()
		(<-ownerDone).must(t, 200)
		r.mustError(t, 401, "INVALID_CREDENTIALS")
		if me := later.me(t); me != nil && me.User.ID == d.User.ID {
			t.Fatalf("the squatter's password sign-in, overlapping the owner's proof, left a session on the owner's account after it")
		}
	})
}
