package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kavachos/kavach/storage"
)

type oauthConsents struct{ s *Store }

const oauthConsentColumns = `user_id, client_id, resource, scopes, created_at, updated_at`

// oauthConsentRow scans the scopes as the stored space-separated text.
type oauthConsentRow struct {
	storage.OAuthConsent
	scopes string
}

func oauthConsentFields(c *oauthConsentRow) []any {
	return []any{&c.UserID, &c.ClientID, &c.Resource, &c.scopes, &c.CreatedAt, &c.UpdatedAt}
}

func (c *oauthConsentRow) record() storage.OAuthConsent {
	out := c.OAuthConsent
	out.Scopes = splitScopes(c.scopes)
	return out
}

// joinScopes returns scopes sorted, without duplicates, and their stored
// form. A scope that is empty or holds a space could not be split back
// out, so it is refused (RFC 6749 scope tokens never contain either).
func joinScopes(scopes []string) ([]string, string, error) {
	for _, sc := range scopes {
		if sc == "" || strings.Contains(sc, " ") {
			return nil, "", fmt.Errorf("scope is empty or contains a space: %w", storage.ErrInvalidValue)
		}
	}
	sorted := append(make([]string, 0, len(scopes)), scopes...)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	return sorted, strings.Join(sorted, " "), nil
}

func splitScopes(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, " ")
}

// Put inserts or replaces the consent, sorting and deduplicating
// c.Scopes; zero times become now. Replacing keeps the original CreatedAt
// (when the user first consented), which Put writes back into c.
func (r oauthConsents) Put(ctx context.Context, c *storage.OAuthConsent) error {
	scopes, stored, err := joinScopes(c.Scopes)
	if err != nil {
		return fmt.Errorf("storage: oauth_consents.put: %w", err)
	}
	t := now()
	stamp(&c.CreatedAt, t)
	stamp(&c.UpdatedAt, t)
	err = r.s.get(ctx, "oauth_consents.put",
		`INSERT INTO kavach_oauth_consent (`+oauthConsentColumns+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id, resource) DO UPDATE SET
			scopes = excluded.scopes, updated_at = excluded.updated_at
		RETURNING created_at`,
		[]any{c.UserID, c.ClientID, c.Resource, stored, c.CreatedAt, c.UpdatedAt}, &c.CreatedAt)
	if err != nil {
		return err
	}
	c.Scopes = scopes
	return nil
}

func (r oauthConsents) Get(ctx context.Context, userID, clientID, resource string) (*storage.OAuthConsent, error) {
	var row oauthConsentRow
	err := r.s.get(ctx, "oauth_consents.get",
		`SELECT `+oauthConsentColumns+` FROM kavach_oauth_consent WHERE user_id = ? AND client_id = ? AND resource = ?`,
		[]any{userID, clientID, resource}, oauthConsentFields(&row)...)
	if err != nil {
		return nil, err
	}
	c := row.record()
	return &c, nil
}

// ListByUser orders by CreatedAt, then client and resource.
func (r oauthConsents) ListByUser(ctx context.Context, userID string) ([]storage.OAuthConsent, error) {
	rows, err := list(ctx, r.s, "oauth_consents.list_by_user",
		`SELECT `+oauthConsentColumns+` FROM kavach_oauth_consent WHERE user_id = ?
		ORDER BY created_at, client_id, resource`,
		[]any{userID}, oauthConsentFields)
	if err != nil {
		return nil, err
	}
	out := make([]storage.OAuthConsent, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}

func (r oauthConsents) Delete(ctx context.Context, userID, clientID string) (int, error) {
	n, err := r.s.exec(ctx, "oauth_consents.delete",
		`DELETE FROM kavach_oauth_consent WHERE user_id = ? AND client_id = ?`, userID, clientID)
	return int(n), err
}

func (r oauthConsents) DeleteByClient(ctx context.Context, clientID string) (int, error) {
	n, err := r.s.exec(ctx, "oauth_consents.delete_by_client",
		`DELETE FROM kavach_oauth_consent WHERE client_id = ?`, clientID)
	return int(n), err
}
