package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// runCLI runs the command in process and returns its exit code and output.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, envFrom(env))
	return code, out.String(), errb.String()
}

// databases returns one database URL per driver under test.
func databases(t *testing.T) map[string]string {
	dbs := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "cli.db")}
	if u := os.Getenv(storagetest.EnvPostgresURL); u != "" {
		dbs["postgres"] = storagetest.PostgresSchema(t, u)
	}
	return dbs
}

func TestProductionRefusesUnsafeStart(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no secret", map[string]string{"KAVACH_ENV": "production", "KAVACH_BASE_URL": "https://auth.example.com"}, "needs a secret"},
		{"no base URL", map[string]string{"KAVACH_ENV": "production", "KAVACH_SECRET": strings.Repeat("s", 40)}, "base URL is required"},
		{"short secret", map[string]string{"KAVACH_ENV": "production", "KAVACH_SECRET": "short", "KAVACH_BASE_URL": "https://a.example.com"}, "at least 32 bytes"},
		{"bad env", map[string]string{"KAVACH_ENV": "staging", "KAVACH_SECRET": strings.Repeat("s", 40)}, "env must be"},
		{"bad duration", map[string]string{"KAVACH_SESSION_TTL": "forever"}, "KAVACH_SESSION_TTL"},
		{"insecure metadata fetching", map[string]string{"KAVACH_ENV": "production", "KAVACH_SECRET": strings.Repeat("s", 40),
			"KAVACH_BASE_URL": "https://a.example.com", "KAVACH_SMTP_HOST": "smtp.example.com", "KAVACH_OAUTH_ALLOW_INSECURE_CLIENT_METADATA": "true"}, "development only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			code, _, stderr := runCLI(t, c.env, "", "serve", "--listen", "127.0.0.1:0")
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want failure mentioning %q", code, stderr, c.want)
			}
		})
	}
}

func TestDevelopmentSecretIsGeneratedOnceAndKept(t *testing.T) {
	t.Chdir(t.TempDir())
	code, _, stderr := runCLI(t, nil, "", "migrate")
	if code != 0 {
		t.Fatalf("migrate: %d %s", code, stderr)
	}
	if !strings.Contains(stderr, "DEVELOPMENT SECRET GENERATED") {
		t.Fatalf("no loud warning: %s", stderr)
	}
	st, err := os.Stat(devSecretFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", st, err)
	}
	first, _ := os.ReadFile(devSecretFile)
	code, _, stderr = runCLI(t, nil, "", "migrate")
	second, _ := os.ReadFile(devSecretFile)
	if code != 0 || string(first) != string(second) || strings.Contains(stderr, "GENERATED") {
		t.Fatalf("secret not kept: %d %s", code, stderr)
	}
	if _, err := os.Stat("kavach.db"); err != nil {
		t.Fatalf("default SQLite file not created: %v", err)
	}
}

func TestMigrateAndUserCommands(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"KAVACH_DATABASE_URL": db, "KAVACH_SECRET": strings.Repeat("k", 40), "KAVACH_PASSWORD_ITERATIONS": "100000"}
			code, out, stderr := runCLI(t, env, "", "migrate")
			if code != 0 || !strings.Contains(out, "schema at version") {
				t.Fatalf("migrate: %d %q %q", code, out, stderr)
			}
			code, out, stderr = runCLI(t, env, "tidal-basin-crescent-5\n", "user", "create", "--email", "Ops@Example.com", "--name", "Ops", "--password-stdin", "--verified")
			if code != 0 || !strings.Contains(out, "<ops@example.com>") {
				t.Fatalf("create: %d %q %q", code, out, stderr)
			}
			code, _, stderr = runCLI(t, env, "", "user", "create", "--email", "ops@example.com")
			if code == 0 || !strings.Contains(stderr, "already exists") {
				t.Fatalf("duplicate create: %d %q", code, stderr)
			}
			code, _, stderr = runCLI(t, env, "password\n", "user", "create", "--email", "weak@example.com", "--password-stdin")
			if code == 0 || !strings.Contains(strings.ToLower(stderr), "common") {
				t.Fatalf("weak password accepted: %d %q", code, stderr)
			}
			code, out, _ = runCLI(t, env, "", "user", "list")
			if code != 0 || !strings.Contains(out, "ops@example.com") || !strings.Contains(out, "true") || strings.Contains(out, "weak@") {
				t.Fatalf("list: %d %q", code, out)
			}
			code, out, stderr = runCLI(t, env, "", "user", "ban", "--email", "ops@example.com", "--reason", "spam", "--for", "72h")
			if code != 0 || !strings.Contains(out, "banned user") {
				t.Fatalf("ban: %d %q %q", code, out, stderr)
			}
			code, _, stderr = runCLI(t, env, "", "user", "ban", "--email", "ops@example.com", "--for", "-1h")
			if code == 0 || !strings.Contains(stderr, "positive") {
				t.Fatalf("negative ban accepted: %d %q", code, stderr)
			}
			code, out, stderr = runCLI(t, env, "", "user", "unban", "--email", "ops@example.com")
			if code != 0 || !strings.Contains(out, "unbanned user") {
				t.Fatalf("unban: %d %q %q", code, out, stderr)
			}
			code, _, stderr = runCLI(t, env, "", "user", "unban", "--email", "ops@example.com")
			if code == 0 || !strings.Contains(stderr, "not banned") {
				t.Fatalf("second unban: %d %q", code, stderr)
			}
			code, out, stderr = runCLI(t, env, "", "user", "delete", "--email", "ops@example.com")
			if code != 0 || !strings.Contains(out, "deleted user") {
				t.Fatalf("delete: %d %q %q", code, out, stderr)
			}
			code, _, stderr = runCLI(t, env, "", "user", "delete", "--email", "ops@example.com")
			if code == 0 || !strings.Contains(stderr, "not found") {
				t.Fatalf("second delete: %d %q", code, stderr)
			}
			code, _, _ = runCLI(t, env, "", "user", "frobnicate")
			if code == 0 {
				t.Fatal("unknown subcommand accepted")
			}
		})
	}
}

func TestVersionAndUsage(t *testing.T) {
	code, out, _ := runCLI(t, nil, "", "version")
	if code != 0 || !strings.HasPrefix(out, "kavach ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, nil, ""); code != 2 {
		t.Fatalf("no args: exit %d", code)
	}
	if code, _, stderr := runCLI(t, nil, "", "nope"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("unknown: %d %q", code, stderr)
	}
}

// The configuration table in the docs is generated from the settings
// table; this keeps the two from drifting.
func TestConfigurationDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), settingsMarkdown()) {
		t.Fatal("docs/configuration.md is out of date: paste the output of `go run ./cmd/kavach config-table`")
	}
}

// TestServeBinaryGracefulShutdown builds the real binary, starts it with no
// configuration but a database, signs up over HTTP, then sends SIGTERM while
// a request is in flight: the request must complete and the process exit 0.
func TestServeBinaryGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, dir := buildBinary(t), t.TempDir()
	port := freePort(t)
	cmd, stderr := startServe(t, bin, dir, []string{"KAVACH_LISTEN=127.0.0.1:" + port, "KAVACH_BASE_URL=http://127.0.0.1:" + port, "KAVACH_LOG_FORMAT=json"})
	base := "http://127.0.0.1:" + port
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	// Start a sign-up whose body is not finished yet.
	body := `{"email":"late@example.com","password":"amber-lighthouse-route-3"}`
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/auth/sign-up/email HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", port, len(body), body[:10])
	time.Sleep(200 * time.Millisecond) // let the server start reading it; not a timing assertion
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatalf("server dropped the in-flight request: %v", err)
	}
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to the in-flight request: %v\n%s", err, stderr.String())
	}
	var env struct {
		Success bool `json:"success"`
	}
	_ = json.NewDecoder(r.Body).Decode(&env)
	if r.StatusCode != 201 || !env.Success {
		t.Fatalf("in-flight sign-up answered %d", r.StatusCode)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in logs:\n%s", stderr.String())
	}
	// New connections are refused after shutdown.
	if _, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
	if _, err := os.Stat(filepath.Join(dir, "kavach.db")); err != nil {
		t.Fatalf("default SQLite file missing: %v", err)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func TestClientAndKeysCommands(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"KAVACH_DATABASE_URL": db, "KAVACH_SECRET": strings.Repeat("k", 40)}
			code, out, stderr := runCLI(t, env, "", "client", "create", "--name", "Billing agent", "--grant", "client_credentials", "--scope", "mcp")
			if code != 0 || !strings.Contains(out, "client_id:") || !strings.Contains(out, "client_secret: kcs_") {
				t.Fatalf("create: %d %q %q", code, out, stderr)
			}
			id := strings.Fields(strings.SplitN(out, "\n", 2)[0])[1]
			code, _, stderr = runCLI(t, env, "", "client", "create", "--grant", "authorization_code", "--redirect-uri", "http://evil.example/cb")
			if code == 0 || !strings.Contains(stderr, "redirect URI") {
				t.Fatalf("bad redirect accepted: %d %q", code, stderr)
			}
			code, out, _ = runCLI(t, env, "", "client", "list")
			if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "preregistered") {
				t.Fatalf("list: %d %q", code, out)
			}
			code, out, stderr = runCLI(t, env, "", "keys", "rotate")
			if code != 0 || !strings.Contains(out, "rotated") {
				t.Fatalf("rotate: %d %q %q", code, out, stderr)
			}
			code, out, _ = runCLI(t, env, "", "client", "delete", "--id", id)
			if code != 0 || !strings.Contains(out, "deleted client") {
				t.Fatalf("delete: %d %q", code, out)
			}
			if code, _, stderr = runCLI(t, env, "", "client", "delete", "--id", id); code == 0 || !strings.Contains(stderr, "not found") {
				t.Fatalf("second delete: %d %q", code, stderr)
			}
		})
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"KAVACH_DATABASE_URL": db, "KAVACH_SECRET": strings.Repeat("k", 40)}
			code, out, stderr := runCLI(t, env, "", "audit", "verify")
			if code != 0 || !strings.Contains(out, "intact: 0 records") {
				t.Fatalf("empty log: %d %q %q", code, out, stderr)
			}
			store, err := kavach.OpenStore(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			recs := []storage.AuditRecord{{ID: "aud_1", Kind: storage.AuditKindSecurity, Event: "sign_in", Result: storage.AuditOK},
				{ID: "aud_2", Kind: storage.AuditKindSecurity, Event: "sign_in", Result: storage.AuditFail}}
			if err := store.Audit().Append(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			if code, out, _ = runCLI(t, env, "", "audit", "verify"); code != 0 || !strings.Contains(out, "2 records verified") {
				t.Fatalf("two records: %d %q", code, out)
			}
			var exec func(string) error
			switch s := store.(type) {
			case interface{ DB() *sql.DB }:
				exec = func(q string) error { _, err := s.DB().Exec(q); return err }
			case interface{ Pool() *pgxpool.Pool }:
				exec = func(q string) error { _, err := s.Pool().Exec(context.Background(), q); return err }
			}
			if err := exec(`UPDATE kavach_audit SET result = 'ok' WHERE id = 'aud_2'`); err != nil {
				t.Fatal(err)
			}
			code, _, stderr = runCLI(t, env, "", "audit", "verify")
			if code == 0 || !strings.Contains(stderr, "BROKEN") {
				t.Fatalf("edited record not detected: %d %q", code, stderr)
			}
		})
	}
}

var built struct {
	once sync.Once
	bin  string
	err  error
}

// buildBinary builds the kavach binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "kavach-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "kavach")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// TestMain removes the binary buildBinary made.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		_ = os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
}

// startServe starts `kavach serve` in dir with env added to the
// environment and waits for its startup line; the process is killed when
// the test ends.
func startServe(t *testing.T, bin, dir string, env []string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "listening") {
		t.Fatalf("startup line %q: %v\n%s", line, err, stderr.String())
	}
	return cmd, stderr
}

// The agent commands on both databases: create, list, delegate (narrower
// only), grant, suspend, resume, rotate, revoke (cascading), with errors
// as sentences.
func TestAgentCommands(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"KAVACH_DATABASE_URL": db, "KAVACH_SECRET": strings.Repeat("k", 40), "KAVACH_PASSWORD_ITERATIONS": "100000"}
			if code, _, stderr := runCLI(t, env, "", "user", "create", "--email", "ops@example.com"); code != 0 {
				t.Fatalf("user create: %s", stderr)
			}
			code, out, stderr := runCLI(t, env, "", "agent", "create", "--owner", "ops@example.com", "--name", "Repo bot",
				"--permissions", `[{"resource":"mcp:github:*","actions":["read","create_issue"]}]`)
			if code != 0 || !strings.Contains(out, "api key: kv_") {
				t.Fatalf("agent create: %d %q %q", code, out, stderr)
			}
			parent := strings.Fields(strings.SplitN(out, "agent:", 2)[1])[0]
			code, out, stderr = runCLI(t, env, "", "agent", "delegate", "--parent", parent, "--name", "Reader",
				"--permissions", `[{"resource":"mcp:github:issues","actions":["read"]}]`)
			if code != 0 || !strings.Contains(out, "1 grants") {
				t.Fatalf("agent delegate: %d %q %q", code, out, stderr)
			}
			child := strings.Fields(strings.SplitN(out, "agent:", 2)[1])[0]
			if code, _, stderr := runCLI(t, env, "", "agent", "delegate", "--parent", parent, "--name", "Greedy",
				"--permissions", `[{"resource":"mcp:*","actions":["read"]}]`); code == 0 || !strings.Contains(stderr, "not covered") {
				t.Fatalf("delegating more than the parent has: %d %q", code, stderr)
			}
			if code, _, stderr := runCLI(t, env, "", "agent", "create", "--owner", "ops@example.com", "--name", "x", "--permissions", `{"nope":1}`); code == 0 || !strings.Contains(stderr, "--permissions") {
				t.Fatalf("bad permissions JSON: %d %q", code, stderr)
			}
			code, out, _ = runCLI(t, env, "", "agent", "list", "--owner", "ops@example.com")
			if code != 0 || !strings.Contains(out, parent) || !strings.Contains(out, child) {
				t.Fatalf("agent list: %q", out)
			}
			for _, step := range [][]string{
				{"grant", "--id", parent, "--permissions", `[{"resource":"mcp:github:pulls","actions":["read"]}]`},
				{"suspend", "--id", parent}, {"resume", "--id", parent}, {"rotate", "--id", parent, "--overlap", "1h"},
				{"show", "--id", child},
			} {
				if code, out, stderr := runCLI(t, env, "", append([]string{"agent"}, step...)...); code != 0 {
					t.Fatalf("agent %v: %d %q %q", step, code, out, stderr)
				}
			}
			if code, out, _ := runCLI(t, env, "", "agent", "revoke", "--id", parent); code != 0 || !strings.Contains(out, "revoked") {
				t.Fatalf("agent revoke: %q", out)
			}
			code, out, _ = runCLI(t, env, "", "agent", "show", "--id", child)
			if code != 0 || !strings.Contains(out, `"Status": "revoked"`) {
				t.Fatalf("sub-agent after its parent was revoked: %q", out)
			}
			if code, _, stderr := runCLI(t, env, "", "agent", "show", "--id", "agt_nope"); code == 0 || !strings.Contains(stderr, "no such agent") {
				t.Fatalf("unknown agent: %d %q", code, stderr)
			}
		})
	}
}

// kavach trust recompute agrees with the scores the server kept, finds a
// stored state that does not match the audit log, and --write repairs it.
func TestTrustRecompute(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"KAVACH_DATABASE_URL": db, "KAVACH_SECRET": strings.Repeat("k", 40), "KAVACH_PASSWORD_ITERATIONS": "100000"}
			if code, _, stderr := runCLI(t, env, "", "user", "create", "--email", "ops@example.com"); code != 0 {
				t.Fatalf("user create: %s", stderr)
			}
			code, out, stderr := runCLI(t, env, "", "agent", "create", "--owner", "ops@example.com", "--name", "bot",
				"--permissions", `[{"resource":"mcp:github:*","actions":["read"]}]`)
			if code != 0 {
				t.Fatalf("agent create: %q", stderr)
			}
			id := strings.Fields(strings.SplitN(out, "agent:", 2)[1])[0]

			// The server's part: decisions, scored and stored as they happen.
			ctx := context.Background()
			k, err := kavach.New(ctx, kavach.Config{DatabaseURL: db, Secret: env["KAVACH_SECRET"], Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range []string{"mcp:github:a", "mcp:github:b", "billing:x", "mcp:slack:y"} {
				k.Agents.Decide(ctx, agents.DecideRequest{AgentID: id, Action: "read", Resource: res})
			}
			k.Close() // stores the pending scores

			if code, out, stderr := runCLI(t, env, "", "trust", "recompute", "--agent", id); code != 0 || !strings.Contains(out, "agrees") {
				t.Fatalf("recompute: %d %q %q", code, out, stderr)
			}
			// Someone edits the stored state: recompute notices and repairs.
			s, err := kavach.OpenStore(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			err = s.TrustStates().Update(ctx, id, func(ts *storage.TrustState) error { ts.State = []byte(`{}`); return nil })
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			if code, out, stderr := runCLI(t, env, "", "trust", "recompute"); code == 0 || !strings.Contains(out, "differs") || !strings.Contains(stderr, "differ") {
				t.Fatalf("recompute after an edit: %d %q %q", code, out, stderr)
			}
			if code, _, stderr := runCLI(t, env, "", "trust", "recompute", "--write"); code != 0 {
				t.Fatalf("recompute --write: %q", stderr)
			}
			if code, out, _ := runCLI(t, env, "", "trust", "recompute", "--agent", id); code != 0 || !strings.Contains(out, "events 4 (stored 4)") {
				t.Fatalf("after --write: %d %q", code, out)
			}
			env["KAVACH_AUDIT_RETENTION"] = "48h"
			if code, _, stderr := runCLI(t, env, "", "trust", "recompute", "--write"); code == 0 || !strings.Contains(stderr, "RETENTION") {
				t.Fatalf("--write with audit retention on: %d %q", code, stderr)
			}
		})
	}
}

// kavach trust policy: create, list, update with a version check, show,
// history and delete; bad input fails with the field named.
func TestTrustPolicyCommands(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"KAVACH_DATABASE_URL": db, "KAVACH_SECRET": strings.Repeat("k", 40), "KAVACH_PASSWORD_ITERATIONS": "100000"}
			policy := `{"name":"deploys need trusted","scope":{"type":"global"},"effect":"minimum_level","resources":["mcp:deploy:*"],"level":"trusted"}`
			code, out, stderr := runCLI(t, env, "", "trust", "policy", "create", "--policy", policy)
			if code != 0 || !strings.Contains(out, `"version": 1`) {
				t.Fatalf("create: %d %q %q", code, out, stderr)
			}
			var created struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.ID, "tpol_") {
				t.Fatalf("create output %q: %v", out, err)
			}
			file := filepath.Join(t.TempDir(), "p.json")
			if err := os.WriteFile(file, []byte(strings.Replace(policy, `"level":"trusted"`, `"level":"standard","version":1`, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out, stderr := runCLI(t, env, "", "trust", "policy", "update", "--id", created.ID, "--policy", "@"+file); code != 0 || !strings.Contains(out, `"version": 2`) {
				t.Fatalf("update: %d %q %q", code, out, stderr)
			}
			if code, _, stderr := runCLI(t, env, "", "trust", "policy", "update", "--id", created.ID, "--policy", "@"+file); code == 0 || !strings.Contains(stderr, "changed since") {
				t.Fatalf("stale update: %d %q", code, stderr)
			}
			if code, out, _ := runCLI(t, env, "", "trust", "policy", "list"); code != 0 || !strings.Contains(out, created.ID) || !strings.Contains(out, "standard on mcp:deploy:*") {
				t.Fatalf("list: %q", out)
			}
			if code, out, _ := runCLI(t, env, "", "trust", "policy", "show", "--id", created.ID); code != 0 || !strings.Contains(out, `"updatedBy": "cli"`) {
				t.Fatalf("show: %q", out)
			}
			if code, out, _ := runCLI(t, env, "", "trust", "policy", "delete", "--id", created.ID); code != 0 || !strings.Contains(out, "deleted") {
				t.Fatalf("delete: %q", out)
			}
			if code, out, _ := runCLI(t, env, "", "trust", "policy", "history", "--id", created.ID); code != 0 || strings.Count(out, `"version"`) != 6 || !strings.Contains(out, `"deleted": true`) {
				t.Fatalf("history: %q", out)
			}
			for _, bad := range []struct{ args []string }{
				{[]string{"create", "--policy", `{"name":"x","scope":{"type":"global"},"effect":"suspend"}`}},
				{[]string{"create", "--policy", `{"nope":1}`}},
				{[]string{"create"}},
				{[]string{"show", "--id", "tpol_missing"}},
				{[]string{"show"}},
				{[]string{"frobnicate"}},
			} {
				if code, _, stderr := runCLI(t, env, "", append([]string{"trust", "policy"}, bad.args...)...); code == 0 || stderr == "" {
					t.Fatalf("%v: %d %q", bad.args, code, stderr)
				}
			}
		})
	}
}

// kavach gateway: refuses to start without its upstream, public URL and
// server name, or for a URL that is not a resource; runs, serves the
// gateway's metadata naming the server and challenges a request without a
// token; stops on its context.
func TestGatewayCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	public := "http://" + addr + "/mcp"
	env := map[string]string{"KAVACH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "gw.db"), "KAVACH_SECRET": strings.Repeat("k", 40),
		"KAVACH_BASE_URL": "http://127.0.0.1:8080", "KAVACH_OAUTH_RESOURCES": public}
	if code, _, stderr := runCLI(t, env, "", "gateway", "--public-url", public); code == 0 || !strings.Contains(stderr, "required") {
		t.Fatalf("without upstream: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "", "gateway", "--upstream", "http://127.0.0.1:1/mcp", "--public-url", "http://nowhere.example/mcp",
		"--server-name", "files", "--gateway-listen", addr); code == 0 || !strings.Contains(stderr, "KAVACH_OAUTH_RESOURCES") {
		t.Fatalf("a public URL that is no resource: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "", "gateway", "--upstream", "http://127.0.0.1:1/mcp", "--public-url", public,
		"--server-name", "files", "--upstream-header", "nocolon"); code == 0 || !strings.Contains(stderr, "upstream-header") {
		t.Fatalf("a bad header: %d %q", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"gateway", "--upstream", "http://127.0.0.1:1/mcp", "--public-url", public, "--server-name", "files",
			"--gateway-listen", addr, "--upstream-header", "X-Key: s3cret"}, strings.NewReader(""), &out, &errb, envFrom(env))
	}()
	var prm map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/.well-known/oauth-protected-resource/mcp")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&prm)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never listened: %s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if prm["resource"] != public || prm["authorization_servers"].([]any)[0] != "http://127.0.0.1:8080" {
		t.Fatalf("metadata %v", prm)
	}
	req, _ := http.NewRequest("POST", public, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata") {
		t.Fatalf("without a token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("gateway exit %d: %s", code, errb.String())
	}
}
