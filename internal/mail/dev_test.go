package mail

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestDevMailerSend(t *testing.T) {
	tests := []struct {
		name      string
		dir       func(t *testing.T) string
		msg       Message
		wantFiles int
		created   bool // Send creates dir, so its mode is Send's
	}{
		{
			name:      "writes an eml file and logs the text",
			dir:       func(t *testing.T) string { return t.TempDir() },
			msg:       Message{To: "ada@example.com", Subject: "Verify", Text: "https://example.com/verify?token=abc"},
			wantFiles: 1,
		},
		{
			name:      "creates a missing directory",
			dir:       func(t *testing.T) string { return filepath.Join(t.TempDir(), "mail", "out") },
			msg:       Message{To: "ada@example.com", Subject: "Verify", Text: "https://example.com/verify?token=abc", HTML: "<a>link</a>"},
			wantFiles: 1,
			created:   true,
		},
		{
			name:      "empty dir only logs",
			dir:       func(*testing.T) string { return "" },
			msg:       Message{To: "ada@example.com", Subject: "Verify", Text: "https://example.com/verify?token=abc"},
			wantFiles: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			dir := tt.dir(t)
			d := &DevMailer{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			if err := d.Send(t.Context(), tt.msg); err != nil {
				t.Fatalf("Send(): %v", err)
			}
			for _, want := range []string{"level=INFO", tt.msg.To, tt.msg.Subject, tt.msg.Text} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs.String())
				}
			}
			if tt.wantFiles == 0 {
				return
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != tt.wantFiles {
				t.Fatalf("%d files in dir, want %d", len(entries), tt.wantFiles)
			}
			if tt.created {
				checkMode(t, dir, 0o700)
			}
			path := filepath.Join(dir, entries[0].Name())
			checkMode(t, path, 0o600)
			if !strings.HasSuffix(path, ".eml") {
				t.Errorf("file %q is not .eml", path)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkWireFormat(t, string(data))
			// Short ASCII text travels as 7bit, so the link is readable as is.
			for _, want := range []string{"To: <ada@example.com>", "Subject: Verify", tt.msg.Text} {
				if !strings.Contains(string(data), want) {
					t.Errorf("file lacks %q:\n%s", want, data)
				}
			}
		})
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s mode = %v, want %v", path, got, want)
	}
}

func TestDevMailerFilesDoNotCollide(t *testing.T) {
	dir := t.TempDir()
	d := &DevMailer{Dir: dir, Logger: discardLogger()}
	for range 20 {
		if err := d.Send(t.Context(), Message{To: "ada@example.com", Text: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 20 {
		t.Errorf("%d files, want 20", len(entries))
	}
}

func TestDevMailerHonoursCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d := &DevMailer{Dir: t.TempDir(), Logger: discardLogger()}
	if err := d.Send(ctx, Message{To: "ada@example.com", Text: "t"}); err == nil {
		t.Error("Send() with a cancelled context = nil, want an error")
	}
}
