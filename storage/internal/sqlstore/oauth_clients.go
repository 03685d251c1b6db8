package sqlstore

import (
	"context"

	"github.com/kavachos/kavach/storage"
)

type oauthClients struct{ s *Store }

const oauthClientColumns = `id, secret_hash, registration_token_hash, source, metadata, created_at, updated_at`

// oauthClientRow scans the metadata as text, which both drivers can do, and
// converts it afterwards.
type oauthClientRow struct {
	storage.OAuthClient
	metadata string
}

func oauthClientFields(c *oauthClientRow) []any {
	return []any{&c.ID, &c.SecretHash, &c.RegistrationTokenHash, &c.Source, &c.metadata, &c.CreatedAt, &c.UpdatedAt}
}

func (c *oauthClientRow) record() storage.OAuthClient {
	out := c.OAuthClient
	out.Metadata = []byte(c.metadata)
	return out
}

// Create inserts c, setting zero CreatedAt and UpdatedAt to now. The
// metadata is stored as text, byte for byte: text that is not valid UTF-8
// is refused with storage.ErrInvalidValue.
func (r oauthClients) Create(ctx context.Context, c *storage.OAuthClient) error {
	t := now()
	stamp(&c.CreatedAt, t)
	stamp(&c.UpdatedAt, t)
	_, err := r.s.exec(ctx, "oauth_clients.create",
		`INSERT INTO kavach_oauth_client (`+oauthClientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.SecretHash, c.RegistrationTokenHash, c.Source, string(c.Metadata), c.CreatedAt, c.UpdatedAt)
	return err
}

func (r oauthClients) Get(ctx context.Context, id string) (*storage.OAuthClient, error) {
	var row oauthClientRow
	err := r.s.get(ctx, "oauth_clients.get",
		`SELECT `+oauthClientColumns+` FROM kavach_oauth_client WHERE id = ?`, []any{id}, oauthClientFields(&row)...)
	if err != nil {
		return nil, err
	}
	c := row.record()
	return &c, nil
}

// Update writes SecretHash, RegistrationTokenHash, Metadata and UpdatedAt
// (now when zero).
func (r oauthClients) Update(ctx context.Context, c *storage.OAuthClient) error {
	stamp(&c.UpdatedAt, now())
	return r.s.execOne(ctx, "oauth_clients.update",
		`UPDATE kavach_oauth_client SET secret_hash = ?, registration_token_hash = ?, metadata = ?, updated_at = ?
		WHERE id = ?`,
		c.SecretHash, c.RegistrationTokenHash, string(c.Metadata), c.UpdatedAt, c.ID)
}

// Delete removes the client; foreign keys cascade to its tokens and
// consents.
func (r oauthClients) Delete(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "oauth_clients.delete", `DELETE FROM kavach_oauth_client WHERE id = ?`, id)
}

func (r oauthClients) List(ctx context.Context, limit, offset int) ([]storage.OAuthClient, error) {
	rows, err := list(ctx, r.s, "oauth_clients.list",
		`SELECT `+oauthClientColumns+` FROM kavach_oauth_client ORDER BY created_at, id LIMIT ? OFFSET ?`,
		[]any{limitOrAll(limit), max(offset, 0)}, oauthClientFields)
	if err != nil {
		return nil, err
	}
	out := make([]storage.OAuthClient, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}
