// Command upstream is the MCP server the interop tests put behind
// `kavach gateway`: an mcp-go server with no OAuth of its own, which
// answers only requests carrying the key the gateway is configured to
// send (UPSTREAM_KEY in X-Upstream-Key) and refuses any that carries an
// Authorization header, since the gateway must never forward the
// client's token.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	listen, key := os.Getenv("UPSTREAM_LISTEN"), os.Getenv("UPSTREAM_KEY")
	if listen == "" || key == "" {
		fmt.Fprintln(os.Stderr, "upstream: UPSTREAM_LISTEN and UPSTREAM_KEY are required")
		os.Exit(2)
	}
	s := server.NewMCPServer("files", "1.0")
	for _, name := range []string{"read_file", "deploy", "secret_tool"} {
		s.AddTool(mcpgo.NewTool(name, mcpgo.WithDescription("interop tool "+name)),
			func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
				return mcpgo.NewToolResultText(req.Params.Name + " done"), nil
			})
	}
	mcp := server.NewStreamableHTTPServer(s, server.WithStateLess(true))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			w.WriteHeader(http.StatusNoContent)
		case r.Header.Get("Authorization") != "":
			http.Error(w, "a client token reached the upstream", http.StatusBadRequest)
		case r.Header.Get("X-Upstream-Key") != key:
			http.Error(w, "no upstream key", http.StatusUnauthorized)
		default:
			mcp.ServeHTTP(w, r)
		}
	})
	srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
