package storagetest

import (
	"errors"
	"testing"

	"github.com/kavachos/kavach/storage"
)

var txTests = []test{
	{"Commit", testTxCommit},
	{"RollbackOnError", testTxRollbackOnError},
	{"RollbackOnPanic", testTxRollbackOnPanic},
	{"NestedJoinsOuter", testTxNested},
	{"ReadsOwnWrites", testTxReadsOwnWrites},
}

var errAbort = errors.New("storagetest: abort")

// writeUserAndEvent creates a user and its user.created event through tx,
// as a domain service does.
func writeUserAndEvent(t *testing.T, tx storage.Store) *storage.User {
	t.Helper()
	u := createUser(t, tx)
	e := &storage.Event{Type: "user.created", Subject: u.ID, Payload: []byte(`{}`)}
	must(t, "append in tx", tx.Events().Append(t.Context(), e))
	return u
}

// wantNoTrace fails the test if the user or any event exists.
func wantNoTrace(t *testing.T, s storage.Store, u *storage.User) {
	t.Helper()
	_, err := s.Users().Get(t.Context(), u.ID)
	wantErr(t, "user of rolled-back tx", err, storage.ErrNotFound)
	events, err := s.Events().Pending(t.Context(), 10)
	must(t, "pending", err)
	if len(events) != 0 {
		t.Fatalf("rolled-back tx left %d events", len(events))
	}
}

func testTxCommit(t *testing.T, s storage.Store) {
	var u *storage.User
	err := s.InTx(t.Context(), func(tx storage.Store) error {
		u = writeUserAndEvent(t, tx)
		return nil
	})
	must(t, "in tx", err)
	_, err = s.Users().Get(t.Context(), u.ID)
	must(t, "get committed user", err)
	events, err := s.Events().Pending(t.Context(), 10)
	must(t, "pending", err)
	if len(events) != 1 || events[0].Subject != u.ID {
		t.Fatalf("committed tx left events %s", render(events))
	}
}

func testTxRollbackOnError(t *testing.T, s storage.Store) {
	var u *storage.User
	err := s.InTx(t.Context(), func(tx storage.Store) error {
		u = writeUserAndEvent(t, tx)
		return errAbort
	})
	wantErr(t, "in tx", err, errAbort)
	wantNoTrace(t, s, u)
}

func testTxRollbackOnPanic(t *testing.T, s storage.Store) {
	var u *storage.User
	func() {
		defer func() {
			if r := recover(); r != errAbort {
				t.Fatalf("recovered %v, want the callback's panic", r)
			}
		}()
		_ = s.InTx(t.Context(), func(tx storage.Store) error {
			u = writeUserAndEvent(t, tx)
			panic(errAbort)
		})
	}()
	wantNoTrace(t, s, u)
	// The connection went back to the pool usable.
	createUser(t, s)
}

func testTxNested(t *testing.T, s storage.Store) {
	ctx := t.Context()
	var inner *storage.User
	err := s.InTx(ctx, func(tx storage.Store) error {
		if err := tx.InTx(ctx, func(tx storage.Store) error {
			inner = writeUserAndEvent(t, tx)
			return nil
		}); err != nil {
			return err
		}
		return errAbort // the inner "commit" is part of the outer transaction
	})
	wantErr(t, "outer tx", err, errAbort)
	wantNoTrace(t, s, inner)

	err = s.InTx(ctx, func(tx storage.Store) error {
		return tx.InTx(ctx, func(tx storage.Store) error {
			inner = writeUserAndEvent(t, tx)
			return nil
		})
	})
	must(t, "nested commit", err)
	_, err = s.Users().Get(ctx, inner.ID)
	must(t, "get user of nested commit", err)
}

func testTxReadsOwnWrites(t *testing.T, s storage.Store) {
	ctx := t.Context()
	err := s.InTx(ctx, func(tx storage.Store) error {
		u := createUser(t, tx)
		got, err := tx.Users().GetByEmail(ctx, u.Email)
		must(t, "get inside tx", err)
		wantSame(t, "get inside tx", got, u)
		return nil
	})
	must(t, "in tx", err)
}
