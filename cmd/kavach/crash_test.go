package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

// TestCrashKeepsAcknowledgedDecisions runs decisions under load against
// the real binary, kills it with SIGKILL mid-stream, and checks that every
// decision the clients saw acknowledged is in the audit log and that the
// hash chain verifies — then that an edited row makes verify fail.
func TestCrashKeepsAcknowledgedDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, dir := buildBinary(t), t.TempDir()
	port := freePort(t)
	base := "http://127.0.0.1:" + port
	env := []string{"KAVACH_LISTEN=127.0.0.1:" + port, "KAVACH_BASE_URL=" + base, "KAVACH_LOG_LEVEL=warn",
		"KAVACH_SECRET=" + strings.Repeat("c", 40), "KAVACH_PASSWORD_ITERATIONS=100000"}
	cmd, stderr := startServe(t, bin, dir, env)

	jar, _ := cookiejar.New(nil)
	owner := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	post := func(c *http.Client, path, bearer, body string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return c.Do(req)
	}
	resp, err := post(owner, "/api/auth/sign-up/email", "", `{"email":"crash@example.com","password":"violet-anchor-harbor-42"}`)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("sign-up: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = post(owner, "/api/auth/agents", "", `{"name":"crash","permissions":[{"resource":"mcp:*","actions":["read"]}]}`)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create agent: %v %v", resp, err)
	}
	var created struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := post(client, "/api/auth/authorize", created.Data.Token, `{"action":"read","resource":"mcp:tools"}`)
				if err != nil {
					return // the server is gone
				}
				var d struct {
					Data struct {
						AuditID string `json:"auditId"`
					} `json:"data"`
				}
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && d.Data.AuditID != "" {
					mu.Lock()
					acked = append(acked, d.Data.AuditID)
					mu.Unlock()
				}
			}
		}()
	}
	// Let a few thousand decisions through, then kill the process hard.
	for i := 0; i < 200; i++ {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 2000 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no decision was acknowledged\n%s", stderr.String())
	}

	// Every acknowledged decision survived.
	ctx := context.Background()
	store, err := kavach.OpenStore(ctx, "sqlite:"+filepath.Join(dir, "kavach.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	seen := map[string]bool{}
	if err := store.Audit().Scan(ctx, 1, func(r storage.AuditRecord) error { seen[r.ID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, id := range acked {
		if !seen[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged decisions are missing from the audit log", lost, len(acked))
	}
	t.Logf("%d acknowledged decisions, all in the log (%d records)", len(acked), len(seen))

	verify := func() (int, string) {
		c := exec.Command(bin, "audit", "verify")
		c.Dir, c.Env = dir, append(os.Environ(), env...)
		out, err := c.CombinedOutput()
		if err != nil {
			return 1, string(out)
		}
		return 0, string(out)
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify after the crash: %s", out)
	}
	db := store.(interface{ DB() *sql.DB }).DB()
	if _, err := db.Exec(`UPDATE kavach_audit SET result = 'deny' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if code, out := verify(); code == 0 || !strings.Contains(out, "BROKEN") {
		t.Fatalf("verify missed an edited record: %s", out)
	}
}
