package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kavachos/kavach"
)

// cmdGateway runs Kavach's MCP gateway in front of an MCP server: the
// same configuration as serve (database, secret, resources), plus where
// the upstream is, the gateway's public MCP URL, and the name the
// upstream has in permissions. It issues no tokens itself; the server
// does, for the gateway's URL (which KAVACH_OAUTH_RESOURCES must list on
// both).
func cmdGateway(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var (
		upstreamURL, publicURL, serverName, gwListen string
		headers                                      stringList
		toolScopes                                   stringList
		origins                                      stringList
		approvalWait                                 time.Duration
	)
	o, err := loadWith("gateway", args, stderr, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&upstreamURL, "upstream", getenv("KAVACH_GATEWAY_UPSTREAM"), "the upstream MCP endpoint, e.g. http://127.0.0.1:9000/mcp (KAVACH_GATEWAY_UPSTREAM)")
		fs.StringVar(&publicURL, "public-url", getenv("KAVACH_GATEWAY_PUBLIC_URL"), "the gateway's MCP URL as clients use it; one of KAVACH_OAUTH_RESOURCES (KAVACH_GATEWAY_PUBLIC_URL)")
		fs.StringVar(&serverName, "server-name", getenv("KAVACH_GATEWAY_SERVER_NAME"), "the upstream's name in permissions: tool T is resource mcp:<name>:T (KAVACH_GATEWAY_SERVER_NAME)")
		fs.StringVar(&gwListen, "gateway-listen", cmp.Or(getenv("KAVACH_GATEWAY_LISTEN"), "127.0.0.1:8081"), "where the gateway listens (KAVACH_GATEWAY_LISTEN)")
		fs.Var(&headers, "upstream-header", `a header sent upstream with every request, "Name: value" (repeatable; the client's token never is)`)
		fs.Var(&toolScopes, "tool-scope", `a scope a tool's calls need, "tool=scope" (repeatable)`)
		fs.Var(&origins, "allowed-origin", `a browser origin that may call the gateway besides its own, "https://app.example.com" (repeatable)`)
		fs.DurationVar(&approvalWait, "approval-wait", kavach.DefaultApprovalWait, "how long a call that needs approval waits for it (0: answer APPROVAL_REQUIRED at once)")
	})
	if err != nil {
		return err
	}
	if upstreamURL == "" || publicURL == "" || serverName == "" {
		return errors.New("gateway: --upstream, --public-url and --server-name are required")
	}
	opts := kavach.GatewayOptions{Upstream: upstreamURL, PublicURL: publicURL, ServerName: serverName,
		UpstreamHeader: http.Header{}, ToolScopes: map[string][]string{}, ApprovalWait: approvalWait, AllowedOrigins: origins}
	if approvalWait == 0 {
		opts.ApprovalWait = -1
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("gateway: --upstream-header %q: want \"Name: value\"", h)
		}
		opts.UpstreamHeader.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	for _, ts := range toolScopes {
		tool, scope, ok := strings.Cut(ts, "=")
		if !ok || tool == "" || scope == "" {
			return fmt.Errorf("gateway: --tool-scope %q: want tool=scope", ts)
		}
		opts.ToolScopes[tool] = append(opts.ToolScopes[tool], scope)
	}
	logger := o.cfg.Logger
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	k, err := kavach.New(ctx, o.cfg)
	if err != nil {
		return err
	}
	defer k.Close()
	h, err := k.Gateway(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", gwListen)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", gwListen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	logger.Info("kavach gateway is running", "listen", ln.Addr().String(), "public", publicURL, "upstream", upstreamURL, "server", serverName)
	fmt.Fprintf(stdout, "Kavach gateway is listening on http://%s — %s → %s\n", ln.Addr(), publicURL, upstreamURL)
	return serveUntilDone(ctx, srv, ln, o.shutdownTimeout, logger)
}
