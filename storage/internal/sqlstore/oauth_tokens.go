package sqlstore

import (
	"context"
	"time"

	"github.com/kavachos/kavach/storage"
)

type oauthTokens struct{ s *Store }

const oauthTokenColumns = `kind, signature, request_id, client_id, subject, active, requested_at, expires_at, data`

// oauthTokenRow scans the data as text, which both drivers can do, and
// converts it afterwards.
type oauthTokenRow struct {
	storage.OAuthToken
	data string
}

func oauthTokenFields(x *oauthTokenRow) []any {
	return []any{&x.Kind, &x.Signature, &x.RequestID, &x.ClientID, &x.Subject, &x.Active,
		&x.RequestedAt, &x.ExpiresAt, &x.data}
}

// Create inserts x, setting a zero RequestedAt to now. The data is stored
// as text, byte for byte: text that is not valid UTF-8 is refused with
// storage.ErrInvalidValue.
func (r oauthTokens) Create(ctx context.Context, x *storage.OAuthToken) error {
	stamp(&x.RequestedAt, now())
	_, err := r.s.exec(ctx, "oauth_tokens.create",
		`INSERT INTO kavach_oauth_token (`+oauthTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		x.Kind, x.Signature, x.RequestID, x.ClientID, x.Subject, x.Active, x.RequestedAt, x.ExpiresAt, string(x.Data))
	return err
}

func (r oauthTokens) Get(ctx context.Context, kind, signature string) (*storage.OAuthToken, error) {
	var row oauthTokenRow
	err := r.s.get(ctx, "oauth_tokens.get",
		`SELECT `+oauthTokenColumns+` FROM kavach_oauth_token WHERE kind = ? AND signature = ?`,
		[]any{kind, signature}, oauthTokenFields(&row)...)
	if err != nil {
		return nil, err
	}
	x := row.OAuthToken
	x.Data = []byte(row.data)
	return &x, nil
}

func (r oauthTokens) Delete(ctx context.Context, kind, signature string) error {
	return r.s.execOne(ctx, "oauth_tokens.delete",
		`DELETE FROM kavach_oauth_token WHERE kind = ? AND signature = ?`, kind, signature)
}

// Deactivate is one conditional UPDATE: of concurrent callers, only the
// one whose statement flips the flag sees a changed row. A row that does
// not exist was not active either, so it reports false rather than
// ErrNotFound.
func (r oauthTokens) Deactivate(ctx context.Context, kind, signature string) (bool, error) {
	n, err := r.s.exec(ctx, "oauth_tokens.deactivate",
		`UPDATE kavach_oauth_token SET active = ? WHERE kind = ? AND signature = ? AND active = ?`,
		false, kind, signature, true)
	return n > 0, err
}

// DeactivateRequest counts only rows that were still active.
func (r oauthTokens) DeactivateRequest(ctx context.Context, kind, requestID string) (int, error) {
	n, err := r.s.exec(ctx, "oauth_tokens.deactivate_request",
		`UPDATE kavach_oauth_token SET active = ? WHERE kind = ? AND request_id = ? AND active = ?`,
		false, kind, requestID, true)
	return int(n), err
}

func (r oauthTokens) DeactivateSubject(ctx context.Context, subject string) (int, error) {
	if subject == "" {
		return 0, nil // client_credentials rows have no subject; never all of them
	}
	n, err := r.s.exec(ctx, "oauth_tokens.deactivate_subject",
		`UPDATE kavach_oauth_token SET active = ? WHERE subject = ? AND active = ?`, false, subject, true)
	return int(n), err
}

func (r oauthTokens) DeactivateClient(ctx context.Context, clientID string) (int, error) {
	n, err := r.s.exec(ctx, "oauth_tokens.deactivate_client",
		`UPDATE kavach_oauth_token SET active = ? WHERE client_id = ? AND active = ?`, false, clientID, true)
	return int(n), err
}

func (r oauthTokens) DeleteRequest(ctx context.Context, kind, requestID string) (int, error) {
	n, err := r.s.exec(ctx, "oauth_tokens.delete_request",
		`DELETE FROM kavach_oauth_token WHERE kind = ? AND request_id = ?`, kind, requestID)
	return int(n), err
}

func (r oauthTokens) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	n, err := r.s.exec(ctx, "oauth_tokens.delete_expired",
		`DELETE FROM kavach_oauth_token WHERE expires_at <= ?`, before)
	return int(n), err
}
