package mail

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestNewSMTP(t *testing.T) {
	valid := SMTPConfig{Host: "smtp.example.com", From: "Kavach <no-reply@example.com>"}
	tests := []struct {
		name     string
		edit     func(*SMTPConfig)
		wantAddr string
		wantMode string
		wantErr  string
	}{
		{name: "defaults to starttls on 587", edit: func(*SMTPConfig) {}, wantAddr: "smtp.example.com:587", wantMode: TLSStartTLS},
		{name: "implicit tls defaults to 465", edit: func(c *SMTPConfig) { c.TLS = "tls" }, wantAddr: "smtp.example.com:465", wantMode: TLSImplicit},
		{name: "mode is case-insensitive", edit: func(c *SMTPConfig) { c.TLS = "STARTTLS" }, wantAddr: "smtp.example.com:587", wantMode: TLSStartTLS},
		{name: "explicit port", edit: func(c *SMTPConfig) { c.Port = 2525 }, wantAddr: "smtp.example.com:2525", wantMode: TLSStartTLS},
		{name: "none on localhost", edit: func(c *SMTPConfig) { c.Host, c.TLS = "localhost", "none" }, wantAddr: "localhost:25", wantMode: TLSNone},
		{name: "none on loopback ipv4", edit: func(c *SMTPConfig) { c.Host, c.TLS, c.Port = "127.0.0.1", "none", 1025 }, wantAddr: "127.0.0.1:1025", wantMode: TLSNone},
		{name: "none on loopback ipv6", edit: func(c *SMTPConfig) { c.Host, c.TLS = "::1", "none" }, wantAddr: "[::1]:25", wantMode: TLSNone},
		{name: "credentials", edit: func(c *SMTPConfig) { c.Username, c.Password = "u", "p" }, wantAddr: "smtp.example.com:587", wantMode: TLSStartTLS},

		{name: "missing host", edit: func(c *SMTPConfig) { c.Host = "" }, wantErr: "host is required"},
		{name: "unknown tls mode", edit: func(c *SMTPConfig) { c.TLS = "ssl" }, wantErr: `"ssl" is not one of`},
		{name: "none on a remote host", edit: func(c *SMTPConfig) { c.TLS = "none" }, wantErr: "only allowed for a relay on localhost"},
		{name: "none on a name that merely starts with localhost", edit: func(c *SMTPConfig) { c.Host, c.TLS = "localhost.evil.com", "none" }, wantErr: "only allowed for a relay on localhost"},
		{name: "port out of range", edit: func(c *SMTPConfig) { c.Port = 70000 }, wantErr: "out of range"},
		{name: "negative port", edit: func(c *SMTPConfig) { c.Port = -1 }, wantErr: "out of range"},
		{name: "missing from", edit: func(c *SMTPConfig) { c.From = "" }, wantErr: "from address"},
		{name: "bad from", edit: func(c *SMTPConfig) { c.From = "not an address" }, wantErr: "from address"},
		{name: "from with line break", edit: func(c *SMTPConfig) { c.From = "a@example.com\r\nBcc: b@example.com" }, wantErr: "control character"},
		{name: "username without password", edit: func(c *SMTPConfig) { c.Username = "u" }, wantErr: "set together"},
		{name: "negative timeout", edit: func(c *SMTPConfig) { c.Timeout = -time.Second }, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			s, err := NewSMTP(c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewSMTP() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSMTP(): %v", err)
			}
			if s.addr != tt.wantAddr || s.mode != tt.wantMode {
				t.Errorf("NewSMTP() addr, mode = %q, %q; want %q, %q", s.addr, s.mode, tt.wantAddr, tt.wantMode)
			}
		})
	}
}

func newPlainSMTP(t *testing.T, srv *fakeSMTP, edit func(*SMTPConfig)) *SMTP {
	t.Helper()
	c := SMTPConfig{Host: "127.0.0.1", Port: srv.port(), TLS: TLSNone, From: "Kavach <no-reply@example.com>", Timeout: 10 * time.Second}
	if edit != nil {
		edit(&c)
	}
	s, err := NewSMTP(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var messageID = regexp.MustCompile(`^<[A-Z2-7]{26}@example\.com>$`)

func TestSMTPSend(t *testing.T) {
	tests := []struct {
		name        string
		msg         Message
		wantTo      string // To header as written
		wantSubject string // decoded
		wantText    string // decoded, CRLF line endings
		wantHTML    string // decoded; "" means a single text/plain body
	}{
		{
			name:        "plain text",
			msg:         Message{To: "ada@example.com", Subject: "Verify your email", Text: "Open https://example.com/verify?token=abc\n"},
			wantTo:      "<ada@example.com>",
			wantSubject: "Verify your email",
			wantText:    "Open https://example.com/verify?token=abc\r\n",
		},
		{
			name:        "display name and non-ASCII subject",
			msg:         Message{To: "Ada Lovelace <ada@example.com>", Subject: "Vérifiez votre adresse — ✓", Text: "Bonjour"},
			wantTo:      `"Ada Lovelace" <ada@example.com>`,
			wantSubject: "Vérifiez votre adresse — ✓",
			wantText:    "Bonjour\r\n",
		},
		{
			name:        "long non-ASCII subject is folded",
			msg:         Message{To: "ada@example.com", Subject: strings.Repeat("ünïcødé ", 20), Text: "x"},
			wantTo:      "<ada@example.com>",
			wantSubject: strings.Repeat("ünïcødé ", 20),
			wantText:    "x\r\n",
		},
		{
			name:        "lines starting with a dot survive dot-stuffing",
			msg:         Message{To: "ada@example.com", Subject: "dots", Text: ".\n..\n.hidden"},
			wantTo:      "<ada@example.com>",
			wantSubject: "dots",
			wantText:    ".\r\n..\r\n.hidden\r\n",
		},
		{
			name:        "long lines and mixed line endings",
			msg:         Message{To: "ada@example.com", Subject: "long", Text: strings.Repeat("a", 2000) + "\r\nb\rc\nd"},
			wantTo:      "<ada@example.com>",
			wantSubject: "long",
			wantText:    strings.Repeat("a", 2000) + "\r\nb\r\nc\r\nd\r\n",
		},
		{
			name:        "html alternative",
			msg:         Message{To: "ada@example.com", Subject: "Sign in", Text: "Use code 123456", HTML: "<p>Use code <b>123456</b> — ✓</p>"},
			wantTo:      "<ada@example.com>",
			wantSubject: "Sign in",
			wantText:    "Use code 123456\r\n",
			wantHTML:    "<p>Use code <b>123456</b> — ✓</p>\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFakeSMTP(t, nil)
			if err := newPlainSMTP(t, srv, nil).Send(t.Context(), tt.msg); err != nil {
				t.Fatalf("Send(): %v", err)
			}
			sessions := srv.got()
			if len(sessions) != 1 {
				t.Fatalf("server saw %d sessions, want 1", len(sessions))
			}
			sess := sessions[0]
			if !strings.HasPrefix(sess.mailFrom, "FROM:<no-reply@example.com>") {
				t.Errorf("MAIL %q", sess.mailFrom)
			}
			if len(sess.rcptTo) != 1 || sess.rcptTo[0] != "TO:<ada@example.com>" {
				t.Errorf("RCPT %q", sess.rcptTo)
			}
			checkWireFormat(t, sess.data)

			msg, err := mail.ReadMessage(strings.NewReader(sess.data))
			if err != nil {
				t.Fatalf("ReadMessage: %v\n%s", err, sess.data)
			}
			h := msg.Header
			if got := h.Get("From"); got != `"Kavach" <no-reply@example.com>` {
				t.Errorf("From = %q", got)
			}
			if got := h.Get("To"); got != tt.wantTo {
				t.Errorf("To = %q, want %q", got, tt.wantTo)
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
			if err != nil || subject != tt.wantSubject {
				t.Errorf("Subject = %q (%v), want %q", subject, err, tt.wantSubject)
			}
			if date, err := h.Date(); err != nil || time.Since(date) > time.Hour {
				t.Errorf("Date = %q (%v)", h.Get("Date"), err)
			}
			if got := h.Get("Message-Id"); !messageID.MatchString(got) {
				t.Errorf("Message-ID = %q", got)
			}
			if got := h.Get("Mime-Version"); got != "1.0" {
				t.Errorf("MIME-Version = %q", got)
			}
			text, html := readBodies(t, msg)
			if text != tt.wantText {
				t.Errorf("text = %q, want %q", text, tt.wantText)
			}
			if html != tt.wantHTML {
				t.Errorf("html = %q, want %q", html, tt.wantHTML)
			}
		})
	}
}

// checkWireFormat fails on bare LF, bare CR or lines over RFC 5322's limit.
func checkWireFormat(t *testing.T, data string) {
	t.Helper()
	for i, line := range strings.SplitAfter(data, "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\r\n") || strings.Contains(strings.TrimSuffix(line, "\r\n"), "\r") {
			t.Errorf("line %d %q does not end in a lone CRLF", i, line)
		}
		if len(line) > 1000 {
			t.Errorf("line %d is %d bytes long", i, len(line))
		}
	}
}

// readBodies returns the decoded text and HTML bodies of msg.
func readBodies(t *testing.T, msg *mail.Message) (text, html string) {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if mediaType == "text/plain" {
		return decodeBody(t, msg.Header.Get("Content-Transfer-Encoding"), msg.Body), ""
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q", mediaType)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextRawPart() // raw: NextPart would decode quoted-printable itself
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, p.Header.Get("Content-Type"))
		switch {
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
			text = decodeBody(t, p.Header.Get("Content-Transfer-Encoding"), p)
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"):
			html = decodeBody(t, p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	if want := []string{`text/plain; charset="utf-8"`, `text/html; charset="utf-8"`}; strings.Join(types, ",") != strings.Join(want, ",") {
		t.Errorf("parts %q, want %q", types, want)
	}
	return text, html
}

func decodeBody(t *testing.T, cte string, r io.Reader) string {
	t.Helper()
	switch cte {
	case "7bit":
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	default:
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSendRejectsInvalidMessages(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
	}{
		{name: "CRLF in recipient", msg: Message{To: "ada@example.com\r\nBcc: eve@example.com", Subject: "s", Text: "t"}},
		{name: "LF in recipient", msg: Message{To: "ada@example.com\nBcc: eve@example.com", Subject: "s", Text: "t"}},
		{name: "CR in subject", msg: Message{To: "ada@example.com", Subject: "hi\rBcc: eve@example.com", Text: "t"}},
		{name: "LF in subject", msg: Message{To: "ada@example.com", Subject: "hi\n\nbody of my own", Text: "t"}},
		{name: "NUL in subject", msg: Message{To: "ada@example.com", Subject: "hi\x00", Text: "t"}},
		{name: "empty recipient", msg: Message{To: "", Subject: "s", Text: "t"}},
		{name: "not an address", msg: Message{To: "ada", Subject: "s", Text: "t"}},
		{name: "several recipients", msg: Message{To: "ada@example.com, eve@example.com", Subject: "s", Text: "t"}},
		{name: "empty text", msg: Message{To: "ada@example.com", Subject: "s", HTML: "<p>only html</p>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFakeSMTP(t, nil)
			mailers := map[string]Mailer{
				"smtp": newPlainSMTP(t, srv, nil),
				"dev":  &DevMailer{Dir: t.TempDir(), Logger: discardLogger()},
			}
			for name, m := range mailers {
				if err := m.Send(t.Context(), tt.msg); !errors.Is(err, ErrInvalidMessage) {
					t.Errorf("%s Send() = %v, want ErrInvalidMessage", name, err)
				}
			}
			if n := len(srv.got()); n != 0 {
				t.Errorf("server saw %d sessions, want none", n)
			}
		})
	}
}

func TestSMTPSendOverTLS(t *testing.T) {
	serverTLS, roots := testCert(t)
	msg := Message{To: "ada@example.com", Subject: "s", Text: "secret link"}
	tests := []struct {
		name     string
		server   func(*fakeSMTP)
		config   func(*SMTPConfig)
		wantErr  string
		wantAuth string
	}{
		{
			name:     "starttls then auth",
			server:   func(s *fakeSMTP) { s.serverTLS, s.advertAuth = serverTLS, true },
			config:   func(c *SMTPConfig) { c.TLS, c.Username, c.Password = TLSStartTLS, "kavach", "hunter2" },
			wantAuth: "\x00kavach\x00hunter2",
		},
		{
			name:   "implicit tls",
			server: func(s *fakeSMTP) { s.serverTLS, s.implicitTLS = serverTLS, true },
			config: func(c *SMTPConfig) { c.TLS = TLSImplicit },
		},
		{
			name:    "starttls not offered is refused",
			server:  func(s *fakeSMTP) { s.advertAuth = true },
			config:  func(c *SMTPConfig) { c.TLS, c.Username, c.Password = TLSStartTLS, "kavach", "hunter2" },
			wantErr: "does not offer STARTTLS",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFakeSMTP(t, tt.server)
			s := newPlainSMTP(t, srv, tt.config)
			s.tls.RootCAs = roots
			err := s.Send(t.Context(), msg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Send() = %v, want an error containing %q", err, tt.wantErr)
				}
				for _, sess := range srv.got() {
					if sess.auth != "" || sess.data != "" {
						t.Errorf("credentials or mail crossed a cleartext connection: %+v", sess)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Send(): %v", err)
			}
			sessions := srv.got()
			if len(sessions) != 1 {
				t.Fatalf("server saw %d sessions, want 1", len(sessions))
			}
			sess := sessions[0]
			if !sess.tls {
				t.Error("mail was sent without TLS")
			}
			if sess.auth != tt.wantAuth {
				t.Errorf("AUTH = %q, want %q", sess.auth, tt.wantAuth)
			}
			if !strings.Contains(sess.data, "secret link") {
				t.Errorf("DATA lacks the text:\n%s", sess.data)
			}
		})
	}
}

func TestSMTPSendHonoursContext(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func(t *testing.T) (context.Context, func()) // returns ctx and a func the server runs on accept
		wantErr error
	}{
		{
			name: "cancelled while the server stalls",
			ctx: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithCancel(t.Context())
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
		{
			name: "deadline already passed",
			ctx: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
				t.Cleanup(cancel)
				return ctx, func() {}
			},
			wantErr: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, onAccept := tt.ctx(t)
			srv := startFakeSMTP(t, func(s *fakeSMTP) { s.onAccept = onAccept })
			err := newPlainSMTP(t, srv, nil).Send(ctx, Message{To: "ada@example.com", Subject: "s", Text: "t"})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Send() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
