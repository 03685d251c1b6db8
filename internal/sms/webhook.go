package sms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/webhook"
)

// Webhook posts each message as JSON {"to","text"} to the operator's
// endpoint, which relays it to an SMS provider. Requests are signed as
// event webhooks are (package webhook, the Standard Webhooks scheme):
// webhook-id, webhook-timestamp and webhook-signature = "v1," +
// base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
type Webhook struct{ post *webhook.Sender }

var _ Sender = (*Webhook)(nil)

// WebhookBody is what the endpoint receives.
type WebhookBody struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// NewWebhook checks the URL (absolute https; plain http only when
// allowHTTP) and the secret (see webhook.Key). The client does not follow
// redirects: a redirect would carry the code somewhere else.
func NewWebhook(rawURL, secret string, allowHTTP bool, now func() time.Time) (*Webhook, error) {
	s, err := webhook.New(rawURL, secret, allowHTTP, now)
	if err != nil {
		return nil, fmt.Errorf("sms %w", err)
	}
	return &Webhook{post: s}, nil
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
	if err := w.post.Post(ctx, "msg_"+rand.Text(), "kavach-sms", body); err != nil {
		return fmt.Errorf("sms webhook: deliver %w", err)
	}
	return nil
}
