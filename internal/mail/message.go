package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one email to one recipient. Text is required; HTML, when set,
// is sent as the preferred alternative to Text.
type Message struct {
	To      string // "a@example.com" or "Ada <a@example.com>"
	Subject string
	Text    string
	HTML    string
}

// Mailer sends a Message. Implementations honour ctx cancellation and
// deadline.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// ErrInvalidMessage is returned, wrapped, for a Message that must not be
// sent: a bad recipient, a line break in a header, or no text.
var ErrInvalidMessage = errors.New("mail: invalid message")

// recipient validates m and returns its parsed recipient.
func (m Message) recipient() (*mail.Address, error) {
	// A line break in a header value would let the caller's input add headers
	// (Bcc) or a body of its own.
	if hasControl(m.To) || hasControl(m.Subject) {
		return nil, fmt.Errorf("%w: recipient or subject contains a control character", ErrInvalidMessage)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("%w: recipient: %w", ErrInvalidMessage, err)
	}
	if m.Text == "" {
		return nil, fmt.Errorf("%w: text body is empty", ErrInvalidMessage)
	}
	return to, nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return (r < 0x20 && r != '\t') || r == 0x7f
	})
}

// compose renders m as an RFC 5322 message with CRLF line endings. Bodies
// are quoted-printable, so every line stays short and 7-bit whatever the
// text holds, and no relay needs 8BITMIME.
func compose(from, to *mail.Address, m Message, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	header("Date", now.Format(time.RFC1123Z))
	header("From", from.String())
	header("To", to.String())
	header("Subject", encodeSubject(m.Subject))
	header("Message-ID", "<"+rand.Text()+"@"+domainOf(from.Address)+">")
	header("MIME-Version", "1.0")

	if m.HTML == "" {
		cte, body := encodeBody(m.Text)
		header("Content-Type", `text/plain; charset="utf-8"`)
		header("Content-Transfer-Encoding", cte)
		b.WriteString("\r\n")
		b.Write(body)
		return b.Bytes(), nil
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	// Clients show the last alternative they understand, so HTML goes last.
	for _, part := range []struct{ contentType, content string }{
		{`text/plain; charset="utf-8"`, m.Text},
		{`text/html; charset="utf-8"`, m.HTML},
	} {
		cte, content := encodeBody(part.content)
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {cte},
		})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(content); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

// encodeBody returns s with CRLF line endings, sent as 7bit when it is short
// printable ASCII lines — so links stay readable and copyable in raw .eml
// files — and as quoted-printable otherwise, which keeps every line short
// and 7-bit whatever s holds, so no relay needs 8BITMIME.
func encodeBody(s string) (cte string, body []byte) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	if isShortPrintableASCII(s) {
		return "7bit", []byte(strings.ReplaceAll(s, "\n", "\r\n"))
	}
	var b bytes.Buffer
	qp := quotedprintable.NewWriter(&b) // writes each "\n" as CRLF
	_, _ = qp.Write([]byte(s))          // writes to a bytes.Buffer cannot fail
	_ = qp.Close()
	return "quoted-printable", b.Bytes()
}

// maxLine is RFC 5322's limit on a line, without its CRLF.
const maxLine = 998

func isShortPrintableASCII(s string) bool {
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		if len(line) > maxLine {
			return false
		}
		for i := 0; i < len(line); i++ {
			if c := line[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
				return false
			}
		}
	}
	return true
}

// encodeSubject returns s as is when it is printable ASCII, otherwise as
// RFC 2047 encoded-words, one per folded line so no line grows too long.
func encodeSubject(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	// Q-encoding escapes '?' and spaces inside a word, so "?= =?" only ever
	// separates two words.
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}

func domainOf(address string) string {
	if i := strings.LastIndexByte(address, '@'); i >= 0 && i+1 < len(address) {
		return address[i+1:]
	}
	return "localhost"
}
