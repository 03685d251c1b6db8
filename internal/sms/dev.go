package sms

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DevSender is for development only: it sends nothing and writes each
// message to Dir as a .txt file, which is where developers read their
// codes. It logs that it wrote a file, but not the text: unlike
// development mail, the log never holds a live code.
type DevSender struct {
	Dir    string       // required
	Logger *slog.Logger // nil means slog.Default()
}

var _ Sender = (*DevSender)(nil)

// Send validates m, then writes <Dir>/<timestamp>-<random>.txt holding
// "To: <number>", a blank line and the text.
func (d *DevSender) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.check(); err != nil {
		return err
	}
	if d.Dir == "" {
		return fmt.Errorf("sms: development sender has no folder")
	}
	// Messages hold sign-in codes: readable by this user only.
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return fmt.Errorf("sms: dev folder: %w", err)
	}
	now := time.Now().UTC()
	path := filepath.Join(d.Dir, now.Format("20060102T150405.000000000Z")+"-"+rand.Text()[:8]+".txt")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sms: dev file: %w", err)
	}
	_, werr := fmt.Fprintf(f, "To: %s\n\n%s\n", m.To, m.Text)
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("sms: dev file: %w", werr)
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.InfoContext(ctx, "dev text message written (not sent)", "file", path)
	return nil
}
