// Command protected-mcp-server is a small MCP server (mcp-go, Streamable
// HTTP) that Kavach protects with the resource-server kit of package
// github.com/kavachos/kavach/mcp: clients discover Kavach from its
// metadata, get a token for it, and call its tools; each tool sees who
// called it. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/kavachos/kavach/mcp"
)

func main() {
	if err := run(os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "protected-mcp-server:", err)
		os.Exit(1)
	}
}

// config is read from the environment.
type config struct {
	issuer   string // Kavach's base URL (KAVACH_ISSUER)
	resource string // this server's MCP URL, as clients use it (RESOURCE_URL)
	addr     string // where to listen (LISTEN_ADDR)
}

func configFrom(getenv func(string) string) (config, error) {
	c := config{issuer: getenv("KAVACH_ISSUER"), resource: getenv("RESOURCE_URL"), addr: getenv("LISTEN_ADDR")}
	if c.issuer == "" {
		c.issuer = "http://localhost:8080"
	}
	if c.resource == "" {
		c.resource = "http://localhost:8081/mcp"
	}
	if c.addr == "" {
		c.addr = "localhost:8081"
	}
	return c, nil
}

func run(getenv func(string) string) error {
	cfg, err := configFrom(getenv)
	if err != nil {
		return err
	}
	h, err := newHandler(cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: cfg.addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	slog.Info("protected MCP server", "listen", cfg.addr, "resource", cfg.resource, "authorization server", cfg.issuer)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler is the whole server: the tools, and Kavach in front of them.
func newHandler(cfg config) (http.Handler, error) {
	s := server.NewMCPServer("notes", "1.0", server.WithToolCapabilities(false))
	notes := &noteBook{}
	s.AddTool(mcpgo.NewTool("list_notes", mcpgo.WithDescription("The notes, newest first."),
		mcpgo.WithReadOnlyHintAnnotation(true)), notes.list)
	s.AddTool(mcpgo.NewTool("add_note", mcpgo.WithDescription("Add a note; it records who added it."),
		mcpgo.WithString("text", mcpgo.Required(), mcpgo.Description("The note"))), notes.add)

	verifier, err := mcp.NewJWKSVerifier(mcp.JWKSConfig{Issuer: cfg.issuer})
	if err != nil {
		return nil, err
	}
	return mcp.Protect(server.NewStreamableHTTPServer(s, server.WithStateLess(true)), mcp.Protection{
		ResourceConfig: mcp.ResourceConfig{
			Resource:             cfg.resource,
			AuthorizationServers: []string{cfg.issuer},
			// Kavach's scopes: "mcp" for every call; add_note also needs
			// "email" here, to show a per-tool scope.
			ScopesSupported: []string{"mcp", "email"},
			RequiredScopes:  []string{"mcp"},
			ResourceName:    "Notes",
			Verifier:        verifier,
		},
		ToolScopes: map[string][]string{"add_note": {"email"}},
	})
}

// noteBook is the server's state: notes in memory.
type noteBook struct {
	mu    sync.Mutex
	notes []string
}

func (n *noteBook) list(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.notes) == 0 {
		return mcpgo.NewToolResultText("no notes yet"), nil
	}
	out := make([]string, len(n.notes))
	for i, s := range n.notes {
		out[len(n.notes)-1-i] = s
	}
	return mcpgo.NewToolResultText(strings.Join(out, "\n")), nil
}

func (n *noteBook) add(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	text, err := req.RequireString("text")
	if err != nil || strings.TrimSpace(text) == "" {
		return mcpgo.NewToolResultError("text: a non-empty string is required"), nil
	}
	// Protect put the verified token in the context: who is calling, for
	// whom, and how much Kavach trusts the calling agent.
	who := "someone"
	if info, ok := mcp.TokenFromContext(ctx); ok {
		who = info.ClientID
		if info.Subject != info.ClientID {
			who += " for " + info.Subject
		}
		if info.TrustLevel != "" {
			who += " (trust: " + info.TrustLevel + ")"
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, text+" — "+who)
	return mcpgo.NewToolResultText("added"), nil
}
