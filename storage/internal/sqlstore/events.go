package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type events struct{ s *Store }

// Append stores e and sets e.ID; a zero CreatedAt becomes now and an empty
// Payload becomes {}. The payload is kept as text, byte for byte, so a
// signature computed over it stays valid.
func (r events) Append(ctx context.Context, e *storage.Event) error {
	stamp(&e.CreatedAt, now())
	if len(e.Payload) == 0 {
		e.Payload = []byte("{}")
	}
	return r.s.get(ctx, "events.append",
		`INSERT INTO kavach_event (type, subject, payload, created_at, delivered_at, attempts)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		[]any{e.Type, e.Subject, string(e.Payload), e.CreatedAt, e.DeliveredAt, e.Attempts}, &e.ID)
}

// pendingEvent scans the payload as text, which both drivers can do, and
// converts it afterwards.
type pendingEvent struct {
	storage.Event
	payload string
}

func (r events) Pending(ctx context.Context, limit int) ([]storage.Event, error) {
	rows, err := list(ctx, r.s, "events.pending",
		`SELECT id, type, subject, payload, created_at, delivered_at, attempts FROM kavach_event
		WHERE delivered_at IS NULL ORDER BY id LIMIT ?`,
		[]any{limitOrAll(limit)}, func(e *pendingEvent) []any {
			return []any{&e.ID, &e.Type, &e.Subject, &e.payload, &e.CreatedAt, &e.DeliveredAt, &e.Attempts}
		})
	if err != nil {
		return nil, err
	}
	out := make([]storage.Event, len(rows))
	for i, e := range rows {
		out[i] = e.Event
		out[i].Payload = []byte(e.payload)
	}
	return out, nil
}

func (r events) MarkDelivered(ctx context.Context, id int64, now time.Time) error {
	return r.s.execOne(ctx, "events.mark_delivered",
		`UPDATE kavach_event SET delivered_at = ? WHERE id = ?`, now, id)
}

func (r events) MarkFailed(ctx context.Context, id int64) error {
	return r.s.execOne(ctx, "events.mark_failed",
		`UPDATE kavach_event SET attempts = attempts + 1 WHERE id = ?`, id)
}
