package sms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kavachos/kavach/internal/webhook"
)

// Webhook posts each message as JSON {"to","text"} to the operator's
// endpoint, which relays it to an SMS provider. Requests are signed as
// event webhooks are (package webhook, the Standard Webhooks scheme):
// webhook-id, webhook-timestamp and webhook-signature = "v1," +
// base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
type Webhook struct {
	url    string
	key    []byte
	client *http.Client
	now    func() time.Time
}

var _ Sender = (*Webhook)(nil)

// WebhookTimeout bounds one delivery, connection to last byte.
const WebhookTimeout = 10 * time.Second

// WebhookBody is what the endpoint receives.
type WebhookBody struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// NewWebhook checks the URL (absolute https; plain http only when
// allowHTTP) and the secret (see webhook.Key). The client does not follow
// redirects: a redirect would carry the code somewhere else.
func NewWebhook(rawURL, secret string, allowHTTP bool, now func() time.Time) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(allowHTTP && u.Scheme == "http")) || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("sms webhook: URL must be an absolute https URL (http only in development), without credentials or fragment")
	}
	key, err := webhook.Key(secret)
	if err != nil {
		return nil, fmt.Errorf("sms %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Webhook{url: u.String(), key: key, now: now, client: &http.Client{
		Timeout:       WebhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Send posts m and reports an error unless the endpoint answered 2xx.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	if err := m.check(); err != nil {
		return err
	}
	body, err := json.Marshal(WebhookBody(m))
	if err != nil {
		return fmt.Errorf("sms webhook: encode: %w", err)
	}
	id := "msg_" + rand.Text()
	ts := w.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kavach-sms")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", webhook.Sign(w.key, id, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// Without the URL, which may carry a token in its query string:
		// this error is logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("sms webhook: deliver to %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("sms webhook: endpoint answered %s", resp.Status)
	}
	return nil
}
