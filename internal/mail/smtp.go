package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// TLS modes of SMTPConfig.
const (
	TLSStartTLS = "starttls" // plain connect, then STARTTLS; refuses servers that do not offer it
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS, usually port 465)
	TLSNone     = "none"     // cleartext; only to a relay on this host
)

// DefaultSMTPTimeout bounds one Send when SMTPConfig.Timeout is zero.
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig describes the relay. Port defaults to 587 for starttls, 465 for
// tls and 25 for none.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string // "no-reply@example.com" or "Example <no-reply@example.com>"
	TLS      string // TLSStartTLS (default), TLSImplicit or TLSNone
	Timeout  time.Duration
}

// SMTP sends mail through an SMTP relay, one connection per message.
type SMTP struct {
	host     string
	addr     string
	mode     string
	username string
	password string
	from     *mail.Address
	timeout  time.Duration
	tls      *tls.Config
}

var _ Mailer = (*SMTP)(nil)

// NewSMTP validates c and returns a sender for it. It does not connect.
func NewSMTP(c SMTPConfig) (*SMTP, error) {
	if c.Host == "" {
		return nil, errors.New("mail: smtp host is required")
	}
	mode := strings.ToLower(c.TLS)
	if mode == "" {
		mode = TLSStartTLS
	}
	defaultPort := map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[mode]
	if defaultPort == 0 {
		return nil, fmt.Errorf("mail: smtp tls mode %q is not one of %q, %q, %q", c.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	// Credentials and mail in cleartext may only stay on this machine.
	if mode == TLSNone && !isLocalhost(c.Host) {
		return nil, fmt.Errorf("mail: smtp tls mode %q is only allowed for a relay on localhost, not %q", TLSNone, c.Host)
	}
	port := c.Port
	if port == 0 {
		port = defaultPort
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("mail: smtp port %d is out of range", c.Port)
	}
	if hasControl(c.From) {
		return nil, errors.New("mail: smtp from address contains a control character")
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf("mail: smtp from address %q: %w", c.From, err)
	}
	if (c.Username == "") != (c.Password == "") {
		return nil, errors.New("mail: smtp username and password must be set together")
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultSMTPTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("mail: smtp timeout %v is negative", c.Timeout)
	}
	return &SMTP{
		host:     c.Host,
		addr:     net.JoinHostPort(c.Host, strconv.Itoa(port)),
		mode:     mode,
		username: c.Username,
		password: c.Password,
		from:     from,
		timeout:  timeout,
		tls:      &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12},
	}, nil
}

func isLocalhost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Send delivers m, giving up when ctx ends or the configured timeout passes,
// whichever comes first. An invalid m fails with ErrInvalidMessage before any
// connection is made.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	to, err := m.recipient()
	if err != nil {
		return err
	}
	msg, err := compose(s.from, to, m, time.Now())
	if err != nil {
		return fmt.Errorf("mail: compose: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.deliver(ctx, to.Address, msg); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("mail: smtp %s: %w: %w", s.addr, ctxErr, err)
		}
		return fmt.Errorf("mail: smtp %s: %w", s.addr, err)
	}
	return nil
}

func (s *SMTP) deliver(ctx context.Context, rcpt string, msg []byte) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	// net/smtp knows no context: the deadline bounds every read and write,
	// and cancellation expires the deadline to unblock them.
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()

	if s.mode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("server does not offer STARTTLS; refusing to send in cleartext")
		}
		if err := c.StartTLS(s.tls); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.username != "" {
		// PlainAuth itself refuses to send the password unencrypted to a
		// host other than localhost.
		if err := c.Auth(smtp.PlainAuth("", s.username, s.password, s.host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fmt.Errorf("rcpt to: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("quit: %w", err)
	}
	return nil
}

func (s *SMTP) dial(ctx context.Context) (net.Conn, error) {
	if s.mode == TLSImplicit {
		d := tls.Dialer{Config: s.tls}
		return d.DialContext(ctx, "tcp", s.addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.addr)
}
