package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/kavachos/kavach"
)

// load parses settings and turns them into a ready Config: logger, secret.
func load(name string, args []string, stderr io.Writer, getenv func(string) string) (*options, error) {
	return loadWith(name, args, stderr, getenv, nil)
}

// loadWith is load for commands with flags of their own, which extra adds.
func loadWith(name string, args []string, stderr io.Writer, getenv func(string) string, extra func(*flag.FlagSet)) (*options, error) {
	fs := flag.NewFlagSet("kavach "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if extra != nil {
		extra(fs)
	}
	o, err := parseSettings(fs, args, getenv)
	if err != nil {
		return nil, err
	}
	logger, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return nil, err
	}
	o.cfg.Logger = logger
	if o.cfg.Env == "" {
		o.cfg.Env = kavach.EnvDevelopment
	}
	if o.listen == "" {
		o.listen = "127.0.0.1:8080"
		if o.cfg.Env == kavach.EnvProduction {
			o.listen = ":8080"
		}
	}
	if err := resolveSecret(o, logger); err != nil {
		return nil, err
	}
	return o, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

const devSecretFile = "kavach.secret"

// resolveSecret takes the secret from the environment or flag, else from
// a secret file; in development it creates that file when missing. In
// production nothing is ever generated.
func resolveSecret(o *options, logger *slog.Logger) error {
	if o.cfg.Secret != "" {
		return nil
	}
	file := o.secretFile
	if file == "" {
		if o.cfg.Env == kavach.EnvProduction {
			return errors.New("production needs a secret: set KAVACH_SECRET or KAVACH_SECRET_FILE")
		}
		file = devSecretFile
	}
	b, err := os.ReadFile(file)
	switch {
	case err == nil:
		o.cfg.Secret = strings.TrimSpace(string(b))
		return nil
	case !errors.Is(err, fs.ErrNotExist) || o.cfg.Env == kavach.EnvProduction || o.secretFile != "":
		return fmt.Errorf("read secret file: %w", err)
	}
	var raw [48]byte
	_, _ = rand.Read(raw[:])
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write development secret: %w", err)
	}
	o.cfg.Secret = secret
	logger.Warn("DEVELOPMENT SECRET GENERATED: wrote a random secret to " + file +
		". Fine on a laptop; never in production — set KAVACH_ENV=production and KAVACH_SECRET (or KAVACH_SECRET_FILE).")
	return nil
}

func cmdVersion(stdout io.Writer) error {
	v := kavach.Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	_, err := fmt.Fprintf(stdout, "kavach %s\n", v)
	return err
}
