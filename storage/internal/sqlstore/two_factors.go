package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/storage"
)

type twoFactors struct{ s *Store }

const twoFactorColumns = `user_id, secret, enabled, last_step, created_at, updated_at`

func twoFactorFields(t *storage.TwoFactor) []any {
	return []any{&t.UserID, &t.Secret, &t.Enabled, &t.LastStep, &t.CreatedAt, &t.UpdatedAt}
}

func (r twoFactors) Get(ctx context.Context, userID string) (*storage.TwoFactor, error) {
	var t storage.TwoFactor
	err := r.s.get(ctx, "two_factors.get",
		`SELECT `+twoFactorColumns+` FROM kavach_two_factor WHERE user_id = ?`, []any{userID}, twoFactorFields(&t)...)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Put replaces a pending enrolment but never an enabled authenticator: the
// upsert's WHERE skips the update then, and no row comes back.
func (r twoFactors) Put(ctx context.Context, t *storage.TwoFactor) error {
	n := now()
	stamp(&t.CreatedAt, n)
	stamp(&t.UpdatedAt, n)
	var userID string
	err := r.s.get(ctx, "two_factors.put",
		`INSERT INTO kavach_two_factor AS t (`+twoFactorColumns+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, enabled = excluded.enabled,
			last_step = excluded.last_step, created_at = excluded.created_at, updated_at = excluded.updated_at
		WHERE NOT t.enabled
		RETURNING user_id`,
		[]any{t.UserID, t.Secret, false, int64(0), t.CreatedAt, t.UpdatedAt}, &userID)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("storage: two_factors.put: enabled already: %w", storage.ErrAlreadyExists)
	}
	return err
}

func (r twoFactors) Enable(ctx context.Context, userID string, step int64, now time.Time) error {
	return r.s.execOne(ctx, "two_factors.enable",
		`UPDATE kavach_two_factor SET enabled = ?, last_step = ?, updated_at = ? WHERE user_id = ? AND NOT enabled`,
		true, step, now, userID)
}

func (r twoFactors) UseStep(ctx context.Context, userID string, step int64, now time.Time) (bool, error) {
	n, err := r.s.exec(ctx, "two_factors.use_step",
		`UPDATE kavach_two_factor SET last_step = ?, updated_at = ? WHERE user_id = ? AND last_step < ?`,
		step, now, userID, step)
	return n > 0, err
}

func (r twoFactors) Delete(ctx context.Context, userID string) error {
	if _, err := r.s.exec(ctx, "two_factors.delete_codes", `DELETE FROM kavach_backup_code WHERE user_id = ?`, userID); err != nil {
		return err
	}
	_, err := r.s.exec(ctx, "two_factors.delete", `DELETE FROM kavach_two_factor WHERE user_id = ?`, userID)
	return err
}

func (r twoFactors) ReplaceBackupCodes(ctx context.Context, userID string, hashes []string, now time.Time) error {
	return r.s.InTx(ctx, func(tx storage.Store) error {
		s := tx.(*Store)
		if _, err := s.exec(ctx, "two_factors.drop_codes", `DELETE FROM kavach_backup_code WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := s.exec(ctx, "two_factors.add_code",
				`INSERT INTO kavach_backup_code (user_id, code_hash, created_at) VALUES (?, ?, ?)`, userID, h, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r twoFactors) UseBackupCode(ctx context.Context, userID, hash string, now time.Time) (bool, error) {
	n, err := r.s.exec(ctx, "two_factors.use_code",
		`UPDATE kavach_backup_code SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`,
		now, userID, hash)
	return n > 0, err
}

func (r twoFactors) CountBackupCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := r.s.get(ctx, "two_factors.count_codes",
		`SELECT COUNT(*) FROM kavach_backup_code WHERE user_id = ? AND used_at IS NULL`, []any{userID}, &n)
	return n, err
}
