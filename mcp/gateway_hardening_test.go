package mcp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// hardGate allows every tool but "danger", and shows only "safe".
type hardGate struct {
	mu      sync.Mutex
	decided []string
}

func (g *hardGate) Visible(_ context.Context, _ *TokenInfo, tools []string) ([]bool, error) {
	out := make([]bool, len(tools))
	for i, t := range tools {
		out[i] = t == "safe"
	}
	return out, nil
}

func (g *hardGate) Call(_ context.Context, _ *TokenInfo, tool string, _ json.RawMessage) (ToolVerdict, error) {
	g.mu.Lock()
	g.decided = append(g.decided, tool)
	g.mu.Unlock()
	if tool == "danger" {
		return ToolVerdict{Code: "DENIED", Message: "no"}, nil
	}
	return ToolVerdict{Allowed: true}, nil
}

func hardGateway(t *testing.T, up http.Handler, g *hardGate) http.Handler {
	t.Helper()
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	v := &fakeVerifier{tokens: map[string]*TokenInfo{"good": tokenFor([]string{testResource}, "mcp:tools", "profile")}}
	h, err := NewGateway(GatewayConfig{Protection: Protection{ResourceConfig: testConfig(v)}, Upstream: upSrv.URL + "/mcp", Gate: g})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func r2Post(h http.Handler, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "https://auth.example.com/mcp", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer good")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// A case-sensitive upstream (TypeScript/Python SDKs; JSON.parse) runs a
// tool the gate never decided, or decided under another name.
func TestHardeningCaseInsensitiveKeys(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any // exact, case-sensitive keys; last duplicate wins
		_ = json.NewDecoder(r.Body).Decode(&m)
		if m["method"] == "tools/call" {
			mu.Lock()
			ran = append(ran, m["params"].(map[string]any)["name"].(string))
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	})
	g := &hardGate{}
	h := hardGateway(t, up, g)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"danger","NAME":"safe"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"danger"},"Method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"danger"},"METHOD":1}`,
	} {
		rec := r2Post(h, []byte(body), nil)
		t.Logf("%s -> %d %s", body, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	t.Logf("gate decided %v; upstream ran %v", g.decided, ran)
	if len(ran) > 0 {
		t.Errorf("upstream ran %v although the gate refuses danger", ran)
	}
}

// Gzip request body: the guard sees bytes it cannot parse and forwards.
func TestHardeningGzipRequest(t *testing.T) {
	var ran []string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			rd, _ = gzip.NewReader(r.Body) // an upstream behind a decompressing middleware
		}
		var m struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		_ = json.NewDecoder(rd).Decode(&m)
		if m.Method == "tools/call" {
			ran = append(ran, m.Params.Name)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	})
	g := &hardGate{}
	h := hardGateway(t, up, g)
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = io.WriteString(zw, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"danger"}}`)
	_ = zw.Close()
	r2Post(h, b.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	t.Logf("gate decided %v; upstream ran %v", g.decided, ran)
	if len(ran) > 0 {
		t.Errorf("upstream ran %v undecided", ran)
	}
}

// With a real mcp-go upstream, a tools/list whose id the upstream spells
// differently in its answer (1.0 -> 1) is not filtered.
func TestHardeningListIDSpelling(t *testing.T) {
	s := server.NewMCPServer("files", "1.0")
	for _, n := range []string{"safe", "danger"} {
		s.AddTool(mcpgo.NewTool(n), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultText("ok"), nil
		})
	}
	h := hardGateway(t, server.NewStreamableHTTPServer(s, server.WithStateLess(true)), &hardGate{})
	hdr := map[string]string{"Mcp-Protocol-Version": "2025-06-18"}
	for _, id := range []string{`1`, `1.0`, `"\u0061"`, `1e0`} {
		rec := r2Post(h, []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"tools/list","params":{}}`), hdr)
		leaked := strings.Contains(rec.Body.String(), `"danger"`)
		t.Logf("id %s -> %d leaked=%v %.200s", id, rec.Code, leaked, rec.Body.String())
		if leaked {
			t.Errorf("id %s: tools/list answer not filtered", id)
		}
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"safe"`) {
			t.Errorf("id %s: %d, want the filtered list with the safe tool: %.200s", id, rec.Code, rec.Body.String())
		}
	}
}

// The client's Accept-Encoding: gzip does not reach the upstream, so the
// answer comes back plain and is filtered.
func TestHardeningListGzipResponse(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"safe"},{"name":"danger"}]}}`
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, body)
			_ = zw.Close()
			return
		}
		_, _ = io.WriteString(w, body)
	})
	h := hardGateway(t, up, &hardGate{})
	rec := r2Post(h, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), map[string]string{"Accept-Encoding": "gzip"})
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		// The gateway asked for an uncompressed answer and filtered it.
		if out := rec.Body.String(); strings.Contains(out, "danger") || !strings.Contains(out, "safe") {
			t.Errorf("tools/list answer not filtered: %s", out)
		}
		return
	}
	out, _ := io.ReadAll(zr)
	t.Logf("client got (gunzipped): %s", out)
	if strings.Contains(string(out), "danger") {
		t.Error("compressed tools/list answer not filtered")
	}
}

// A tools/list answered with a JSON array, or as an SSE event whose data
// is split over lines, is filtered too.
func TestHardeningListShapes(t *testing.T) {
	for name, c := range map[string]struct{ ct, body string }{
		"batch array":         {"application/json", `[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"safe"},{"name":"danger"}]}}]`},
		"sse multi-line data": {"text/event-stream", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"tools\":[{\"name\":\"safe\"},{\"name\":\"danger\"}]}}\n\n"},
	} {
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", c.ct)
			_, _ = io.WriteString(w, c.body)
		})
		h := hardGateway(t, up, &hardGate{})
		rec := r2Post(h, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), nil)
		if out := rec.Body.String(); strings.Contains(out, "danger") || !strings.Contains(out, "safe") {
			t.Errorf("%s: not filtered: %s", name, out)
		}
	}
}
