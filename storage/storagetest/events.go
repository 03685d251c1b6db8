package storagetest

import (
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var eventTests = []test{
	{"AppendPending", testEventAppendPending},
	{"AppendEmptyPayload", testEventAppendEmptyPayload},
	{"PendingLimit", testEventPendingLimit},
	{"MarkDelivered", testEventMarkDelivered},
	{"MarkFailed", testEventMarkFailed},
}

func appendEvent(t testing.TB, s storage.Store, typ string) *storage.Event {
	t.Helper()
	e := &storage.Event{Type: typ, Subject: newID("usr"), Payload: []byte(`{"b": 1, "a": [true]}`), CreatedAt: now()}
	must(t, "append", s.Events().Append(t.Context(), e))
	return e
}

func testEventAppendPending(t *testing.T, s storage.Store) {
	ctx := t.Context()
	var want []storage.Event
	var last int64
	for _, typ := range []string{"user.created", "session.created", "user.updated"} {
		e := appendEvent(t, s, typ)
		if e.ID <= last {
			t.Fatalf("append %s: id %d not above previous %d", typ, e.ID, last)
		}
		last = e.ID
		want = append(want, *e)
	}
	got, err := s.Events().Pending(ctx, 10)
	must(t, "pending", err)
	// The payload comes back byte for byte: key order and spacing kept.
	wantSame(t, "pending", got, want)
	wantUTC(t, "pending", got[0].CreatedAt)
}

func testEventAppendEmptyPayload(t *testing.T, s storage.Store) {
	e := &storage.Event{Type: "user.deleted", Subject: "usr_1"}
	must(t, "append", s.Events().Append(t.Context(), e))
	if string(e.Payload) != "{}" || e.CreatedAt.IsZero() {
		t.Fatalf("append left payload %q, created %v; want {} and now", e.Payload, e.CreatedAt)
	}
	got, err := s.Events().Pending(t.Context(), 1)
	must(t, "pending", err)
	wantSame(t, "pending", got, []storage.Event{*e})
}

func testEventPendingLimit(t *testing.T, s storage.Store) {
	first, second := appendEvent(t, s, "a"), appendEvent(t, s, "b")
	appendEvent(t, s, "c")
	got, err := s.Events().Pending(t.Context(), 2)
	must(t, "pending", err)
	wantSame(t, "pending", got, []storage.Event{*first, *second})
}

func testEventMarkDelivered(t *testing.T, s storage.Store) {
	ctx := t.Context()
	delivered, pending := appendEvent(t, s, "a"), appendEvent(t, s, "b")
	must(t, "mark delivered", s.Events().MarkDelivered(ctx, delivered.ID, now()))
	got, err := s.Events().Pending(ctx, 10)
	must(t, "pending", err)
	wantSame(t, "pending", got, []storage.Event{*pending})
	wantErr(t, "mark delivered missing", s.Events().MarkDelivered(ctx, pending.ID+1000, now()), storage.ErrNotFound)
}

func testEventMarkFailed(t *testing.T, s storage.Store) {
	ctx := t.Context()
	e := appendEvent(t, s, "a")
	for range 2 {
		must(t, "mark failed", s.Events().MarkFailed(ctx, e.ID))
	}
	got, err := s.Events().Pending(ctx, 10)
	must(t, "pending", err)
	e.Attempts = 2
	wantSame(t, "still pending with attempts", got, []storage.Event{*e})
	wantErr(t, "mark failed missing", s.Events().MarkFailed(ctx, e.ID+1000), storage.ErrNotFound)

	must(t, "deliver", s.Events().MarkDelivered(ctx, e.ID, now().Add(time.Second)))
	got, err = s.Events().Pending(ctx, 10)
	must(t, "pending", err)
	if len(got) != 0 {
		t.Fatalf("delivered event still pending: %v", render(got))
	}
}
