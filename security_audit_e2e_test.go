package kavach_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/auditchain"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/webhook"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

// Security events land in the audit log: sign-ups, sign-ins and failed
// sign-ins (known and unknown addresses alike, never the address itself),
// tokens issued (with their jti) and token requests refused.
func TestSecurityEventsAudited(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		ctx := context.Background()
		c := e.client()
		user := c.signUp("ada@example.com")
		e.client().signIn("ada@example.com", "not the password").must(t, 401)
		e.client().signIn("nobody@example.com", "whatever it is").must(t, 401)

		events := func(f storage.AuditFilter) []storage.AuditRecord {
			t.Helper()
			recs, _, err := e.k.Store.Audit().Query(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return recs
		}
		mine := events(storage.AuditFilter{PrincipalID: user.User.ID})
		seen := map[string]bool{}
		for _, r := range mine {
			seen[r.Event+"/"+r.Result] = true
		}
		for _, want := range []string{users.EventUserCreated + "/ok", users.AuditEventSignIn + "/ok", users.AuditEventSignInFailure + "/fail"} {
			if !seen[want] {
				t.Fatalf("no %s record for the user; have %v", want, seen)
			}
		}
		failed := events(storage.AuditFilter{Event: users.AuditEventSignInFailure})
		if len(failed) != 2 {
			t.Fatalf("%d failed sign-in records, want 2", len(failed))
		}
		for _, r := range failed {
			if r.Reason != "INVALID_CREDENTIALS" || r.Resource == "" || r.IP == "" || string(r.Extra) != `{"method":"email-password"}` {
				t.Fatalf("failed sign-in record %+v", r)
			}
			for _, addr := range []string{"nobody@example.com", "ada@example.com"} {
				// Neither the address nor its plain hash (which a list of
				// addresses reverses): a keyed HMAC.
				if r.Resource == "login:"+addr || r.Resource == "login:"+id.Hash("login-attempt:"+addr) {
					t.Fatalf("a failed sign-in record names the address reversibly: %s", r.Resource)
				}
			}
		}

		reg := e.registerClient(t, authz.ClientMetadata{ClientName: "svc", GrantTypes: []string{authz.GrantClientCredentials}, Scope: "mcp"})
		cc := clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, AuthStyle: oauth2.AuthStyleInHeader}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		agent, err := e.k.OAuth.AgentForClient(ctx, reg.Client.GetID())
		if err != nil {
			t.Fatal(err)
		}
		issued := events(storage.AuditFilter{AgentID: agent.ID, Event: authz.AuditEventTokenIssued})
		var extra map[string]string
		if len(issued) != 1 || json.Unmarshal(issued[0].Extra, &extra) != nil || extra["jti"] != jwtClaims(t, tok.AccessToken)["jti"] ||
			issued[0].Action != "client_credentials" || issued[0].Resource != e.url+"/mcp" || issued[0].IP == "" {
			t.Fatalf("token.issued records %+v", issued)
		}
		cc.ClientSecret = "wrong"
		if _, err := cc.Token(ctx); err == nil {
			t.Fatal("a wrong secret got a token")
		}
		refused := events(storage.AuditFilter{AgentID: agent.ID, Event: authz.AuditEventTokenRefused})
		if len(refused) != 1 || refused[0].Reason != "invalid_client" || refused[0].Result != storage.AuditFail ||
			string(refused[0].Extra) != `{"authenticated":false}` {
			t.Fatalf("token.refused records %+v", refused)
		}
		if n, err := auditchain.VerifyLog(ctx, e.k.Store.Audit()); err != nil || n == 0 {
			t.Fatalf("audit chain: %d %v", n, err)
		}
	})
}

// Audit retention deletes what is older than the period, keeps the rest,
// and the chain still verifies from its moved anchor.
func TestAuditRetention(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.Audit.Retention = 48 * time.Hour })
		ctx := context.Background()
		e.client().signUp("old@example.com")
		before, _, err := e.k.Store.Audit().Query(ctx, storage.AuditFilter{})
		if err != nil || len(before) == 0 {
			t.Fatalf("records before: %d %v", len(before), err)
		}
		e.clock.Advance(72 * time.Hour)
		fresh := e.client().signUp("new@example.com")
		if err := e.k.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		after, _, err := e.k.Store.Audit().Query(ctx, storage.AuditFilter{})
		if err != nil || len(after) == 0 {
			t.Fatalf("records after: %d %v", len(after), err)
		}
		for _, r := range after {
			if r.PrincipalID != fresh.User.ID {
				t.Fatalf("a record older than the retention period survived: %+v", r)
			}
		}
		if a, err := e.k.Store.Audit().Anchor(ctx); err != nil || a.Seq != int64(len(before)) {
			t.Fatalf("anchor %+v %v, want seq %d", a, err, len(before))
		}
		if n, err := auditchain.VerifyLog(ctx, e.k.Store.Audit()); err != nil || n != int64(len(after)) {
			t.Fatalf("chain after retention: %d %v", n, err)
		}
	})
	if err := (kavach.Config{Audit: kavach.AuditConfig{Retention: time.Hour}}).Validate(); err == nil || !strings.Contains(err.Error(), "audit retention") {
		t.Fatalf("a one-hour retention validated: %v", err)
	}
}

// Webhooks: an agent created over the API reaches the configured endpoint
// as a signed Standard Webhooks POST; a failing endpoint gets the same
// event again.
func TestWebhookDelivery(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, err := webhook.Key(secret)
	if err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 100)
	var fails atomic.Int32
	fails.Store(1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
		if fails.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()
	e := newEnv(t, storagetestOpenSQLite, func(c *kavach.Config) { c.WebhookURL, c.WebhookSecret = hook.URL, secret })
	owner := e.client()
	owner.signUp("hooks@example.com")
	owner.do("POST", "/api/auth/agents", map[string]any{"name": "hooked"}).must(t, 201)

	seen := map[string]int{}
	for {
		var d delivery
		select {
		case d = <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("no agent.created delivery; seen %v", seen)
		}
		ts, err := strconv.ParseInt(d.header.Get("webhook-timestamp"), 10, 64)
		if err != nil || d.header.Get("webhook-signature") != webhook.Sign(key, d.header.Get("webhook-id"), ts, d.body) {
			t.Fatalf("delivery not signed as Standard Webhooks asks: %v %s", d.header, d.body)
		}
		var b webhook.Body
		if err := json.Unmarshal(d.body, &b); err != nil || b.ID != d.header.Get("webhook-id") {
			t.Fatalf("body %s: %v", d.body, err)
		}
		seen[b.Type]++
		if b.Type == "agent.created" {
			break
		}
	}
	if seen["user.created"] < 2 {
		t.Fatalf("the failed first delivery was not retried: %v", seen)
	}
}
