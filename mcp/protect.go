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
	"slices"
	"strconv"
	"strings"
)

// Protection describes an MCP server to protect with Protect.
type Protection struct {
	// ResourceConfig is the protected resource: its URL (the tokens'
	// audience), the authorization server (Kavach's issuer), the scopes it
	// advertises and requires on every request, and the Verifier
	// (a JWKSVerifier, or an IntrospectionVerifier for opaque tokens).
	ResourceConfig
	// ToolScopes are the scopes a tools/call of a tool needs besides
	// RequiredScopes. A call without them is answered 403
	// insufficient_scope with the scopes to ask for (the MCP spec's
	// step-up), before the server sees it. Every scope here must be in
	// ScopesSupported.
	ToolScopes map[string][]string
	// Calls, when set, decides every tools/call before the server sees
	// it (KavachDecisions asks Kavach's decision point). A refused call is
	// answered with a tool error naming the reason.
	Calls CallGate
	// MaxBodyBytes bounds the JSON-RPC bodies read to find tool calls;
	// default 4 MiB. Larger requests are refused with 413.
	MaxBodyBytes int64
	// AllowedOrigins are the origins ("https://app.example.com") browser
	// clients may call from, besides the resource's own. A request whose
	// Origin header names another is refused with 403, as the MCP
	// transport asks against DNS rebinding. Requests without an Origin
	// header (every non-browser client) are not affected.
	AllowedOrigins []string
}

// CallGate decides tool calls.
type CallGate interface {
	Call(ctx context.Context, info *TokenInfo, tool string, arguments json.RawMessage) (ToolVerdict, error)
}

// DefaultMaxBodyBytes bounds the request bodies Protect reads.
const DefaultMaxBodyBytes = 4 << 20

// Validate reports whether p can protect a server.
func (p Protection) Validate() error {
	if err := p.ResourceConfig.Validate(); err != nil {
		return err
	}
	for tool, scopes := range p.ToolScopes {
		for _, s := range scopes {
			if !slices.Contains(p.ScopesSupported, s) {
				return fmt.Errorf("mcp: ToolScopes[%q]: scope %q is not in ScopesSupported", tool, s)
			}
		}
	}
	if p.MaxBodyBytes < 0 {
		return errors.New("mcp: MaxBodyBytes must not be negative")
	}
	return nil
}

// Protect puts an MCP server (a server.StreamableHTTPServer, or any
// http.Handler) behind Kavach, in one call:
//
//   - its RFC 9728 protected resource metadata at MetadataPath(Resource),
//     naming the authorization server, for clients to discover;
//   - every other request needs a valid bearer token for Resource with
//     RequiredScopes (RequireBearer: 401 with a challenge, 403
//     insufficient_scope);
//   - a tools/call of a tool listed in ToolScopes also needs those scopes;
//   - the verified token reaches tool handlers in the request context
//     (TokenFromContext): subject, client, actors of a delegation chain,
//     trust level, scopes.
//
// Mount the result at the server's root (it answers the metadata path
// itself). It returns an error when p does not Validate.
func Protect(next http.Handler, p Protection) (http.Handler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	metaPath, err := MetadataPath(p.Resource)
	if err != nil {
		return nil, err
	}
	if p.MaxBodyBytes == 0 {
		p.MaxBodyBytes = DefaultMaxBodyBytes
	}
	prm, _ := metadataURL(p.Resource)
	guarded := next
	if len(p.ToolScopes) > 0 || p.Calls != nil {
		guarded = &toolGuard{next: next, scopes: p.ToolScopes, required: p.RequiredScopes, calls: p.Calls, max: p.MaxBodyBytes, prm: prm,
			logger: p.logger()}
	}
	mux := http.NewServeMux()
	mux.Handle(metaPath, MetadataHandler(p.ResourceConfig)) // public, any origin
	mux.Handle("/", originGuard(p, RequireBearer(p.ResourceConfig, guarded)))
	return mux, nil
}

// originGuard refuses requests from browsers on origins p does not allow.
func originGuard(p Protection, next http.Handler) http.Handler {
	own, _ := parseResource(p.Resource)
	allowed := []string{own.Scheme + "://" + own.Host}
	for _, o := range p.AllowedOrigins {
		allowed = append(allowed, strings.TrimSuffix(o, "/"))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, o) }) {
			writeOAuthError(w, http.StatusForbidden, jsonError("invalid_request", "Requests from this origin are not allowed."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// toolGuard refuses tools/call requests whose token lacks the tool's
// scopes, or that the CallGate refuses. It reads the JSON-RPC body
// (bounded) and hands an identical one on.
type toolGuard struct {
	next     http.Handler
	scopes   map[string][]string
	required []string
	calls    CallGate
	max      int64
	prm      string
	logger   *slog.Logger
}

// callerKey carries the client's address and User-Agent to a CallGate.
type callerKey struct{}

type callerInfo struct {
	remoteAddr, userAgent string
}

func (p Protection) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// rpcMessage is the part of a JSON-RPC request the guards read.
type rpcMessage struct {
	Method string          `json:"method"`
	ID     json.RawMessage `json:"id"`
	Params json.RawMessage `json:"params"`
	// Name and Arguments are a tools/call's (readMessage fills them).
	Name      string          `json:"-"`
	Arguments json.RawMessage `json:"-"`
}

// errUnreadable refuses a request body the guards cannot read as JSON-RPC:
// what they cannot read they cannot check, so it is not forwarded.
var errUnreadable = errors.New("the body is not one JSON-RPC message the guard can read")

// readMessage reads the body of a POST and returns it with the JSON-RPC
// message it holds (nil for an empty body and for other methods). It
// reads strictly, so that whatever parser the server behind uses reads the
// same message: one JSON object (batches were removed from MCP, and each
// call in one would be a decision of its own), no key that appears twice —
// also not in another case, since Go's parser matches keys
// case-insensitively and others do not — at the top level or in a
// tools/call's params, a string name in a tools/call. Anything else, and a
// compressed body (Content-Encoding), gives errUnreadable: what the guard
// cannot read, it does not forward.
func readMessage(w http.ResponseWriter, r *http.Request, max int64) (body []byte, msg *rpcMessage, tooLarge bool, err error) {
	if r.Method != http.MethodPost || r.Body == nil {
		return nil, nil, false, nil
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, nil, false, errUnreadable
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, nil, true, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return body, nil, false, nil
	}
	var m rpcMessage
	if trimmed[0] != '{' || !distinctKeys(body) || json.Unmarshal(body, &m) != nil {
		return nil, nil, false, errUnreadable
	}
	if m.Method == "tools/call" {
		var p struct {
			Name      *string         `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if !distinctKeys(m.Params) || json.Unmarshal(m.Params, &p) != nil || p.Name == nil {
			return nil, nil, false, errUnreadable
		}
		m.Name, m.Arguments = *p.Name, p.Arguments
	}
	return body, &m, false, nil
}

// distinctKeys reports whether raw is one JSON object whose keys are
// distinct, compared case-insensitively, with nothing after it.
func distinctKeys(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		key, ok := t.(string)
		if !ok || seen[strings.ToLower(key)] {
			return false
		}
		seen[strings.ToLower(key)] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// writeUnreadable answers a body readMessage refused: a JSON-RPC parse
// error, or 415 for a compressed body.
func writeUnreadable(w http.ResponseWriter, r *http.Request) {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		writeOAuthError(w, http.StatusUnsupportedMediaType, jsonError("invalid_request", "Compressed request bodies are not accepted."))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: the body is not a JSON-RPC message the gateway can check."}}`))
}

// messageKey carries the message toolGuard read to the handler behind it
// (the gateway reads a tools/list's id from it).
type messageKey struct{}

func (g *toolGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, m, tooLarge, err := readMessage(w, r, g.max)
	switch {
	case tooLarge:
		writeOAuthError(w, http.StatusRequestEntityTooLarge, jsonError("invalid_request", "The request body is too large."))
		return
	case errors.Is(err, errUnreadable):
		writeUnreadable(w, r)
		return
	case err != nil:
		writeOAuthError(w, http.StatusBadRequest, jsonError("invalid_request", "The request body could not be read."))
		return
	}
	if body != nil {
		// Chunked bodies go on with a length.
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	info, _ := TokenFromContext(r.Context())
	if m != nil && m.Method == "tools/call" && info != nil {
		if need := g.scopes[m.Name]; !hasAll(info.Scopes, need) {
			all := append(slices.Clone(g.required), need...)
			newRejection(http.StatusForbidden, "insufficient_scope", g.prm, strings.Join(all, " "),
				"insufficient_scope", fmt.Sprintf("Calling %q needs scope %s.", m.Name, strings.Join(need, " "))).write(w)
			return
		}
		if g.calls != nil {
			ctx := context.WithValue(r.Context(), callerKey{}, callerInfo{remoteAddr: r.RemoteAddr, userAgent: r.UserAgent()})
			v, err := g.calls.Call(ctx, info, m.Name, m.Arguments)
			if err != nil {
				if ctx.Err() == nil {
					g.logger.Error("mcp: deciding a tool call", "tool", m.Name, "err", err)
				}
				v = ToolVerdict{Code: "UNAVAILABLE", Message: "The call could not be decided; try again."}
			}
			if !v.Allowed {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(toolRefusal(m.ID, v))
				return
			}
		}
	}
	if m != nil {
		r = r.WithContext(context.WithValue(r.Context(), messageKey{}, m))
	}
	g.next.ServeHTTP(w, r)
}

func hasAll(have, need []string) bool {
	for _, s := range need {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}
