package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type accounts struct{ s *Store }

const accountColumns = `id, user_id, provider_id, provider_account_id, access_token, refresh_token, password,
	id_token, access_token_expires_at, scope, email, created_at, updated_at`

func accountFields(a *storage.Account) []any {
	return []any{&a.ID, &a.UserID, &a.ProviderID, &a.ProviderAccountID,
		&a.AccessToken, &a.RefreshToken, &a.Password,
		&a.IDToken, &a.AccessTokenExpiresAt, &a.Scope, &a.Email, &a.CreatedAt, &a.UpdatedAt}
}

// Create inserts a, setting zero CreatedAt and UpdatedAt to now.
func (r accounts) Create(ctx context.Context, a *storage.Account) error {
	t := now()
	stamp(&a.CreatedAt, t)
	stamp(&a.UpdatedAt, t)
	_, err := r.s.exec(ctx, "accounts.create",
		`INSERT INTO kavach_account (`+accountColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.UserID, a.ProviderID, a.ProviderAccountID,
		a.AccessToken, a.RefreshToken, a.Password,
		a.IDToken, a.AccessTokenExpiresAt, a.Scope, a.Email, a.CreatedAt, a.UpdatedAt)
	return err
}

func (r accounts) GetByProvider(ctx context.Context, providerID, providerAccountID string) (*storage.Account, error) {
	var a storage.Account
	err := r.s.get(ctx, "accounts.get_by_provider",
		`SELECT `+accountColumns+` FROM kavach_account WHERE provider_id = ? AND provider_account_id = ?`,
		[]any{providerID, providerAccountID}, accountFields(&a)...)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// GetCredential returns the user's password account. It matches on user_id
// rather than assuming provider_account_id = user id, so a row imported
// under another convention is still found.
func (r accounts) GetCredential(ctx context.Context, userID string) (*storage.Account, error) {
	var a storage.Account
	err := r.s.get(ctx, "accounts.get_credential",
		`SELECT `+accountColumns+` FROM kavach_account WHERE user_id = ? AND provider_id = ?
		ORDER BY created_at, id LIMIT 1`,
		[]any{userID, storage.ProviderCredential}, accountFields(&a)...)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (r accounts) ListByUser(ctx context.Context, userID string) ([]storage.Account, error) {
	return list(ctx, r.s, "accounts.list_by_user",
		`SELECT `+accountColumns+` FROM kavach_account WHERE user_id = ? ORDER BY created_at, id`,
		[]any{userID}, accountFields)
}

func (r accounts) UpdatePassword(ctx context.Context, userID, hash string, now time.Time) error {
	return r.s.execOne(ctx, "accounts.update_password",
		`UPDATE kavach_account SET password = ?, updated_at = ? WHERE user_id = ? AND provider_id = ?`,
		hash, now, userID, storage.ProviderCredential)
}

// ReplacePassword is a compare-and-swap on the stored hash.
func (r accounts) ReplacePassword(ctx context.Context, userID, old, new string, now time.Time) (bool, error) {
	n, err := r.s.exec(ctx, "accounts.replace_password",
		`UPDATE kavach_account SET password = ?, updated_at = ? WHERE user_id = ? AND provider_id = ? AND password = ?`,
		new, now, userID, storage.ProviderCredential, old)
	return n > 0, err
}

func (r accounts) Delete(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "accounts.delete", `DELETE FROM kavach_account WHERE id = ?`, id)
}

// UpdateTokens stores what a provider said at a sign-in: the tokens, their
// expiry, the scopes and the email.
func (r accounts) UpdateTokens(ctx context.Context, a *storage.Account) error {
	return r.s.execOne(ctx, "accounts.update_tokens",
		`UPDATE kavach_account SET access_token = ?, refresh_token = ?, id_token = ?,
		access_token_expires_at = ?, scope = ?, email = ?, updated_at = ? WHERE id = ?`,
		a.AccessToken, a.RefreshToken, a.IDToken, a.AccessTokenExpiresAt, a.Scope, a.Email, a.UpdatedAt, a.ID)
}
