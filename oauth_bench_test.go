package kavach_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

// ccInstance is an instance with one client_credentials client.
func ccInstance(b *testing.B, open func(testing.TB) storage.Store) (*kavach.Kavach, authz.Registration) {
	k, _ := benchInstance(b, open, nil)
	reg, err := k.OAuth.RegisterClient(context.Background(), authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}, Scope: "mcp"})
	if err != nil {
		b.Fatal(err)
	}
	return k, reg
}

func ccRequest(base string, reg authz.Registration) *http.Request {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp"}}.Encode()
	req, _ := http.NewRequest("POST", base+authz.TokenPath, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(reg.Client.GetID(), reg.Secret)
	return req
}

// BenchmarkClientCredentials issues tokens in process (handler, fosite,
// signing, one stored row per token), from parallel goroutines.
func BenchmarkClientCredentials(b *testing.B) {
	for _, d := range storagetest.Drivers(b) {
		b.Run(d.Name, func(b *testing.B) {
			k, reg := ccInstance(b, d.Open)
			h := k.Handler()
			b.ReportAllocs()
			b.SetParallelism(8) // many clients at once, as a real load
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, ccRequest("", reg))
					if rec.Code != 200 {
						b.Errorf("token: %d %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}

// BenchmarkClientCredentialsLoopback is the same over a real listener.
func BenchmarkClientCredentialsLoopback(b *testing.B) {
	for _, d := range storagetest.Drivers(b) {
		b.Run(d.Name, func(b *testing.B) {
			k, reg := ccInstance(b, d.Open)
			srv := httptest.NewServer(k.Handler())
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			c := &http.Client{Transport: tr}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Do(ccRequest(srv.URL, reg))
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("token: %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMCPTokenValidation measures a protected /mcp request's token
// check: signature, claims and revocation state (ping is the cheapest MCP
// call, so the rest is mostly the check).
func BenchmarkMCPTokenValidation(b *testing.B) {
	for _, d := range storagetest.Drivers(b) {
		b.Run(d.Name, func(b *testing.B) {
			k, reg := ccInstance(b, d.Open)
			rec := httptest.NewRecorder()
			k.Handler().ServeHTTP(rec, ccRequest("", reg))
			tok := tokenFrom(b, rec.Body.String())
			claims, err := k.OAuth.VerifyAccessToken(context.Background(), tok)
			if err != nil || claims.ClientID != reg.Client.GetID() {
				b.Fatalf("verify: %v", err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := k.OAuth.VerifyAccessToken(context.Background(), tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func tokenFrom(b testing.TB, body string) string {
	i := strings.Index(body, `"access_token":"`)
	if i < 0 {
		b.Fatalf("no token in %s", body)
	}
	rest := body[i+len(`"access_token":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}
