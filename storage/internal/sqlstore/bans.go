package sqlstore

import (
	"context"

	"github.com/kavachos/kavach/storage"
)

type bans struct{ s *Store }

func (r bans) Put(ctx context.Context, b *storage.Ban) error {
	stamp(&b.CreatedAt, now())
	_, err := r.s.exec(ctx, "bans.put",
		`INSERT INTO kavach_user_ban (user_id, reason, until, banned_by, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, until = excluded.until,
			banned_by = excluded.banned_by, created_at = excluded.created_at`,
		b.UserID, b.Reason, b.Until, b.BannedBy, b.CreatedAt)
	return err
}

func (r bans) Get(ctx context.Context, userID string) (*storage.Ban, error) {
	var b storage.Ban
	err := r.s.get(ctx, "bans.get",
		`SELECT user_id, reason, until, banned_by, created_at FROM kavach_user_ban WHERE user_id = ?`,
		[]any{userID}, &b.UserID, &b.Reason, &b.Until, &b.BannedBy, &b.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

func (r bans) Delete(ctx context.Context, userID string) error {
	return r.s.execOne(ctx, "bans.delete", `DELETE FROM kavach_user_ban WHERE user_id = ?`, userID)
}
