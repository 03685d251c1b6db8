package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o, err := load("serve", args, stderr, getenv)
	if err != nil {
		return err
	}
	logger := o.cfg.Logger
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	k, err := kavach.New(ctx, o.cfg)
	if err != nil {
		return err
	}
	defer k.Close()
	cfg := k.Config()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	srv := &http.Server{
		Handler:           k.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	logger.Info("kavach is running", "url", cfg.BaseURL, "listen", ln.Addr().String(),
		"env", cfg.Env, "database", k.Store.Dialect(), "version", kavach.Version)
	fmt.Fprintf(stdout, "Kavach is listening on http://%s — public URL %s\n", ln.Addr(), cfg.BaseURL)

	if err := serveUntilDone(ctx, srv, ln, o.shutdownTimeout, logger); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// serveUntilDone serves ln until ctx ends, then shuts srv down, waiting
// up to timeout for requests in flight.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down; waiting for in-flight requests", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	store, err := openStore(ctx, "migrate", args, stderr, getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	before, err := store.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	after, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s schema at version %d (was %d)\n", store.Dialect(), after, before)
	return err
}

// openStore loads the settings and opens (without migrating) the store
// they name, for commands that need the database but not a server.
func openStore(ctx context.Context, name string, args []string, stderr io.Writer, getenv func(string) string) (storage.Store, error) {
	o, err := load(name, args, stderr, getenv)
	if err != nil {
		return nil, err
	}
	return kavach.OpenStore(ctx, o.cfg.Defaults().DatabaseURL)
}
