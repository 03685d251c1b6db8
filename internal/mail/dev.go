package mail

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"time"
)

// devFrom is the sender of development mail; nothing checks it.
var devFrom = &mail.Address{Name: "Kavach (dev)", Address: "kavach@localhost"}

// DevMailer is for development only: it sends nothing, logs each message
// including its full text at Info (that is how developers click verification
// and magic links), and, when Dir is set, writes it to Dir as an .eml file.
// Never use it in production — the log then holds live sign-in links.
type DevMailer struct {
	Dir    string       // where .eml files go; empty means log only
	Logger *slog.Logger // nil means slog.Default()
}

var _ Mailer = (*DevMailer)(nil)

// Send validates m like SMTP.Send does, so development surfaces the same
// mistakes, then logs it and writes <Dir>/<timestamp>-<random>.eml.
func (d *DevMailer) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	to, err := m.recipient()
	if err != nil {
		return err
	}
	now := time.Now()
	var path string
	if d.Dir != "" {
		msg, err := compose(devFrom, to, m, now)
		if err != nil {
			return fmt.Errorf("mail: compose: %w", err)
		}
		if path, err = d.write(msg, now); err != nil {
			return err
		}
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.InfoContext(ctx, "dev mail (not sent)",
		"to", m.To, "subject", m.Subject, "text", m.Text, "file", path)
	return nil
}

func (d *DevMailer) write(msg []byte, now time.Time) (string, error) {
	// Mail holds sign-in links: readable by this user only.
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return "", fmt.Errorf("mail: dev mail dir: %w", err)
	}
	name := now.UTC().Format("20060102T150405.000000000Z") + "-" + rand.Text()[:8] + ".eml"
	path := filepath.Join(d.Dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("mail: dev mail file: %w", err)
	}
	if _, err := f.Write(msg); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("mail: dev mail file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("mail: dev mail file: %w", err)
	}
	return path, nil
}
