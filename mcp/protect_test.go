package mcp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// jwksServer publishes a key set over real HTTP and signs tokens with its
// keys, as an authorization server would. It counts fetches.
type jwksServer struct {
	t       *testing.T
	srv     *httptest.Server
	issuer  string
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey // kid → key
	publish []string                     // kids published
	extra   []jose.JSONWebKey            // published as they are
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{t: t, keys: map[string]*ecdsa.PrivateKey{}}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		j.fetches.Add(1)
		j.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), j.extra...)}
		for _, kid := range j.publish {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &j.keys[kid].PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"})
		}
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(j.srv.Close)
	j.issuer = j.srv.URL
	return j
}

// addKey makes a key and publishes it (or not).
func (j *jwksServer) addKey(kid string, publish bool) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		j.t.Fatal(err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys[kid] = k
	if publish {
		j.publish = append(j.publish, kid)
	}
}

// sign makes a token with the key kid; mutate may change the claims and
// the typ header.
func (j *jwksServer) sign(kid string, claims map[string]any, typ string) string {
	j.mu.Lock()
	k := j.keys[kid]
	j.mu.Unlock()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts)
	if err != nil {
		j.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		j.t.Fatal(err)
	}
	return tok
}

func (j *jwksServer) claims(now time.Time, aud string, scopes string) map[string]any {
	return map[string]any{"iss": j.issuer, "sub": "usr_1", "aud": aud, "client_id": "cli_1", "scope": scopes,
		"jti": "jti-" + scopes, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "trust_level": "standard"}
}

func TestJWKSVerifier(t *testing.T) {
	j := newJWKSServer(t)
	j.addKey("k1", true)
	now := time.Now()
	clock := now
	v, err := NewJWKSVerifier(JWKSConfig{Issuer: j.issuer, MinRefreshInterval: time.Minute, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	claims := j.claims(now, "https://mcp.example.com/mcp", "mcp tools:write")
	claims["act"] = map[string]any{"sub": "cli_child", "act": map[string]any{"sub": "cli_parent"}}
	info, err := v.VerifyAccessToken(ctx, j.sign("k1", claims, "at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Subject != "usr_1" || info.ClientID != "cli_1" || info.TrustLevel != "standard" || len(info.Scopes) != 2 ||
		info.Audience[0] != "https://mcp.example.com/mcp" || strings.Join(info.Actors, ",") != "cli_parent,cli_child" {
		t.Fatalf("info %+v", info)
	}
	// Known keys cost no fetch; a token seen before costs no signature
	// check, until it expires.
	first := j.sign("k1", claims, "at+jwt")
	for range 5 {
		if _, err := v.VerifyAccessToken(ctx, j.sign("k1", claims, "at+jwt")); err != nil {
			t.Fatal(err)
		}
	}
	if a, _ := v.VerifyAccessToken(ctx, first); a == nil {
		t.Fatal("first token")
	}
	if b, _ := v.VerifyAccessToken(ctx, first); b == nil {
		t.Fatal("first token again")
	}
	clock = now.Add(2 * time.Hour)
	if _, err := v.VerifyAccessToken(ctx, first); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a cached token past its expiry: %v", err)
	}
	clock = now
	if n := j.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for one key", n)
	}

	bad := func(what, token string) {
		t.Helper()
		if _, err := v.VerifyAccessToken(ctx, token); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("%s: %v", what, err)
		}
	}
	bad("not a JWT", "abc.def")
	bad("typ JWT", j.sign("k1", claims, "JWT"))
	expired := j.claims(now.Add(-2*time.Hour), "x", "mcp")
	bad("expired", j.sign("k1", expired, "at+jwt"))
	other := j.claims(now, "x", "mcp")
	other["iss"] = "https://evil.example.com"
	bad("another issuer", j.sign("k1", other, "at+jwt"))
	noClient := j.claims(now, "x", "mcp")
	delete(noClient, "client_id")
	bad("no client_id", j.sign("k1", noClient, "at+jwt"))
	// A key that signs but is not published: one fetch, then none for a
	// minute however many such tokens come.
	j.addKey("rogue", false)
	for range 10 {
		bad("unpublished key", j.sign("rogue", claims, "at+jwt"))
	}
	if n := j.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after unknown key ids within a minute of the last", n)
	}
	// Rotation: the server starts signing with a new key and publishes
	// it; a token with it makes one fetch once the minute is over.
	clock = clock.Add(2 * time.Minute)
	j.addKey("k2", true)
	if _, err := v.VerifyAccessToken(ctx, j.sign("k2", j.claims(clock, "x", "mcp"), "at+jwt")); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := j.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after rotation", n)
	}
	// A private key in the set is never used to verify.
	j.mu.Lock()
	priv := j.keys["rogue"]
	j.extra = append(j.extra, jose.JSONWebKey{Key: priv, KeyID: "rogue", Algorithm: "ES256"})
	j.mu.Unlock()
	clock = clock.Add(2 * time.Minute)
	bad("a key published with its private part", j.sign("rogue", j.claims(clock, "x", "mcp"), "at+jwt"))
}

// protectedServer is an mcp-go server with two tools behind Protect and
// a JWKSVerifier, on loopback.
func protectedServer(t *testing.T, j *jwksServer) (url string, seen *atomic.Value) {
	t.Helper()
	seen = &atomic.Value{}
	s := server.NewMCPServer("files", "1.0")
	handler := func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		info, _ := TokenFromContext(ctx)
		seen.Store(info)
		return mcpgo.NewToolResultText(req.Params.Name + " done"), nil
	}
	s.AddTool(mcpgo.NewTool("read_file"), handler)
	s.AddTool(mcpgo.NewTool("delete_file"), handler)
	srv := httptest.NewUnstartedServer(nil)
	url = "http://" + srv.Listener.Addr().String()
	v, err := NewJWKSVerifier(JWKSConfig{Issuer: j.issuer})
	if err != nil {
		t.Fatal(err)
	}
	h, err := Protect(server.NewStreamableHTTPServer(s, server.WithStateLess(true)), Protection{
		ResourceConfig: ResourceConfig{Resource: url + "/mcp", AuthorizationServers: []string{j.issuer},
			ScopesSupported: []string{"files:read", "files:delete"}, RequiredScopes: []string{"files:read"}, Verifier: v},
		ToolScopes:   map[string][]string{"delete_file": {"files:delete"}},
		MaxBodyBytes: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return url, seen
}

func TestProtect(t *testing.T) {
	j := newJWKSServer(t)
	j.addKey("k1", true)
	url, seen := protectedServer(t, j)
	ctx := context.Background()

	// The metadata names the authorization server.
	resp, err := http.Get(url + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	var prm map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&prm)
	resp.Body.Close()
	if prm["resource"] != url+"/mcp" || prm["authorization_servers"].([]any)[0] != j.issuer {
		t.Fatalf("metadata %v", prm)
	}
	// No token: 401 with the challenge.
	resp, err = http.Post(url+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	connect := func(scopes string) *mcpclient.Client {
		tok := j.sign("k1", j.claims(time.Now(), url+"/mcp", scopes), "at+jwt")
		c, err := mcpclient.NewStreamableHttpClient(url+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	call := func(c *mcpclient.Client, tool string) error {
		var req mcpgo.CallToolRequest
		req.Params.Name = tool
		_, err := c.CallTool(ctx, req)
		return err
	}
	reader := connect("files:read")
	if err := call(reader, "read_file"); err != nil {
		t.Fatal(err)
	}
	if info, _ := seen.Load().(*TokenInfo); info == nil || info.Subject != "usr_1" || info.TrustLevel != "standard" {
		t.Fatalf("the tool saw %+v", info)
	}
	// delete_file needs files:delete: refused before the server sees it.
	seen.Store((*TokenInfo)(nil))
	if err := call(reader, "delete_file"); err == nil {
		t.Fatal("delete_file without its scope went through")
	}
	if info, _ := seen.Load().(*TokenInfo); info != nil {
		t.Fatal("the server saw a call refused for scope")
	}
	tok := j.sign("k1", j.claims(time.Now(), url+"/mcp", "files:read"), "at+jwt")
	req, _ := http.NewRequest("POST", url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file"}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 403 || !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="files:read files:delete"`) {
		t.Fatalf("step-up challenge: %d %q", resp.StatusCode, ch)
	}
	if err := call(connect("files:read files:delete"), "delete_file"); err != nil {
		t.Fatalf("with the scope: %v", err)
	}
	// A wrong audience is refused; a huge body is 413.
	other := j.sign("k1", j.claims(time.Now(), "https://other.example.com/mcp", "files:read"), "at+jwt")
	req, _ = http.NewRequest("POST", url+"/mcp", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+other)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("another audience: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"x":"`+strings.Repeat("a", 70<<10)+`"}}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("a body over the bound: %d", resp.StatusCode)
	}

	// What the guard cannot read is not forwarded: a tools/call whose name
	// is not a string, a body that is not JSON-RPC, a compressed body.
	seen.Store((*TokenInfo)(nil))
	for _, c := range []struct {
		body, encoding string
		want           int
	}{
		{`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":7}}`, "", 400},
		{`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"delete_file"}`, "", 400},
		{`[{"jsonrpc":"2.0","id":7,"method":"ping"},{"jsonrpc":"2.0","id":8,"method":"tools/call"}]`, "", 400},
		{`not json`, "", 400},
		{`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_file"}}`, "gzip", 415},
	} {
		req, _ := http.NewRequest("POST", url+"/mcp", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+j.sign("k1", j.claims(time.Now(), url+"/mcp", "files:read files:delete"), "at+jwt"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if c.encoding != "" {
			req.Header.Set("Content-Encoding", c.encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("%s (%s): %d, want %d", c.body, c.encoding, resp.StatusCode, c.want)
		}
	}
	if info, _ := seen.Load().(*TokenInfo); info != nil {
		t.Fatal("the server saw a body the guard could not read")
	}

	// A browser on another origin is refused (DNS rebinding), with or
	// without a token; the resource's own origin is not.
	for _, c := range []struct {
		origin string
		want   int
	}{{"http://evil.example.com", 403}, {url, 401}, {"", 401}} {
		req, _ := http.NewRequest("POST", url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("origin %q: %d, want %d", c.origin, resp.StatusCode, c.want)
		}
	}

	// Protect refuses a tool scope the resource does not advertise.
	v, _ := NewJWKSVerifier(JWKSConfig{Issuer: j.issuer})
	if _, err := Protect(http.NotFoundHandler(), Protection{ResourceConfig: ResourceConfig{Resource: url + "/mcp",
		AuthorizationServers: []string{j.issuer}, Verifier: v}, ToolScopes: map[string][]string{"x": {"nope"}}}); err == nil {
		t.Fatal("an unadvertised tool scope was accepted")
	}
}

// BenchmarkProtectOverhead is what the kit adds to a request: bearer
// parsing, the token (verified once, then from the verifier's cache), the
// audience and scope checks, and reading a tools/call body for its tool's
// scopes; the server behind it does nothing. BenchmarkJWKSVerifyUncached
// is a token's first check.
func BenchmarkProtectOverhead(b *testing.B) {
	j := newJWKSServer(&testing.T{})
	defer j.srv.Close()
	j.addKey("k1", true)
	v, _ := NewJWKSVerifier(JWKSConfig{Issuer: j.issuer})
	resource := "https://files.example.com/mcp"
	h, err := Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }), Protection{
		ResourceConfig: ResourceConfig{Resource: resource, AuthorizationServers: []string{j.issuer},
			ScopesSupported: []string{"files:read", "files:delete"}, RequiredScopes: []string{"files:read"}, Verifier: v},
		ToolScopes: map[string][]string{"delete_file": {"files:delete"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	tok := j.sign("k1", j.claims(time.Now(), resource, "files:read"), "at+jwt")
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/motd"}}}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 204 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkJWKSVerifyUncached is a token's first check by the JWKS
// verifier, past its cache: the ES256 signature and the claims, against
// keys already fetched.
func BenchmarkJWKSVerifyUncached(b *testing.B) {
	j := newJWKSServer(&testing.T{})
	defer j.srv.Close()
	j.addKey("k1", true)
	v, _ := NewJWKSVerifier(JWKSConfig{Issuer: j.issuer})
	tok := j.sign("k1", j.claims(time.Now(), "https://files.example.com/mcp", "files:read"), "at+jwt")
	ctx := context.Background()
	if _, err := v.verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
