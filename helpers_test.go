package kavach_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one Kavach instance on a real loopback listener.
type env struct {
	t       *testing.T
	k       *kavach.Kavach
	srv     *httptest.Server
	url     string
	store   storage.Store
	mailDir string
	clock   *clock
}

const testSecret = "test-secret-test-secret-test-secret-0123"

// forEachDriver runs f against SQLite, and PostgreSQL when
// KAVACH_TEST_POSTGRES_URL is set.
func forEachDriver(t *testing.T, f func(t *testing.T, open func(t testing.TB) storage.Store)) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			f(t, d.Open)
		})
	}
}

func newEnv(t *testing.T, open func(t testing.TB) storage.Store, mutate func(*kavach.Config)) *env {
	t.Helper()
	store := open(t)
	srv := httptest.NewUnstartedServer(nil)
	e := &env{t: t, srv: srv, url: "http://" + srv.Listener.Addr().String(), store: store, mailDir: t.TempDir(),
		clock: &clock{now: time.Now().UTC()}}
	cfg := kavach.Config{
		BaseURL:  e.url,
		Secret:   testSecret,
		Password: kavach.PasswordConfig{Iterations: 1000},
		Email:    kavach.EmailConfig{DevDir: e.mailDir},
		Limits:   kavach.LimitsConfig{PerIP: 1000, PerAccount: 1000},
		Now:      e.clock.Now,
		Logger:   testLogger(t),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	k, err := kavach.NewWithStore(cfg, store)
	if err != nil {
		t.Fatalf("NewWithStore: %v", err)
	}
	e.k = k
	srv.Config.Handler = k.Handler()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		k.Close()
	})
	return e
}

// client is a browser-like HTTP client with a cookie jar.
type client struct {
	e       *env
	http    *http.Client
	headers map[string]string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		headers: map[string]string{}}
}

// response is a decoded envelope.
type response struct {
	Status  int
	Header  http.Header
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *kavach.Error   `json:"error"`
	Raw     []byte
}

func (c *client) do(method, path string, body any) *response {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.e.url+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, r); err != nil {
			c.e.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return r
}

func (r *response) must(t *testing.T, status int) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	return r
}

func (r *response) mustError(t *testing.T, status int, code string) *response {
	t.Helper()
	r.must(t, status)
	if r.Success || r.Error == nil || r.Error.Code != code {
		t.Fatalf("want error %s, got %s", code, r.Raw)
	}
	return r
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

type authData struct {
	User    kavach.User     `json:"user"`
	Session *kavach.Session `json:"session"`
	Token   string          `json:"token"`
}

const goodPassword = "violet-anchor-harbor-42"

func (c *client) signUp(email string) authData {
	c.e.t.Helper()
	var d authData
	c.do("POST", "/api/auth/sign-up/email", map[string]any{"email": email, "password": goodPassword, "name": "Test User"}).
		must(c.e.t, 201).decode(c.e.t, &d)
	return d
}

func (c *client) signIn(email, password string) *response {
	return c.do("POST", "/api/auth/sign-in/email", map[string]any{"email": email, "password": password})
}

var linkRE = regexp.MustCompile(`https?://\S+token=[A-Za-z0-9_\-]+\S*`)

// waitMail waits for an email to "to" whose subject contains subject and
// returns the link in it. Mail is sent off the request path, so it may
// arrive a moment after the response.
func (e *env) waitMail(to, subject string) string {
	e.t.Helper()
	link := linkRE.FindString(e.waitMailText(to, subject))
	if link == "" {
		e.t.Fatalf("no link in the mail to %s with subject %q", to, subject)
	}
	return link
}

// waitMailText waits for an email to "to" whose subject contains subject,
// consumes it and returns it whole (soft line breaks undone).
func (e *env) waitMailText(to, subject string) string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(e.mailDir, "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if s := string(b); strings.Contains(s, to) && strings.Contains(s, subject) {
				_ = os.Remove(f)
				return strings.ReplaceAll(s, "=\r\n", "")
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no mail to %s with subject %q", to, subject)
	return ""
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	i := strings.Index(link, "token=")
	if i < 0 {
		t.Fatalf("no token in %s", link)
	}
	tok := link[i+len("token="):]
	if j := strings.IndexAny(tok, "&#"); j >= 0 {
		tok = tok[:j]
	}
	return tok
}

var _ = context.Background

// testLogger shows error logs in the test output (KAVACH_TEST_LOG=1 shows
// everything).
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelError
	if os.Getenv("KAVACH_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func storagetestOpenSQLite(t testing.TB) storage.Store { return storagetest.OpenSQLite(t) }

// mustBeSignedIn checks that the client's session is the user with this
// email.
func (c *client) mustBeSignedIn(email string) {
	t := c.e.t
	t.Helper()
	var s struct {
		User kavach.User `json:"user"`
	}
	r := c.do("GET", "/api/auth/session", nil).must(t, 200)
	if string(r.Data) == "null" {
		t.Fatalf("not signed in as %s", email)
	}
	r.decode(t, &s)
	if s.User.Email != email {
		t.Fatalf("signed in as %q, want %q", s.User.Email, email)
	}
}

// mustBeSignedOut checks that the client has no session.
func (c *client) mustBeSignedOut() {
	t := c.e.t
	t.Helper()
	if r := c.do("GET", "/api/auth/session", nil).must(t, 200); string(r.Data) != "null" {
		t.Fatalf("signed in: %s", r.Data)
	}
}
