package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+14155550100", "+14155550100", true},
		{" +1 (415) 555-0100 ", "+14155550100", true},
		{"+44 20.7946.0958", "+442079460958", true},
		{"+4915112345", "+4915112345", true},
		{"4155550100", "", false},        // no country code
		{"+0155550100", "", false},       // country codes do not start with 0
		{"+1234567", "", false},          // 7 digits
		{"+1234567890123456", "", false}, // 16 digits
		{"+1415555010a", "", false},      // a letter
		{"+1 415 555 0100 ext 2", "", false},
		{"++14155550100", "", false},
		{"+١٤١٥٥٥٥٠١٠٠", "", false}, // non-ASCII digits
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := Normalize(tt.in)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDevSenderWritesAFileAndLogsNoText(t *testing.T) {
	var logs bytes.Buffer
	dir := filepath.Join(t.TempDir(), "sms")
	d := &DevSender{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := d.Send(t.Context(), Message{To: "+14155550100", Text: "Your code is 123456"}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries %v, %v", entries, err)
	}
	path := filepath.Join(dir, entries[0].Name())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "To: +14155550100\n\nYour code is 123456\n" {
		t.Errorf("file = %q", b)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", info.Mode().Perm())
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", info.Mode().Perm())
	}
	if strings.Contains(logs.String(), "123456") || !strings.Contains(logs.String(), path) {
		t.Errorf("log: %s", logs.String())
	}
	if err := d.Send(t.Context(), Message{To: "415", Text: "x"}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("bad number: %v", err)
	}
	if err := d.Send(t.Context(), Message{To: "+14155550100", Text: " "}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("empty text: %v", err)
	}
}

const testSecret = "sms-webhook-secret-0123456789"

// verify checks a request as the documentation tells receivers to.
func verify(r *http.Request, body []byte, secret string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(r.Header.Get("webhook-signature")))
}

func TestWebhookPostsSignedJSON(t *testing.T) {
	got := make(chan WebhookBody, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" || !verify(r, body, testSecret) {
			http.Error(w, "bad request", 400)
			return
		}
		var b WebhookBody
		_ = json.Unmarshal(body, &b)
		got <- b
		w.WriteHeader(204)
	}))
	defer srv.Close()
	w, err := NewWebhook(srv.URL+"/sms?token=abc", testSecret, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(t.Context(), Message{To: "+14155550100", Text: "Your code is 123456"}); err != nil {
		t.Fatal(err)
	}
	if b := <-got; b.To != "+14155550100" || b.Text != "Your code is 123456" {
		t.Errorf("body %+v", b)
	}
	// Signed with another secret, the receiver refuses: the error says so
	// without the URL's query.
	other, _ := NewWebhook(srv.URL+"/sms?token=abc", "another-secret-0123456789ab", true, nil)
	err = other.Send(t.Context(), Message{To: "+14155550100", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "400") || strings.Contains(err.Error(), "token=abc") {
		t.Errorf("wrong signature: %v", err)
	}
}

func TestWebhookFailures(t *testing.T) {
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer fail.Close()
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fail.URL, http.StatusTemporaryRedirect)
	}))
	defer moved.Close()
	for name, u := range map[string]string{"500": fail.URL, "redirect not followed": moved.URL} {
		w, err := NewWebhook(u, testSecret, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Send(t.Context(), Message{To: "+14155550100", Text: "x"}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	w, _ := NewWebhook(fail.URL, testSecret, true, nil)
	if err := w.Send(ctx, Message{To: "+14155550100", Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestNewWebhookChecks(t *testing.T) {
	for name, tc := range map[string]struct {
		url, secret string
		allowHTTP   bool
	}{
		"http in production": {"http://sms.example.com/", testSecret, false},
		"no host":            {"https:///x", testSecret, true},
		"credentials":        {"https://u:p@sms.example.com/", testSecret, true},
		"short secret":       {"https://sms.example.com/", "short", true},
		"not base64 whsec":   {"https://sms.example.com/", "whsec_***", true},
		"relative":           {"/sms", testSecret, true},
		"fragment":           {"https://sms.example.com/#x", testSecret, true},
	} {
		if _, err := NewWebhook(tc.url, tc.secret, tc.allowHTTP, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewWebhook("https://sms.example.com/send", testSecret, false, nil); err != nil {
		t.Errorf("https: %v", err)
	}
}

// FuzzNormalize: whatever Normalize accepts is E.164 and normalizes to
// itself.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+14155550100", "+1 (415) 555-0100", "+44.20", "++1", "+\u00a01415", "0", "+０１２"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, ok := Normalize(raw)
		if !ok {
			return
		}
		if !IsE164(n) {
			t.Fatalf("Normalize(%q) = %q, not E.164", raw, n)
		}
		if again, ok := Normalize(n); !ok || again != n {
			t.Fatalf("Normalize(%q) = %q, %v", n, again, ok)
		}
	})
}
