package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults for Options left zero.
const (
	DefaultMaxBytes = 64 << 10
	DefaultTimeout  = 5 * time.Second
	maxRedirectsCap = 5
)

// Errors a fetch fails with (wrapped; test with errors.Is). A timeout
// surfaces as the HTTP client's own error.
var (
	ErrURL         = errors.New("safehttp: URL not allowed")
	ErrAddress     = errors.New("safehttp: address not allowed")
	ErrRedirect    = errors.New("safehttp: redirect not followed")
	ErrStatus      = errors.New("safehttp: status is not 200")
	ErrContentType = errors.New("safehttp: content type is not JSON")
	ErrTooLarge    = errors.New("safehttp: response too large")
)

// Options configure a Client. The zero value is the production policy:
// https only, public addresses only, no redirects, 64 KiB, 5 s.
type Options struct {
	// AllowHTTP permits http URLs. Development and tests only.
	AllowHTTP bool
	// AllowPrivate permits loopback, private and other special-use
	// addresses. Development and tests only: in production it hands
	// whoever chooses the URL a view into the server's network.
	AllowPrivate bool
	// Timeout bounds the whole fetch: resolving, connecting, TLS, headers
	// and body.
	Timeout time.Duration
	// MaxBytes is the largest body accepted; a longer one is an error, not
	// a truncated document.
	MaxBytes int64
	// MaxRedirects is how many redirects are followed, each checked like
	// the first URL (at most 5). Zero refuses redirects.
	MaxRedirects int
	// TLSConfig replaces the system's TLS settings (tests trust their own
	// server's certificate with it). Nil uses the system roots.
	TLSConfig *tls.Config
}

// Client fetches untrusted URLs under Options. It is safe for concurrent
// use.
type Client struct {
	opts Options
	hc   *http.Client
}

// New returns a Client with o's policy.
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	o.MaxRedirects = min(max(o.MaxRedirects, 0), maxRedirectsCap)
	c := &Client{opts: o}
	dialer := &net.Dialer{Timeout: o.Timeout, Control: c.checkDial}
	var tlsConfig *tls.Config
	if o.TLSConfig != nil {
		tlsConfig = o.TLSConfig.Clone()
	}
	transport := &http.Transport{
		Proxy:                  nil, // through a proxy, the dial check would see the proxy
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		// Fetches are rare and go to many hosts: idle connections would
		// only hold sockets open to places a stranger chose.
		DisableKeepAlives: true,
		ForceAttemptHTTP2: true,
	}
	c.hc = &http.Client{Transport: transport, Timeout: o.Timeout, CheckRedirect: c.checkRedirect}
	return c
}

// HTTPClient is the underlying client, with the address, scheme, redirect
// and time limits but not the size and content checks of GetJSON, for
// libraries that take an *http.Client. Callers must bound what they read.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Response is a fetched document.
type Response struct {
	Header http.Header
	Body   []byte
}

// GetJSON fetches rawURL and returns its body if the answer is 200 with a
// JSON media type (application/json or application/*+json) and at most
// MaxBytes long.
func (c *Client) GetJSON(ctx context.Context, rawURL string) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	if err := c.checkURL(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("safehttp: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, fmt.Errorf("%w: status %d", ErrRedirect, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %d", ErrStatus, resp.StatusCode)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, fmt.Errorf("%w: %q", ErrContentType, resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength > c.opts.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, resp.ContentLength, c.opts.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("safehttp: read body: %w", err)
	}
	if int64(len(body)) > c.opts.MaxBytes {
		return nil, fmt.Errorf("%w: limit %d bytes", ErrTooLarge, c.opts.MaxBytes)
	}
	return &Response{Header: resp.Header, Body: body}, nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	sub, ok := strings.CutPrefix(mt, "application/")
	return ok && (sub == "json" || strings.HasSuffix(sub, "+json") && len(sub) > len("+json"))
}

func (c *Client) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.opts.AllowHTTP:
	default:
		return fmt.Errorf("%w: scheme %q", ErrURL, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return fmt.Errorf("%w: no host", ErrURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: user info", ErrURL)
	}
	return nil
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > c.opts.MaxRedirects {
		if c.opts.MaxRedirects == 0 {
			return http.ErrUseLastResponse // GetJSON reports the 3xx as ErrRedirect
		}
		return fmt.Errorf("%w: more than %d", ErrRedirect, c.opts.MaxRedirects)
	}
	return c.checkURL(req.URL)
}

// checkDial runs on every connection attempt, after the name was resolved
// and before connecting, with the address that will actually be used.
func (c *Client) checkDial(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%w: network %s", ErrAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrAddress, address)
	}
	if !c.opts.AllowPrivate && !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrAddress, ap.Addr())
	}
	return nil
}
