package mail

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// session is what the fake server saw during one connection.
type session struct {
	tls      bool
	auth     string // decoded AUTH PLAIN response
	mailFrom string
	rcptTo   []string
	data     string // raw DATA, dot-unstuffed, line endings untouched
}

// fakeSMTP is a minimal SMTP server, enough for net/smtp's client.
type fakeSMTP struct {
	t           *testing.T
	ln          net.Listener
	serverTLS   *tls.Config // offered through STARTTLS when set and not implicit
	implicitTLS bool
	advertAuth  bool
	onAccept    func() // runs after accept; the server then never greets

	mu       sync.Mutex
	sessions []session
	wg       sync.WaitGroup // the accept loop and every connection
	conns    sync.WaitGroup // connections only
}

func startFakeSMTP(t *testing.T, configure func(*fakeSMTP)) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSMTP{t: t, ln: ln}
	if configure != nil {
		configure(s)
	}
	if s.implicitTLS {
		s.ln = tls.NewListener(ln, s.serverTLS)
	}
	s.wg.Go(s.serve)
	t.Cleanup(func() {
		_ = s.ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeSMTP) port() int {
	return int(netip.MustParseAddrPort(s.ln.Addr().String()).Port())
}

// got returns the sessions of all connections, waiting for open ones to
// end; call it after the client is done.
func (s *fakeSMTP) got() []session {
	s.conns.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]session(nil), s.sessions...)
}

func (s *fakeSMTP) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.wg.Go(func() {
			defer s.conns.Done()
			defer conn.Close()
			if s.onAccept != nil {
				s.onAccept()
				_, _ = conn.Read(make([]byte, 1)) // until the client gives up
				return
			}
			sess := s.converse(conn)
			s.mu.Lock()
			s.sessions = append(s.sessions, sess)
			s.mu.Unlock()
		})
	}
}

func (s *fakeSMTP) converse(conn net.Conn) session {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a stuck test fails instead of hanging
	sess := session{tls: s.implicitTLS}
	r, w := bufio.NewReader(conn), conn
	reply := func(lines ...string) {
		for i, l := range lines {
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			_, _ = w.Write([]byte(l[:3] + sep + l[4:] + "\r\n"))
		}
	}
	reply("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return sess
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"250 fake"}
			if s.serverTLS != nil && !sess.tls {
				ext = append(ext, "250 STARTTLS")
			}
			if s.advertAuth {
				ext = append(ext, "250 AUTH PLAIN")
			}
			reply(append(ext, "250 8BITMIME")...)
		case "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(conn, s.serverTLS)
			if err := tc.Handshake(); err != nil {
				return sess
			}
			sess.tls = true
			r, w = bufio.NewReader(tc), tc
		case "AUTH":
			_, resp, _ := strings.Cut(arg, " ")
			dec, _ := base64.StdEncoding.DecodeString(resp)
			sess.auth = string(dec)
			reply("235 ok")
		case "MAIL":
			sess.mailFrom = arg
			reply("250 ok")
		case "RCPT":
			sess.rcptTo = append(sess.rcptTo, arg)
			reply("250 ok")
		case "DATA":
			reply("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return sess
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			sess.data = data.String()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return sess
		default:
			reply("502 unknown command")
		}
	}
}

// testCert returns a server config and a client root pool for 127.0.0.1.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake smtp"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}
