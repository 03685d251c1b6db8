// Command kavach-load measures a running Kavach over HTTP: token issuance
// (client_credentials) or protected MCP calls, from concurrent workers,
// reporting throughput and latency percentiles. It only talks to the URL
// it is given, stops after -n requests or -d, whichever comes first, and
// is meant for loopback runs next to `kavach serve`.
//
//	kavach-load -url http://127.0.0.1:8080 -mode token -client-id ID -client-secret S -c 32 -d 10s
//	kavach-load -url http://127.0.0.1:8080 -mode mcp -token AT -c 32 -d 10s
//	kavach-load -url http://127.0.0.1:8080 -mode authorize -token kv_… -c 32 -d 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var (
		base     = flag.String("url", "http://127.0.0.1:8080", "Kavach base URL")
		mode     = flag.String("mode", "token", "token (client_credentials) or mcp (tools/call whoami)")
		clientID = flag.String("client-id", "", "client_credentials client id (mode token)")
		secret   = flag.String("client-secret", "", "client secret (mode token)")
		token    = flag.String("token", "", "access token with scope mcp (mode mcp); mode token mints one if empty")
		conc     = flag.Int("c", 32, "concurrent workers")
		dur      = flag.Duration("d", 10*time.Second, "how long to run")
		max      = flag.Int("n", 1_000_000, "stop after this many requests")
		warmup   = flag.Duration("warmup", time.Second, "requests in this first period are not measured")
	)
	flag.Parse()
	if *conc < 1 || *conc > 1024 || *dur <= 0 || *dur > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "kavach-load: -c must be 1..1024 and -d at most 10m")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var build func() *http.Request
	switch *mode {
	case "token":
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp"}}.Encode()
		build = func() *http.Request {
			r, _ := http.NewRequest("POST", *base+"/api/auth/oauth2/token", strings.NewReader(form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(*clientID, *secret)
			return r
		}
	case "mcp":
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
		build = func() *http.Request {
			r, _ := http.NewRequest("POST", *base+"/mcp", strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+*token)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/json, text/event-stream")
			r.Header.Set("MCP-Protocol-Version", "2025-06-18")
			return r
		}
	case "authorize":
		body := `{"action":"read","resource":"mcp:github:issues"}`
		build = func() *http.Request {
			r, _ := http.NewRequest("POST", *base+"/api/auth/authorize", strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+*token)
			r.Header.Set("Content-Type", "application/json")
			return r
		}
	default:
		fmt.Fprintln(os.Stderr, "kavach-load: -mode must be token, mcp or authorize")
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *warmup+*dur)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(*warmup)
	var (
		sent, failed atomic.Int64
		mu           sync.Mutex
		lat          []time.Duration
		firstErr     atomic.Value
		wg           sync.WaitGroup
	)
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil && sent.Add(1) <= int64(*max) {
				t0 := time.Now()
				resp, err := client.Do(build().WithContext(ctx))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if t0.After(measureFrom) {
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	if len(lat) == 0 {
		fmt.Fprintf(os.Stderr, "kavach-load: no successful measured requests (failures %d, first error %v)\n", failed.Load(), firstErr.Load())
		os.Exit(1)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("mode=%s workers=%d measured=%d failed=%d over %.1fs\n", *mode, *conc, len(lat), failed.Load(), elapsed.Seconds())
	fmt.Printf("throughput: %.0f req/s\n", float64(len(lat))/elapsed.Seconds())
	fmt.Printf("latency: p50=%v p90=%v p99=%v max=%v\n", pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	if v := firstErr.Load(); v != nil {
		fmt.Printf("first error: %v\n", v)
	}
}
