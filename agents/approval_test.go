package agents_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

var payWithApproval = agents.Grant{Resource: "mcp:payments:*", Actions: []string{"pay"},
	Constraints: agents.Constraints{RequireApproval: true}}

func (e *env) pay(t testing.TB, agentID, args string) agents.Decision {
	t.Helper()
	return e.svc.Decide(t.Context(), agents.DecideRequest{AgentID: agentID, Action: "pay", Resource: "mcp:payments:invoice",
		Arguments: json.RawMessage(args)})
}

func (e *env) checkPay(t testing.TB, agentID, args string) agents.Decision {
	t.Helper()
	return e.svc.Decide(t.Context(), agents.DecideRequest{AgentID: agentID, Action: "pay", Resource: "mcp:payments:invoice",
		Arguments: json.RawMessage(args), DryRun: true})
}

// wantApprovalRequired checks an APPROVAL_REQUIRED answer and returns its
// approval id.
func wantApprovalRequired(t testing.TB, what string, d agents.Decision) string {
	t.Helper()
	wantDecision(t, what, d, false, agents.CodeApprovalRequired)
	if !d.ApprovalRequired || !strings.HasPrefix(d.ApprovalID, "apr_") {
		t.Fatalf("%s: %+v, want ApprovalRequired with an approval id", what, d)
	}
	return d.ApprovalID
}

func (e *env) approve(t testing.TB, approvalID, mode string, d time.Duration) storage.Approval {
	t.Helper()
	a, err := e.svc.ApproveRequest(t.Context(), approvalID, e.owner, agents.ApproveInput{Mode: mode, Duration: d})
	if err != nil {
		t.Fatalf("approve %s: %v", approvalID, err)
	}
	return a
}

// TestApprovalOnce: the request is opened once and reused by retries; an
// approval for once lets exactly the next call through, noted in its
// audit record; the call after asks again.
func TestApprovalOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, grants, _ := e.create(t, agents.CreateInput{Type: storage.AgentDelegated, Permissions: []agents.Grant{payWithApproval}})
		args := `{"amount": 120, "to": "acme"}`
		first := e.pay(t, a.ID, args)
		id := wantApprovalRequired(t, "first call", first)
		e.clock.Advance(time.Minute)
		if again := wantApprovalRequired(t, "retry", e.pay(t, a.ID, `{"to":"acme","amount":120}`)); again != id {
			t.Fatalf("retry opened %s, want the pending %s", again, id)
		}
		req, err := e.svc.GetApproval(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if req.Status != storage.ApprovalPending || req.AgentID != a.ID || req.OwnerUserID == nil || *req.OwnerUserID != e.owner ||
			req.ActingFor != e.owner || req.Action != "pay" || req.Resource != "mcp:payments:invoice" || len(req.ArgsDigest) != 64 ||
			string(req.Arguments) != `{"amount":120,"to":"acme"}` || req.ArgumentsTruncated ||
			!req.RequestedAt.Equal(t0) || !req.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("request %+v", req)
		}
		if evs := e.events(t, agents.EventApprovalRequested); len(evs) != 1 || evs[0].Subject != id ||
			strings.Contains(string(evs[0].Payload), "acme") {
			t.Fatalf("approval.requested events %+v (one, without the arguments)", evs)
		}
		recs := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindDecision}))
		if r := recs[first.AuditID]; r.Reason != agents.CodeApprovalRequired ||
			string(r.Extra) != `{"grant":"`+grants[0].ID+`","approval":"`+id+`"}` {
			t.Fatalf("APPROVAL_REQUIRED record %+v", r)
		}

		approved := e.approve(t, id, storage.ApprovalOnce, 0)
		if approved.Status != storage.ApprovalApproved || approved.Mode != storage.ApprovalOnce || approved.DecidedBy != e.owner ||
			approved.ApprovedUntil == nil || !approved.ApprovedUntil.Equal(e.clock.Now().Add(time.Hour)) {
			t.Fatalf("approved %+v", approved)
		}
		// Another call (other arguments) is not covered.
		other := wantApprovalRequired(t, "other arguments", e.pay(t, a.ID, `{"amount":121,"to":"acme"}`))
		if other == id {
			t.Fatal("other arguments reuse the approved request")
		}
		allowed := e.pay(t, a.ID, args)
		wantDecision(t, "after approval", allowed, true, agents.CodeAllowed)
		if allowed.ApprovalID != id {
			t.Fatalf("allowed by %q, want %s", allowed.ApprovalID, id)
		}
		recs = auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindDecision}))
		if r := recs[allowed.AuditID]; r.Result != storage.AuditAllow || r.Reason != agents.CodeAllowed ||
			string(r.Extra) != `{"grant":"`+grants[0].ID+`","approval":"`+id+`"}` {
			t.Fatalf("allowed record %+v", r)
		}
		if used, _ := e.svc.GetApproval(ctx, id); used.ConsumedAt == nil || !used.ConsumedAt.Equal(e.clock.Now()) {
			t.Fatalf("used approval %+v", used)
		}
		next := wantApprovalRequired(t, "the call after", e.pay(t, a.ID, args))
		if next == id || next == other {
			t.Fatalf("the call after reuses %s", next)
		}
	})
}

// TestApprovalWindow: a window approval lets every matching call through
// until it ends, rate limits still counted.
func TestApprovalWindow(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		g := payWithApproval
		g.Constraints.RateLimits = []agents.RateLimit{{Window: agents.PerMinute, Max: 3}}
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{g}})
		id := wantApprovalRequired(t, "first call", e.pay(t, a.ID, ""))
		e.approve(t, id, storage.ApprovalWindow, 10*time.Minute)
		for range 3 {
			if d := e.pay(t, a.ID, ""); !d.Allowed || d.ApprovalID != id {
				t.Fatalf("call in the window: %+v", d)
			}
		}
		wantDecision(t, "fourth call in a minute", e.pay(t, a.ID, ""), false, agents.CodeRateLimited)
		e.clock.Advance(time.Minute)
		wantDecision(t, "next minute", e.pay(t, a.ID, ""), true, agents.CodeAllowed)
		e.clock.Advance(9 * time.Minute) // the window ends
		if next := wantApprovalRequired(t, "after the window", e.pay(t, a.ID, "")); next == id {
			t.Fatal("the ended window's request is reused")
		}
	})
}

// TestApprovalRateLimitedKeepsOnce: a call refused by a rate limit does
// not use a once approval.
func TestApprovalRateLimitedKeepsOnce(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	g := payWithApproval
	g.Constraints.RateLimits = []agents.RateLimit{{Window: agents.PerMinute, Max: 1}}
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{g}})
	w := wantApprovalRequired(t, "first", e.pay(t, a.ID, `{"n":1}`))
	e.approve(t, w, storage.ApprovalWindow, time.Hour)
	wantDecision(t, "window call", e.pay(t, a.ID, `{"n":1}`), true, agents.CodeAllowed)
	once := wantApprovalRequired(t, "other call", e.pay(t, a.ID, `{"n":2}`))
	e.approve(t, once, storage.ApprovalOnce, 0)
	wantDecision(t, "limit used up", e.pay(t, a.ID, `{"n":2}`), false, agents.CodeRateLimited)
	e.clock.Advance(time.Minute)
	if d := e.pay(t, a.ID, `{"n":2}`); !d.Allowed || d.ApprovalID != once {
		t.Fatalf("once approval after the limit reset: %+v", d)
	}
}

// TestApprovalExpiry: a pending request lapses after ApprovalTTL (it can
// no longer be decided, and the next call opens a new one); an unused once
// approval lapses too.
func TestApprovalExpiry(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		e.reconfigure(t, agents.Config{ApprovalTTL: 10 * time.Minute})
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{payWithApproval}})
		id := wantApprovalRequired(t, "first", e.pay(t, a.ID, ""))
		e.clock.Advance(10 * time.Minute)
		if got, err := e.svc.GetApproval(ctx, id); err != nil || got.Status != storage.ApprovalExpired {
			t.Fatalf("after the TTL: %+v, %v", got, err)
		}
		if _, err := e.svc.ApproveRequest(ctx, id, e.owner, agents.ApproveInput{}); !errors.Is(err, agents.ErrApprovalExpired) {
			t.Fatalf("approve an expired request: %v", err)
		}
		if _, err := e.svc.DenyRequest(ctx, id, e.owner, ""); !errors.Is(err, agents.ErrApprovalExpired) {
			t.Fatalf("deny an expired request: %v", err)
		}
		fresh := wantApprovalRequired(t, "after the TTL", e.pay(t, a.ID, ""))
		if fresh == id {
			t.Fatal("the expired request was reused")
		}
		if got, _ := e.svc.GetApproval(ctx, id); got.Status != storage.ApprovalExpired {
			t.Fatalf("old request %+v", got)
		}
		list, _, err := e.svc.ListApprovals(ctx, agents.ApprovalQuery{OwnerUserID: e.owner, Status: storage.ApprovalExpired})
		if err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("expired list %+v, %v", list, err)
		}

		e.approve(t, fresh, storage.ApprovalOnce, 0)
		e.clock.Advance(10 * time.Minute)
		if again := wantApprovalRequired(t, "unused once approval after the TTL", e.pay(t, a.ID, "")); again == fresh {
			t.Fatal("lapsed approval reused")
		}
	})
}

// TestApprovalDryRun: check_permission uses nothing and opens nothing; it
// reports the approval that would apply.
func TestApprovalDryRun(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{payWithApproval}})
		d := e.checkPay(t, a.ID, "")
		wantDecision(t, "dry run without a request", d, false, agents.CodeApprovalRequired)
		if d.ApprovalID != "" || len(e.events(t, agents.EventApprovalRequested)) != 0 {
			t.Fatalf("dry run opened a request: %+v", d)
		}
		id := wantApprovalRequired(t, "call", e.pay(t, a.ID, ""))
		if d := e.checkPay(t, a.ID, ""); d.ApprovalID != id || d.Allowed {
			t.Fatalf("dry run with a pending request: %+v", d)
		}
		e.approve(t, id, storage.ApprovalOnce, 0)
		for range 2 {
			if d := e.checkPay(t, a.ID, ""); !d.Allowed || d.Code != agents.CodeAllowed || d.ApprovalID != id {
				t.Fatalf("dry run with an approval: %+v", d)
			}
		}
		if d := e.pay(t, a.ID, ""); !d.Allowed || d.ApprovalID != id {
			t.Fatalf("the approval survived the dry runs: %+v", d)
		}
		recs := e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Event: agents.AuditEventCheckPermission})
		if len(recs) != 4 {
			t.Fatalf("%d check_permission records, want 4", len(recs))
		}
	})
}

// TestApprovalDecisions: only pending, unexpired requests are decided,
// once; each decision has its event and a security audit record naming
// the approver; bad input names the field.
func TestApprovalDecisions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{payWithApproval}})
		id := wantApprovalRequired(t, "call", e.pay(t, a.ID, `{"n":1}`))
		admin := e.newUser(t)

		for _, tc := range []struct {
			in    agents.ApproveInput
			field string
		}{
			{agents.ApproveInput{Mode: "forever"}, "mode"},
			{agents.ApproveInput{Mode: storage.ApprovalWindow}, "durationSeconds"},
			{agents.ApproveInput{Mode: storage.ApprovalWindow, Duration: 25 * time.Hour}, "durationSeconds"},
			{agents.ApproveInput{Mode: storage.ApprovalOnce, Duration: time.Minute}, "durationSeconds"},
		} {
			var ve *agents.ValidationError
			if _, err := e.svc.ApproveRequest(ctx, id, admin, tc.in); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("approve %+v: %v, want a validation error on %s", tc.in, err, tc.field)
			}
		}
		var ve *agents.ValidationError
		if _, err := e.svc.DenyRequest(ctx, id, admin, strings.Repeat("x", 501)); !errors.As(err, &ve) || ve.Field != "reason" {
			t.Fatalf("deny with a long reason: %v", err)
		}

		denied, err := e.svc.DenyRequest(ctx, id, admin, "  not this vendor ")
		if err != nil || denied.Status != storage.ApprovalDenied || denied.Reason != "not this vendor" || denied.DecidedBy != admin {
			t.Fatalf("deny: %+v, %v", denied, err)
		}
		if _, err := e.svc.ApproveRequest(ctx, id, admin, agents.ApproveInput{}); !errors.Is(err, agents.ErrApprovalNotPending) {
			t.Fatalf("approve a denied request: %v", err)
		}
		if _, err := e.svc.DenyRequest(ctx, id, admin, ""); !errors.Is(err, agents.ErrApprovalNotPending) {
			t.Fatalf("deny twice: %v", err)
		}
		for _, bad := range []string{"apr_missing", "apr_\xff"} {
			if _, err := e.svc.ApproveRequest(ctx, bad, admin, agents.ApproveInput{}); !errors.Is(err, agents.ErrApprovalNotFound) {
				t.Fatalf("approve %q: %v", bad, err)
			}
			if _, err := e.svc.GetApproval(ctx, bad); !errors.Is(err, agents.ErrApprovalNotFound) {
				t.Fatalf("get %q: %v", bad, err)
			}
		}
		// A denied call asks again with a new request.
		next := wantApprovalRequired(t, "after the denial", e.pay(t, a.ID, `{"n":1}`))
		if next == id {
			t.Fatal("denied request reused")
		}
		e.approve(t, next, storage.ApprovalWindow, time.Hour)

		if evs := e.events(t, agents.EventApprovalDenied); len(evs) != 1 || evs[0].Subject != id {
			t.Fatalf("approval.denied events %+v", evs)
		}
		if evs := e.events(t, agents.EventApprovalApproved); len(evs) != 1 || evs[0].Subject != next ||
			!strings.Contains(string(evs[0].Payload), `"mode":"window"`) {
			t.Fatalf("approval.approved events %+v", evs)
		}
		sec := e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindSecurity})
		var approvals []storage.AuditRecord
		for _, r := range sec {
			if strings.HasPrefix(r.Event, "approval.") {
				approvals = append(approvals, r)
			}
		}
		if len(approvals) != 2 || approvals[0].Event != agents.EventApprovalDenied || approvals[0].PrincipalID != admin ||
			approvals[0].Resource != "approval:"+id || approvals[1].Event != agents.EventApprovalApproved ||
			approvals[1].PrincipalID != e.owner || approvals[1].Resource != "approval:"+next {
			t.Fatalf("approval audit records %+v", approvals)
		}

		list, _, err := e.svc.ListApprovals(ctx, agents.ApprovalQuery{OwnerUserID: e.owner, Status: "bogus"})
		if !errors.As(err, &ve) || ve.Field != "status" || list != nil {
			t.Fatalf("list with a bad status: %v", err)
		}
		if _, _, err := e.svc.ListApprovals(ctx, agents.ApprovalQuery{Cursor: "nonsense!"}); !errors.As(err, &ve) || ve.Field != "cursor" {
			t.Fatalf("list with a bad cursor: %v", err)
		}
	})
}

// TestApprovalArguments: the arguments are kept for the approver, cut at
// the cap.
func TestApprovalArguments(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{payWithApproval}})
	long := `{"memo":"` + strings.Repeat("é", agents.MaxApprovalArgumentsBytes) + `"}`
	id := wantApprovalRequired(t, "long arguments", e.pay(t, a.ID, long))
	got, err := e.svc.GetApproval(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ArgumentsTruncated || len(got.Arguments) > agents.MaxApprovalArgumentsBytes ||
		len(got.Arguments) < agents.MaxApprovalArgumentsBytes-1 || !strings.HasPrefix(string(got.Arguments), `{"memo":"éé`) {
		t.Fatalf("cut arguments: %d bytes, truncated %v", len(got.Arguments), got.ArgumentsTruncated)
	}
	id = wantApprovalRequired(t, "no arguments", e.pay(t, a.ID, ""))
	if got, _ := e.svc.GetApproval(t.Context(), id); got.Arguments != nil || got.ArgsDigest != "" {
		t.Fatalf("no arguments: %+v", got)
	}
}

// TestApprovalConsumeConcurrent: of concurrent calls on one once approval,
// exactly one is allowed; the others share one new request.
func TestApprovalConsumeConcurrent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{payWithApproval}})
		for round := range 3 {
			id := wantApprovalRequired(t, "call", e.pay(t, a.ID, ""))
			e.approve(t, id, storage.ApprovalOnce, 0)
			const callers = 12
			results := make([]agents.Decision, callers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					<-start
					results[i] = e.pay(t, a.ID, "")
				})
			}
			close(start)
			wg.Wait()
			allowed, pending := 0, map[string]bool{}
			for _, d := range results {
				switch {
				case d.Allowed && d.ApprovalID == id:
					allowed++
				case d.Code == agents.CodeApprovalRequired && d.ApprovalID != "" && d.ApprovalID != id:
					pending[d.ApprovalID] = true
				default:
					t.Fatalf("round %d: decision %+v", round, d)
				}
			}
			if allowed != 1 || len(pending) != 1 {
				t.Fatalf("round %d: %d allowed, %d new requests; want 1 and 1", round, allowed, len(pending))
			}
			for next := range pending {
				if _, err := e.svc.DenyRequest(t.Context(), next, e.owner, ""); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
