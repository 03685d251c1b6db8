package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

// The published Standard Webhooks test vector: a receiver's library must
// accept what Kavach signs.
func TestSignStandardVector(t *testing.T) {
	key, err := Key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %s", got)
	}
}

func TestNewRefuses(t *testing.T) {
	good := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, c := range []struct{ url, secret string }{
		{"http://hooks.example.com/x", good},        // plain http outside development
		{"https://user:pw@hooks.example.com", good}, // credentials in the URL
		{"/relative", good},
		{"https://hooks.example.com/x", "short"},
		{"https://hooks.example.com/x", "whsec_!!!notbase64"},
	} {
		if _, err := New(c.url, c.secret, false, nil); err == nil {
			t.Errorf("New(%q, %q) accepted", c.url, c.secret)
		}
	}
	if _, err := New("http://127.0.0.1:9/x", strings.Repeat("k", 32), true, nil); err != nil {
		t.Fatalf("http in development: %v", err)
	}
}

// Send posts the event with the three headers, signed over exactly the
// body sent; a non-2xx answer is an error (the outbox retries it).
func TestSend(t *testing.T) {
	secret := strings.Repeat("s", 32)
	var mu sync.Mutex
	status := http.StatusInternalServerError
	var got []*http.Request
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, b)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	now := time.Unix(1_700_000_000, 0)
	s, err := New(srv.URL+"/hooks", secret, true, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	e := storage.Event{ID: 42, Type: "approval.requested", Subject: "apr_1", Payload: []byte(`{"approvalId":"apr_1"}`), CreatedAt: now}
	if err := s.Send(context.Background(), e); err == nil {
		t.Fatal("a 500 was taken as delivered")
	}
	mu.Lock()
	status = http.StatusNoContent
	mu.Unlock()
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatalf("send: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("%d deliveries", len(got))
	}
	r, body := got[1], bodies[1]
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	if id != "evt_42" || got[0].Header.Get("webhook-id") != id || ts != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("headers %v", r.Header)
	}
	if want := Sign([]byte(secret), id, now.Unix(), body); r.Header.Get("webhook-signature") != want {
		t.Fatalf("signature %q, want %q", r.Header.Get("webhook-signature"), want)
	}
	var b Body
	if err := json.Unmarshal(body, &b); err != nil || b.Type != e.Type || b.Subject != "apr_1" || string(b.Data) != `{"approvalId":"apr_1"}` {
		t.Fatalf("body %s: %v", body, err)
	}
}
