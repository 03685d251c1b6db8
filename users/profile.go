package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// UpdateUserInput changes profile fields; nil fields are left alone. An
// empty Image removes the picture. The email is not changed here: changing
// it needs a verified flow of its own.
type UpdateUserInput struct {
	Name  *string
	Image *string
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, userID string) (storage.User, error) {
	return found(s.store.Users().Get(ctx, userID))
}

// found translates a store lookup into the domain's answer.
func found(u *storage.User, err error) (storage.User, error) {
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, ErrUserNotFound
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("load user: %w", err)
	}
	return *u, nil
}

// UpdateUser changes a user's profile.
func (s *Service) UpdateUser(ctx context.Context, userID string, in UpdateUserInput) (storage.User, error) {
	if in.Name != nil {
		n, err := checkName(*in.Name)
		if err != nil {
			return storage.User{}, err
		}
		in.Name = &n
	}
	if err := checkImage(in.Image); err != nil {
		return storage.User{}, err
	}
	now := s.now()
	var out storage.User
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		u, err := tx.Users().Get(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrUserNotFound
		}
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		changed := []string{}
		if in.Name != nil && *in.Name != u.Name {
			u.Name = *in.Name
			changed = append(changed, "name")
		}
		if in.Image != nil {
			var img *string
			if *in.Image != "" {
				v := *in.Image
				img = &v
			}
			if (img == nil) != (u.Image == nil) || (img != nil && *img != *u.Image) {
				u.Image = img
				changed = append(changed, "image")
			}
		}
		out = *u
		if len(changed) == 0 {
			return nil
		}
		u.UpdatedAt = now
		out = *u
		if err := tx.Users().Update(ctx, u); err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		return emit(ctx, tx, EventUserUpdated, u.ID, map[string]any{"userId": u.ID, "changed": changed}, now)
	})
	if err == nil {
		s.cache.invalidateUser(userID)
	}
	return out, err
}

// CreateUserInput is an administrative user creation (CLI, admin API).
type CreateUserInput struct {
	Email         string
	Name          string
	Password      string // optional; empty creates a user without a password
	EmailVerified bool
}

// CreateUser creates a user without signing in. The password, when given,
// must meet the same policy as at sign-up.
func (s *Service) CreateUser(ctx context.Context, in CreateUserInput) (storage.User, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return storage.User{}, err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return storage.User{}, err
	}
	var hash *string
	if in.Password != "" {
		if err := s.cfg.Policy.Check(in.Password, email); err != nil {
			return storage.User{}, err
		}
		h, err := s.cfg.Hasher.Hash(ctx, in.Password)
		if err != nil {
			return storage.User{}, fmt.Errorf("hash password: %w", err)
		}
		hash = &h
	}
	now := s.now()
	u := storage.User{ID: newUserID(), Email: email, Name: name, EmailVerified: in.EmailVerified, CreatedAt: now, UpdatedAt: now}
	err = s.store.InTx(ctx, func(tx storage.Store) error { return s.insertUser(ctx, tx, &u, hash, now) })
	return u, err
}

// ListUsers pages through users in creation order.
func (s *Service) ListUsers(ctx context.Context, limit, offset int) ([]storage.User, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if offset < 0 {
		offset = 0
	}
	us, err := s.store.Users().List(ctx, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// DeleteUser removes a user with their accounts and sessions.
func (s *Service) DeleteUser(ctx context.Context, userID string) error {
	now := s.now()
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		u, err := tx.Users().Get(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrUserNotFound
		}
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		// OAuth grants are not tied to the user row by a foreign key (client
		// credentials grants have no user): end them explicitly.
		if _, err := tx.OAuthTokens().DeactivateSubject(ctx, userID); err != nil {
			return fmt.Errorf("revoke oauth grants: %w", err)
		}
		if err := tx.Users().Delete(ctx, userID); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		return emit(ctx, tx, EventUserDeleted, userID, map[string]any{"userId": userID, "email": u.Email}, now)
	})
	if err == nil {
		s.cache.invalidateUser(userID)
	}
	return err
}

// FindUserByEmail looks a user up by address.
func (s *Service) FindUserByEmail(ctx context.Context, email string) (storage.User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return storage.User{}, err
	}
	return found(s.store.Users().GetByEmail(ctx, e))
}

func newUserID() string { return id.New("usr") }
