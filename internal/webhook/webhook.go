// Package webhook delivers outbox events to an HTTP endpoint, signed as
// the Standard Webhooks specification says (standardwebhooks.com): the
// headers webhook-id, webhook-timestamp and webhook-signature, where the
// signature is "v1," followed by the base64 HMAC-SHA256, under the shared
// secret, of "{id}.{timestamp}.{body}". A secret written "whsec_<base64>"
// is the base64-decoded key (the spec's format, which its libraries
// expect); any other secret is used as its bytes.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kavachos/kavach/storage"
)

// Sender posts events to one URL.
type Sender struct {
	url    string
	key    []byte
	client *http.Client
	now    func() time.Time
}

// MinSecretBytes is the shortest key accepted.
const MinSecretBytes = 24

// New checks the URL (absolute http or https; plain http only when
// allowHTTP) and the secret, and returns a Sender with a 10-second timeout
// that does not follow redirects.
func New(rawURL, secret string, allowHTTP bool, now func() time.Time) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(allowHTTP && u.Scheme == "http")) || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("webhook: URL %q must be an absolute https URL (http only in development), without credentials or fragment", rawURL)
	}
	key, err := Key(secret)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Sender{url: u.String(), key: key, now: now, client: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Key is the HMAC key of a secret: base64 after "whsec_", else its bytes.
func Key(secret string) ([]byte, error) {
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(rest); err != nil {
			return nil, errors.New("webhook: a whsec_ secret must be base64 after the prefix")
		}
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("webhook: the secret must hold at least %d bytes", MinSecretBytes)
	}
	return key, nil
}

// Body is what is posted for an event.
type Body struct {
	ID        string          `json:"id"`   // "evt_" and the outbox id: the same on every retry
	Type      string          `json:"type"` // e.g. "approval.requested"
	Subject   string          `json:"subject"`
	CreatedAt time.Time       `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

// EventID is the webhook-id of an outbox event.
func EventID(e storage.Event) string { return "evt_" + strconv.FormatInt(e.ID, 10) }

// Sign is the webhook-signature value for a message.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, timestamp)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Send posts e and reports an error unless the endpoint answered 2xx; the
// outbox then retries it (at least once delivery: receivers deduplicate by
// webhook-id).
func (s *Sender) Send(ctx context.Context, e storage.Event) error {
	data := json.RawMessage(e.Payload)
	if len(data) == 0 || !json.Valid(data) {
		data = json.RawMessage("{}")
	}
	body, err := json.Marshal(Body{ID: EventID(e), Type: e.Type, Subject: e.Subject, CreatedAt: e.CreatedAt.UTC(), Data: data})
	if err != nil {
		return fmt.Errorf("webhook: encode event %d: %w", e.ID, err)
	}
	if err := s.Post(ctx, EventID(e), "kavach-webhooks", body); err != nil {
		return fmt.Errorf("webhook: deliver event %d: %w", e.ID, err)
	}
	return nil
}

// Post sends body, signed under id, and reports an error unless the
// endpoint answered 2xx. Errors name the endpoint's host, never its URL
// (whose query may carry a token): they are logged.
func (s *Sender) Post(ctx context.Context, id, userAgent string, body []byte) error {
	ts := s.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(s.key, id, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("to %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}
