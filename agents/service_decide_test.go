package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

func TestDecideRateLimit(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		limited := agents.Grant{Resource: "mcp:github:*", Actions: []string{"read"}, Constraints: agents.Constraints{
			RateLimits: []agents.RateLimit{{Window: agents.PerMinute, Max: 3}, {Window: agents.PerHour, Max: 5}},
		}}
		a, grants, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{limited, readSlack}})
		b, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{limited}})
		read := func(agentID string) agents.Decision { return e.decide(t, agentID, "read", "mcp:github:issues") }
		check := func(agentID string) agents.Decision {
			return e.svc.Decide(ctx, agents.DecideRequest{AgentID: agentID, Action: "read", Resource: "mcp:github:issues", DryRun: true})
		}

		for i := range 3 {
			wantDecision(t, "call within the minute limit", read(a.ID), true, agents.CodeAllowed)
			if i == 0 {
				// A dry run uses nothing.
				wantDecision(t, "dry run", check(a.ID), true, agents.CodeAllowed)
			}
		}
		limitedCall := read(a.ID)
		wantDecision(t, "fourth call in a minute", limitedCall, false, agents.CodeRateLimited)
		wantDecision(t, "dry run when exhausted", check(a.ID), false, agents.CodeRateLimited)
		// Other grants and other agents count separately.
		wantDecision(t, "another grant", e.decide(t, a.ID, "read", "mcp:slack:x"), true, agents.CodeAllowed)
		wantDecision(t, "another agent", read(b.ID), true, agents.CodeAllowed)

		// The next minute opens; the hour allows two more calls.
		e.clock.Advance(time.Minute)
		wantDecision(t, "next minute", read(a.ID), true, agents.CodeAllowed)
		wantDecision(t, "next minute", read(a.ID), true, agents.CodeAllowed)
		wantDecision(t, "hour exhausted", read(a.ID), false, agents.CodeRateLimited)
		e.clock.Advance(time.Hour)
		wantDecision(t, "next hour", read(a.ID), true, agents.CodeAllowed)

		recs := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID}))
		if r := recs[limitedCall.AuditID]; r.Result != storage.AuditDeny || r.Reason != agents.CodeRateLimited ||
			r.Event != agents.AuditEventAuthorize || string(r.Extra) != `{"grant":"`+grants[0].ID+`"}` {
			t.Fatalf("rate-limited record %+v", r)
		}
		checks := e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Event: agents.AuditEventCheckPermission})
		if len(checks) != 2 {
			t.Fatalf("%d check_permission records, want 2", len(checks))
		}
	})
}

// TestDecideRateLimitConcurrent: under concurrent calls exactly the limit
// is allowed.
func TestDecideRateLimitConcurrent(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	g := agents.Grant{Resource: "mcp:*", Actions: []string{"*"}, Constraints: agents.Constraints{
		RateLimits: []agents.RateLimit{{Window: agents.PerMinute, Max: 50}},
	}}
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{g}})
	var allowed, limited atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				switch d := e.decide(t, a.ID, "call", "mcp:x"); d.Code {
				case agents.CodeAllowed:
					allowed.Add(1)
				case agents.CodeRateLimited:
					limited.Add(1)
				default:
					t.Errorf("decision %+v", d)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 50 || limited.Load() != 110 {
		t.Fatalf("allowed %d, limited %d; want 50 and 110", allowed.Load(), limited.Load())
	}
	if n := len(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindDecision})); n != 160 {
		t.Fatalf("%d audit records, want 160", n)
	}
}

// TestDecideUnknownOrMalformed: decisions about agents that do not exist,
// and requests with text the store cannot hold, are audited too.
func TestDecideUnknownOrMalformed(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		d := e.decide(t, "agt_nobody", "read", "mcp:github:x")
		wantDecision(t, "unknown agent", d, false, agents.CodeAgentNotFound)
		recs := e.auditRecords(t, storage.AuditFilter{AgentID: "agt_nobody"})
		if len(recs) != 1 || recs[0].ID != d.AuditID || recs[0].Result != storage.AuditDeny || recs[0].Reason != agents.CodeAgentNotFound ||
			recs[0].PrincipalID != "agt_nobody" || recs[0].Action != "read" {
			t.Fatalf("records %+v", recs)
		}
		wantDecision(t, "no agent id", e.decide(t, "", "read", "mcp:x"), false, agents.CodeAgentNotFound)
		wantDecision(t, "agent id not UTF-8", e.decide(t, "agt_\xff\x00", "read\x00", "mcp:\xfe"), false, agents.CodeAgentNotFound)

		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		wantDecision(t, "malformed action", e.decide(t, a.ID, "re ad\x00", "mcp:github:x"), false, agents.CodeInvalidRequest)
		wantDecision(t, "wildcard resource", e.decide(t, a.ID, "read", "mcp:github:*"), false, agents.CodeInvalidRequest)
	})
}

func TestDecideApprovalRequired(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	g := agents.Grant{Resource: "mcp:payments:*", Actions: []string{"pay"}, Constraints: agents.Constraints{RequireApproval: true}}
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{g}})
	d := e.decide(t, a.ID, "pay", "mcp:payments:invoice")
	wantDecision(t, "approval", d, false, agents.CodeApprovalRequired)
	if !d.ApprovalRequired {
		t.Fatalf("ApprovalRequired not set: %+v", d)
	}
}

// TestDecideDelegatedActsForOwner: a delegated agent's decisions name the
// user it acts for.
func TestDecideDelegatedActsForOwner(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	a, _, _ := e.create(t, agents.CreateInput{Type: storage.AgentDelegated, Permissions: []agents.Grant{readGitHub}})
	d := e.decide(t, a.ID, "read", "mcp:github:x")
	recs := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindDecision}))
	if r := recs[d.AuditID]; r.ActingFor != e.owner {
		t.Fatalf("record %+v does not act for %s", r, e.owner)
	}
}

// TestDecideSeesOtherNodes: a change made through another Service (another
// node) applies once the cached entry is older than the cache TTL; a change
// made through this one applies at once.
func TestDecideSeesOtherNodes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		other := *e
		other.reconfigure(t, agents.Config{})
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		wantDecision(t, "cached here", e.decide(t, a.ID, "read", "mcp:github:x"), true, agents.CodeAllowed)

		suspended := storage.AgentSuspended
		if _, _, err := other.svc.Update(ctx, a.ID, agents.UpdateInput{Status: &suspended}); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "other node's change, at once there", other.decide(t, a.ID, "read", "mcp:github:x"), false, agents.CodeAgentSuspended)
		wantDecision(t, "other node's change, cached here", e.decide(t, a.ID, "read", "mcp:github:x"), true, agents.CodeAllowed)
		e.clock.Advance(5 * time.Second)
		wantDecision(t, "other node's change, after the TTL", e.decide(t, a.ID, "read", "mcp:github:x"), false, agents.CodeAgentSuspended)
	})
}

func TestDecideTouchesLastActive(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, _, key := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
		lastActive := func() *time.Time {
			t.Helper()
			got, err := e.store.Agents().Get(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.LastActiveAt
		}
		if lastActive() != nil {
			t.Fatal("a new agent has been active")
		}
		e.decide(t, a.ID, "read", "mcp:github:x")
		if la := lastActive(); la == nil || !la.Equal(t0) {
			t.Fatalf("after a decision: %v", la)
		}
		e.clock.Advance(30 * time.Second)
		e.decide(t, a.ID, "read", "mcp:github:x")
		if _, err := e.svc.AuthenticateKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		if la := lastActive(); !la.Equal(t0) {
			t.Fatalf("touched again within a minute: %v", la)
		}
		e.clock.Advance(31 * time.Second)
		if _, err := e.svc.AuthenticateKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		if la := lastActive(); !la.Equal(t0.Add(61 * time.Second)) {
			t.Fatalf("after a minute: %v", la)
		}
	})
}

// TestDecideArgsDigest: the digest ignores key order and white space and
// never stores the arguments.
func TestDecideArgsDigest(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	digest := func(args string) string {
		d := e.svc.Decide(t.Context(), agents.DecideRequest{AgentID: a.ID, Action: "read", Resource: "mcp:github:x", Arguments: json.RawMessage(args)})
		return auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID}))[d.AuditID].ArgsDigest
	}
	x := digest(`{"repo":"kavachos/kavach","labels":["bug","p1"],"n":1}`)
	y := digest(" { \"n\" : 1, \"labels\" : [ \"bug\", \"p1\" ], \"repo\" : \"kavachos\\/kavach\" } ")
	z := digest(`{"repo":"kavachos/kavach","labels":["p1","bug"],"n":1}`)
	if len(x) != 64 || x != y || x == z {
		t.Fatalf("digests %q %q %q", x, y, z)
	}
	if d := digest(""); d != "" {
		t.Fatalf("no arguments digested as %q", d)
	}
}

// quiet drops the errors a test provokes on purpose.
var quiet = slog.New(slog.DiscardHandler)

// failingRecorder refuses every record.
type failingRecorder struct{}

func (failingRecorder) Record(context.Context, storage.AuditRecord) (int64, error) {
	return 0, errors.New("disk full")
}

// TestDecideAuditFailureRefuses: nothing is allowed without an audit record.
func TestDecideAuditFailureRefuses(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	svc := agents.NewService(e.store, failingRecorder{}, agents.Config{Now: e.clock.Now, Logger: quiet})
	d := svc.Decide(t.Context(), agents.DecideRequest{AgentID: a.ID, Action: "read", Resource: "mcp:github:x"})
	if d.Allowed || d.Code != agents.CodeUnavailable || d.AuditID != "" {
		t.Fatalf("decision without audit: %+v", d)
	}
}

// TestDecideInvalidStoredGrants: grants that no longer validate refuse
// every request (fail closed).
func TestDecideInvalidStoredGrants(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{Logger: quiet})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	bad := []storage.AgentGrant{{ID: "grt_bad", AgentID: a.ID, Spec: []byte(`{"resource":"mcp:gi*","actions":["read"]}`), CreatedAt: t0}}
	if err := e.store.AgentGrants().Replace(t.Context(), a.ID, bad); err != nil {
		t.Fatal(err)
	}
	wantDecision(t, "invalid stored grant", e.decide(t, a.ID, "read", "mcp:github:x"), false, agents.CodeInvalidGrant)
}

// A refusal for a resource outside every granted namespace is recorded as
// a probe (a trust signal); a near miss is not.
func TestDecideMarksProbes(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}})
	probe := e.decide(t, a.ID, "read", "billing:invoices")
	near := e.decide(t, a.ID, "read", "mcp:slack:general")
	wantDecision(t, "probe", probe, false, agents.CodePermissionDenied)
	wantDecision(t, "near miss", near, false, agents.CodePermissionDenied)
	recs := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID}))
	if got := string(recs[probe.AuditID].Extra); got != `{"probe":true}` {
		t.Fatalf("probe record extra %s", got)
	}
	if got := recs[near.AuditID].Extra; got != nil {
		t.Fatalf("near-miss record extra %s", got)
	}
}
