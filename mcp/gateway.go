package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
)

// ToolGate decides what a caller may do with an upstream server's tools
// (package kavach implements it with its decision point).
type ToolGate interface {
	// Visible reports, for each tool, whether the caller may see it in
	// tools/list.
	Visible(ctx context.Context, info *TokenInfo, tools []string) ([]bool, error)
	// Call decides a tools/call. It may block, while a person decides on
	// an approval, until ctx ends.
	Call(ctx context.Context, info *TokenInfo, tool string, arguments json.RawMessage) (ToolVerdict, error)
}

// ToolVerdict is a ToolGate's answer to a call.
type ToolVerdict struct {
	Allowed bool
	Code    string // a stable reason code when refused
	Message string // for the model and its user when refused
}

// GatewayConfig configures NewGateway.
type GatewayConfig struct {
	// Protection is the gateway as a protected resource: its public URL
	// (the tokens' audience), the authorization server, scopes, tool
	// scopes and the Verifier.
	Protection
	// Upstream is the MCP endpoint the gateway forwards to, e.g.
	// http://127.0.0.1:9000/mcp. Requests keep their path below the
	// gateway's own: a request to the gateway's resource path goes to
	// Upstream.
	Upstream string
	// UpstreamHeader is sent with every upstream request (credentials for
	// the upstream, say). The client's Authorization header is never
	// forwarded.
	UpstreamHeader http.Header
	// Gate decides calls and filters tools/list; required.
	Gate ToolGate
	// Transport reaches the upstream; default http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// maxListBytes bounds a tools/list answer the gateway filters.
const maxListBytes = 8 << 20

type gatewayCtxKey struct{}

// gatewayRequest is what the proxy remembers about a request for its
// response: the canonical id of a tools/list request, whose answer it
// filters ("" for other requests).
type gatewayRequest struct {
	listID string
	info   *TokenInfo
}

// NewGateway returns a reverse proxy that puts Kavach in front of any
// Streamable HTTP MCP server: OAuth as Protect does it, each tools/call
// decided by Gate before it is forwarded (a refused call is answered with
// a tool error and never reaches the upstream), tools/list answers
// filtered to the tools the caller may call, and everything else —
// streaming responses, GET event streams, session ids — passed through
// untouched. The client's token stays at the gateway.
func NewGateway(cfg GatewayConfig) (http.Handler, error) {
	if cfg.Gate == nil {
		return nil, errors.New("mcp: GatewayConfig.Gate is required")
	}
	up, err := url.Parse(cfg.Upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return nil, fmt.Errorf("mcp: GatewayConfig.Upstream %q must be an http or https URL", cfg.Upstream)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	// The tool guard Protect puts in front reads each message once and
	// decides each tools/call with the Gate.
	cfg.Calls = cfg.Gate
	g := &gateway{cfg: cfg, upstream: up}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		ModifyResponse: g.modifyResponse,
		Transport:      cfg.Transport,
		FlushInterval:  -1, // event streams go out as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				cfg.Logger.Error("mcp gateway: upstream", "err", err)
			}
			writeOAuthError(w, http.StatusBadGateway, jsonError("upstream_unavailable", "The MCP server behind the gateway did not answer."))
		},
	}
	return Protect(g, cfg.Protection)
}

type gateway struct {
	cfg      GatewayConfig
	upstream *url.URL
	proxy    *httputil.ReverseProxy
}

func (g *gateway) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(g.upstream)
	pr.Out.URL.Path, pr.Out.URL.RawPath = g.upstream.Path, g.upstream.RawPath
	pr.Out.Host = g.upstream.Host
	pr.Out.Header.Del("Authorization") // the client's token stays here
	pr.Out.Header.Del("Cookie")
	// Answers come back uncompressed, so that tools/list can be filtered.
	pr.Out.Header.Del("Accept-Encoding")
	for k, vs := range g.cfg.UpstreamHeader {
		pr.Out.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
}

// ServeHTTP runs behind Protect's tool guard (Calls is the Gate), which
// has read the message and decided a tools/call; it notes a tools/list's
// id, for the answer's filter, and forwards.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, _ := TokenFromContext(r.Context())
	st := &gatewayRequest{info: info}
	if m, ok := r.Context().Value(messageKey{}).(*rpcMessage); ok && m.Method == "tools/list" {
		st.listID = canonicalID(m.ID)
	}
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), gatewayCtxKey{}, st)))
}

// toolRefusal is the JSON-RPC answer to a refused call: a tool result
// with isError, which the model sees (MCP reports tool-level failures
// this way, not as protocol errors).
func toolRefusal(id json.RawMessage, v ToolVerdict) json.RawMessage {
	text := v.Message
	if v.Code != "" {
		text = v.Code + ": " + text
	}
	out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
		"content": []map[string]any{{"type": "text", "text": text}}, "isError": true,
		"structuredContent": map[string]any{"code": v.Code, "reason": v.Message},
	}})
	return out
}

// modifyResponse filters tools/list answers, in JSON or in an event
// stream; everything else passes as it is.
func (g *gateway) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(gatewayCtxKey{}).(*gatewayRequest)
	if st == nil || st.listID == "" || resp.StatusCode != http.StatusOK {
		return nil
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return errors.New("mcp gateway: a compressed tools/list answer cannot be filtered")
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxListBytes+1))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if len(raw) > maxListBytes {
		return errors.New("mcp gateway: a tools/list answer over 8 MiB")
	}
	ctx := resp.Request.Context()
	ct := resp.Header.Get("Content-Type")
	var out []byte
	if strings.HasPrefix(ct, "text/event-stream") {
		out, err = g.filterStream(ctx, st, raw)
	} else {
		out, err = g.filterMessage(ctx, st, raw)
	}
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// filterStream filters the data of each event of an SSE body. An event's
// data may span several "data:" lines (joined with newlines, as SSE
// says); the filtered data goes out as one line, the event's other fields
// as they were.
func (g *gateway) filterStream(ctx context.Context, st *gatewayRequest, raw []byte) ([]byte, error) {
	raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	var out bytes.Buffer
	for _, event := range bytes.SplitAfter(raw, []byte("\n\n")) {
		var data [][]byte
		var other []byte
		for _, line := range bytes.Split(bytes.TrimRight(event, "\n"), []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				data = append(data, bytes.TrimPrefix(d, []byte(" ")))
				continue
			}
			other = append(append(other, line...), '\n')
		}
		if data == nil {
			out.Write(event)
			continue
		}
		f, err := g.filterMessage(ctx, st, bytes.Join(data, []byte("\n")))
		if err != nil {
			return nil, err
		}
		out.Write(other)
		out.WriteString("data: ")
		out.Write(f)
		out.WriteString("\n\n")
	}
	return out.Bytes(), nil
}

// filterMessage removes from a tools/list result the tools the caller
// may not call. Messages that are not one of the request's tools/list
// answers pass unchanged.
func (g *gateway) filterMessage(ctx context.Context, st *gatewayRequest, raw []byte) ([]byte, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		// An upstream that answers with an array: each element on its own.
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return raw, nil
		}
		for i, e := range elems {
			f, err := g.filterMessage(ctx, st, e)
			if err != nil {
				return nil, err
			}
			elems[i] = f
		}
		return json.Marshal(elems)
	}
	var msg struct {
		ID     json.RawMessage            `json:"id"`
		Result map[string]json.RawMessage `json:"result"`
	}
	if json.Unmarshal(raw, &msg) != nil || msg.Result == nil || canonicalID(msg.ID) != st.listID {
		return raw, nil
	}
	var tools []json.RawMessage
	if json.Unmarshal(msg.Result["tools"], &tools) != nil {
		return raw, nil
	}
	names := make([]string, len(tools))
	for i, t := range tools {
		var n struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(t, &n)
		names[i] = n.Name
	}
	visible, err := g.cfg.Gate.Visible(ctx, st.info, names)
	if err != nil {
		return nil, err
	}
	kept := make([]json.RawMessage, 0, len(tools))
	for i, t := range tools {
		if i < len(visible) && visible[i] {
			kept = append(kept, t)
		}
	}
	var full map[string]json.RawMessage
	if err := json.Unmarshal(raw, &full); err != nil {
		return raw, nil
	}
	msg.Result["tools"], _ = json.Marshal(kept)
	full["result"], _ = json.Marshal(msg.Result)
	return json.Marshal(full)
}

// canonicalID spells a JSON-RPC id one way, so that the answer's id
// matches the request's however either was written ("\u0031" is "1", 1.0
// is 1).
func canonicalID(id json.RawMessage) string {
	var v any
	if json.Unmarshal(id, &v) != nil {
		return string(id)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(id)
	}
	return string(b)
}
