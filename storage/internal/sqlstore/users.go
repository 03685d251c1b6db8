package sqlstore

import (
	"context"

	"github.com/kavachos/kavach/storage"
)

type users struct{ s *Store }

const userColumns = `id, email, name, email_verified, image, created_at, updated_at`

func userFields(u *storage.User) []any {
	return []any{&u.ID, &u.Email, &u.Name, &u.EmailVerified, &u.Image, &u.CreatedAt, &u.UpdatedAt}
}

// Create inserts u, setting zero CreatedAt and UpdatedAt to now.
func (r users) Create(ctx context.Context, u *storage.User) error {
	t := now()
	stamp(&u.CreatedAt, t)
	stamp(&u.UpdatedAt, t)
	_, err := r.s.exec(ctx, "users.create",
		`INSERT INTO kavach_user (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, u.EmailVerified, u.Image, u.CreatedAt, u.UpdatedAt)
	return err
}

func (r users) Get(ctx context.Context, id string) (*storage.User, error) {
	var u storage.User
	err := r.s.get(ctx, "users.get",
		`SELECT `+userColumns+` FROM kavach_user WHERE id = ?`, []any{id}, userFields(&u)...)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// GetByEmail matches lower(email), which the unique index covers.
func (r users) GetByEmail(ctx context.Context, email string) (*storage.User, error) {
	var u storage.User
	err := r.s.get(ctx, "users.get_by_email",
		`SELECT `+userColumns+` FROM kavach_user WHERE lower(email) = lower(?)`, []any{email}, userFields(&u)...)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Update writes Email, Name, EmailVerified, Image and UpdatedAt (now when
// zero).
func (r users) Update(ctx context.Context, u *storage.User) error {
	stamp(&u.UpdatedAt, now())
	return r.s.execOne(ctx, "users.update",
		`UPDATE kavach_user SET email = ?, name = ?, email_verified = ?, image = ?, updated_at = ? WHERE id = ?`,
		u.Email, u.Name, u.EmailVerified, u.Image, u.UpdatedAt, u.ID)
}

// Delete removes the user; foreign keys cascade to the dependent rows.
func (r users) Delete(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "users.delete", `DELETE FROM kavach_user WHERE id = ?`, id)
}

func (r users) List(ctx context.Context, limit, offset int) ([]storage.User, error) {
	return list(ctx, r.s, "users.list",
		`SELECT `+userColumns+` FROM kavach_user ORDER BY created_at, id LIMIT ? OFFSET ?`,
		[]any{limitOrAll(limit), max(offset, 0)}, userFields)
}

// Lock is a no-op UPDATE: it takes the row lock on PostgreSQL, and SQLite
// serializes write transactions anyway.
func (r users) Lock(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "users.lock", `UPDATE kavach_user SET updated_at = updated_at WHERE id = ?`, id)
}
