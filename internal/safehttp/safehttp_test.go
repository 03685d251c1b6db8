package safehttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// docServer is a TLS test server with a handler per path and a count of
// the requests that reached it.
type docServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newDocServer(t *testing.T, tls bool) *docServer {
	t.Helper()
	d := &docServer{}
	mux := http.NewServeMux()
	jsonDoc := func(w http.ResponseWriter, body string, ct string) {
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write([]byte(body))
	}
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { jsonDoc(w, `{"a":1}`, "application/json") })
	mux.HandleFunc("/ok-charset", func(w http.ResponseWriter, _ *http.Request) {
		jsonDoc(w, `{"a":1}`, "application/json; charset=utf-8")
	})
	mux.HandleFunc("/ok-suffix", func(w http.ResponseWriter, _ *http.Request) { jsonDoc(w, `{"keys":[]}`, "application/jwk-set+json") })
	mux.HandleFunc("/html", func(w http.ResponseWriter, _ *http.Request) { jsonDoc(w, `{"a":1}`, "text/html") })
	mux.HandleFunc("/bare-suffix", func(w http.ResponseWriter, _ *http.Request) { jsonDoc(w, `{"a":1}`, "application/+json") })
	mux.HandleFunc("/no-type", func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = nil // stop sniffing
		_, _ = w.Write([]byte(`{"a":1}`))
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) })
	mux.HandleFunc("/created", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, _ *http.Request) {
		jsonDoc(w, `"`+strings.Repeat("x", 1024-2)+`"`, "application/json")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		jsonDoc(w, `"`+strings.Repeat("x", 1024-1)+`"`, "application/json")
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for range 8 {
			_, _ = w.Write([]byte(strings.Repeat(" ", 512)))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow-headers", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			panic(http.ErrAbortHandler) // an answer after the client gave up could still be read
		case <-time.After(5 * time.Second):
		}
		jsonDoc(w, `{}`, "application/json")
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for range 50 {
			_, _ = w.Write([]byte(" "))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				// Returning would end the body cleanly, and a client
				// racing its own cancellation could read it complete.
				panic(http.ErrAbortHandler)
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/redirect2", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/redirect", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.Host+"/ok", http.StatusFound)
	})
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		mux.ServeHTTP(w, r)
	})
	if tls {
		d.Server = httptest.NewTLSServer(count)
	} else {
		d.Server = httptest.NewServer(count)
	}
	t.Cleanup(d.Close)
	return d
}

// trusting returns o with the test server's certificate trusted.
func (d *docServer) trusting(o Options) Options {
	if tr, ok := d.Client().Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		o.TLSConfig = tr.TLSClientConfig
	}
	return o
}

func TestGetJSON(t *testing.T) {
	srv := newDocServer(t, true)
	plain := newDocServer(t, false)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	dev := Options{AllowPrivate: true, MaxBytes: 1024}
	tests := []struct {
		name     string
		opts     Options
		url      string
		wantErr  error // nil: success
		wantBody string
		noHit    bool // refused before any request reached the server
	}{
		{name: "json", opts: dev, url: srv.URL + "/ok", wantBody: `{"a":1}`},
		{name: "json with charset", opts: dev, url: srv.URL + "/ok-charset", wantBody: `{"a":1}`},
		{name: "+json media type", opts: dev, url: srv.URL + "/ok-suffix", wantBody: `{"keys":[]}`},
		{name: "exactly the limit", opts: dev, url: srv.URL + "/exact"},
		{name: "html", opts: dev, url: srv.URL + "/html", wantErr: ErrContentType},
		{name: "bare +json", opts: dev, url: srv.URL + "/bare-suffix", wantErr: ErrContentType},
		{name: "no content type", opts: dev, url: srv.URL + "/no-type", wantErr: ErrContentType},
		{name: "404", opts: dev, url: srv.URL + "/missing", wantErr: ErrStatus},
		{name: "201 is not 200", opts: dev, url: srv.URL + "/created", wantErr: ErrStatus},
		{name: "one byte over the limit", opts: dev, url: srv.URL + "/big", wantErr: ErrTooLarge},
		{name: "over the limit, no length announced", opts: dev, url: srv.URL + "/big-chunked", wantErr: ErrTooLarge},
		{name: "slow headers", opts: Options{AllowPrivate: true, Timeout: 200 * time.Millisecond}, url: srv.URL + "/slow-headers", wantErr: context.DeadlineExceeded},
		{name: "slow body", opts: Options{AllowPrivate: true, Timeout: 300 * time.Millisecond}, url: srv.URL + "/slow-body", wantErr: context.DeadlineExceeded},
		{name: "redirect refused by default", opts: dev, url: srv.URL + "/redirect", wantErr: ErrRedirect},
		{name: "redirect followed when allowed", opts: Options{AllowPrivate: true, MaxRedirects: 1}, url: srv.URL + "/redirect", wantBody: `{"a":1}`},
		{name: "too many redirects", opts: Options{AllowPrivate: true, MaxRedirects: 1}, url: srv.URL + "/redirect2", wantErr: ErrRedirect},
		{name: "redirect loop", opts: Options{AllowPrivate: true, MaxRedirects: 3}, url: srv.URL + "/loop", wantErr: ErrRedirect},
		{name: "redirect to http", opts: Options{AllowPrivate: true, MaxRedirects: 3}, url: srv.URL + "/to-http", wantErr: ErrURL},
		{name: "loopback refused", opts: Options{}, url: srv.URL + "/ok", wantErr: ErrAddress, noHit: true},
		{name: "localhost name refused at dial", opts: Options{}, url: "https://localhost:" + port + "/ok", wantErr: ErrAddress, noHit: true},
		{name: "IPv4-mapped loopback refused", opts: Options{}, url: "https://[::ffff:127.0.0.1]:" + port + "/ok", wantErr: ErrAddress, noHit: true},
		{name: "IPv6 loopback refused", opts: Options{}, url: "https://[::1]:" + port + "/ok", wantErr: ErrAddress, noHit: true},
		{name: "private refused", opts: Options{}, url: "https://10.0.0.1/doc", wantErr: ErrAddress, noHit: true},
		{name: "metadata endpoint refused", opts: Options{}, url: "https://169.254.169.254/latest/meta-data", wantErr: ErrAddress, noHit: true},
		{name: "CGNAT refused", opts: Options{}, url: "https://100.64.0.1/doc", wantErr: ErrAddress, noHit: true},
		{name: "unspecified refused", opts: Options{}, url: "https://0.0.0.0:" + port + "/ok", wantErr: ErrAddress, noHit: true},
		{name: "http refused", opts: Options{AllowPrivate: true}, url: plain.URL + "/ok", wantErr: ErrURL, noHit: true},
		{name: "http allowed when asked", opts: Options{AllowPrivate: true, AllowHTTP: true}, url: plain.URL + "/ok", wantBody: `{"a":1}`},
		{name: "user info refused", opts: dev, url: "https://user:pw@" + srv.Listener.Addr().String() + "/ok", wantErr: ErrURL, noHit: true},
		{name: "other scheme refused", opts: dev, url: "file:///etc/passwd", wantErr: ErrURL, noHit: true},
		{name: "no host", opts: dev, url: "https:///ok", wantErr: ErrURL, noHit: true},
		{name: "unparsable", opts: dev, url: "https://[::1", wantErr: ErrURL, noHit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(srv.trusting(tt.opts))
			before := srv.hits.Load() + plain.hits.Load()
			resp, err := c.GetJSON(context.Background(), tt.url)
			hits := srv.hits.Load() + plain.hits.Load() - before
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("GetJSON(%s) error = %v, want %v", tt.url, err, tt.wantErr)
				}
				if tt.noHit && hits != 0 {
					t.Errorf("%d requests reached the server, want none", hits)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetJSON(%s): %v", tt.url, err)
			}
			if tt.wantBody != "" && string(resp.Body) != tt.wantBody {
				t.Errorf("body %q, want %q", resp.Body, tt.wantBody)
			}
			if resp.Header.Get("Content-Type") == "" {
				t.Error("response headers are missing")
			}
		})
	}
}

func TestGetJSONHonoursContext(t *testing.T) {
	srv := newDocServer(t, true)
	c := New(srv.trusting(Options{AllowPrivate: true}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.GetJSON(ctx, srv.URL+"/slow-headers"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v after the context ended", d)
	}
}

func TestHTTPClientKeepsTheAddressPolicy(t *testing.T) {
	srv := newDocServer(t, true)
	hc := New(srv.trusting(Options{})).HTTPClient()
	resp, err := hc.Get(srv.URL + "/ok")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrAddress) {
		t.Fatalf("error = %v, want ErrAddress", err)
	}
}

func ExampleClient_GetJSON() {
	c := New(Options{}) // production policy: https, public addresses, no redirects
	_, err := c.GetJSON(context.Background(), "https://127.0.0.1/client.json")
	fmt.Println(errors.Is(err, ErrAddress))
	// Output: true
}
