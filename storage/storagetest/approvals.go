package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var approvalTests = []test{
	{"CreateGet", testApprovalCreateGet},
	{"OnePendingPerCall", testApprovalOnePendingPerCall},
	{"ExpiredPendingMakesRoom", testApprovalExpiredPendingMakesRoom},
	{"FindUsable", testApprovalFindUsable},
	{"ConsumeOnce", testApprovalConsumeOnce},
	{"DecideOnlyPending", testApprovalDecideOnlyPending},
	{"ListByOwnerPaginated", testApprovalListByOwnerPaginated},
	{"ListStatusAndExpire", testApprovalListStatusAndExpire},
	{"AgentDeleteCascades", testApprovalAgentDeleteCascades},
	{"RaceConsumeOnce", testApprovalRaceConsumeOnce},
	{"RaceCreatePending", testApprovalRaceCreatePending},
	{"RaceDecide", testApprovalRaceDecide},
}

// approvalFixture is an owner and one of its agents.
type approvalFixture struct {
	owner *storage.User
	agent *storage.Agent
}

func newApprovalFixture(t *testing.T, s storage.Store) approvalFixture {
	t.Helper()
	u := createUser(t, s)
	a := newAgent(newID("agt"), storage.AgentAutonomous, &u.ID, nil)
	must(t, "create agent", s.Agents().Create(t.Context(), a))
	return approvalFixture{owner: u, agent: a}
}

// pending returns a pending request of f's agent for resource, requested
// at at and pending for an hour.
func (f approvalFixture) pending(resource string, at time.Time) *storage.Approval {
	return &storage.Approval{ID: newID("apr"), AgentID: f.agent.ID, OwnerUserID: &f.owner.ID, Action: "pay",
		Resource: resource, ArgsDigest: randomHex(32), RequestedAt: at, ExpiresAt: at.Add(time.Hour)}
}

func (f approvalFixture) key(a *storage.Approval) storage.ApprovalKey {
	return storage.ApprovalKey{AgentID: a.AgentID, Action: a.Action, Resource: a.Resource, ArgsDigest: a.ArgsDigest}
}

func createPending(t *testing.T, s storage.Store, a *storage.Approval) *storage.Approval {
	t.Helper()
	ok, err := s.Approvals().CreatePending(t.Context(), a)
	must(t, "create pending", err)
	if !ok {
		t.Fatalf("create pending %s: not created", a.ID)
	}
	return a
}

// approve decides a as approved in mode until until, at at.
func approve(t *testing.T, s storage.Store, a *storage.Approval, mode string, at, until time.Time) {
	t.Helper()
	a.Status, a.Mode, a.DecidedAt, a.DecidedBy, a.ApprovedUntil = storage.ApprovalApproved, mode, &at, "usr_approver", &until
	must(t, "approve "+a.ID, s.Approvals().Decide(t.Context(), a))
}

func testApprovalCreateGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	at := now()
	a := f.pending("mcp:payments:invoice", at)
	a.ActingFor = f.owner.ID
	a.Arguments = []byte(`{"amount":12,"memo":"ünï ✓"}`)
	createPending(t, s, a)
	got, err := s.Approvals().Get(ctx, a.ID)
	must(t, "get", err)
	want := *a
	want.Status = storage.ApprovalPending
	wantSame(t, "get", got, &want)
	wantUTC(t, "get", got.RequestedAt, got.ExpiresAt)

	// No arguments, no owner, arguments cut at the cap.
	b := f.pending("mcp:payments:refund", at)
	b.OwnerUserID, b.ArgsDigest, b.Arguments = nil, "", nil
	createPending(t, s, b)
	got, err = s.Approvals().Get(ctx, b.ID)
	must(t, "get b", err)
	if got.Arguments != nil || got.OwnerUserID != nil || got.ArgsDigest != "" || got.ArgumentsTruncated {
		t.Fatalf("approval without arguments or owner: %+v", got)
	}
	c := f.pending("mcp:payments:refund", at)
	c.Arguments, c.ArgumentsTruncated = []byte(`{"memo":"abc`), true
	createPending(t, s, c)
	got, err = s.Approvals().Get(ctx, c.ID)
	must(t, "get c", err)
	if string(got.Arguments) != `{"memo":"abc` || !got.ArgumentsTruncated {
		t.Fatalf("truncated arguments: %+v", got)
	}

	wantErr(t, "get missing", func() error { _, err := s.Approvals().Get(ctx, "apr_missing"); return err }(), storage.ErrNotFound)
	bad := f.pending("mcp:payments:x", at)
	bad.Arguments = []byte("a\x00b")
	_, err = s.Approvals().CreatePending(ctx, bad)
	wantErr(t, "create with NUL in the arguments", err, storage.ErrInvalidValue)
}

func testApprovalOnePendingPerCall(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	at := now()
	a := createPending(t, s, f.pending("mcp:payments:invoice", at))
	again := f.pending("mcp:payments:invoice", at)
	again.ArgsDigest = a.ArgsDigest
	ok, err := s.Approvals().CreatePending(ctx, again)
	must(t, "create again", err)
	if ok {
		t.Fatal("a second pending request for one call was stored")
	}
	got, err := s.Approvals().FindPending(ctx, f.key(a), at)
	must(t, "find pending", err)
	if got.ID != a.ID {
		t.Fatalf("found %s, want %s", got.ID, a.ID)
	}
	// Other arguments are another call.
	createPending(t, s, f.pending("mcp:payments:invoice", at))
	// A decided request makes room for a new one.
	approve(t, s, a, storage.ApprovalOnce, at, at.Add(time.Hour))
	again.ID = newID("apr")
	createPending(t, s, again)
	if _, err := s.Approvals().FindPending(ctx, f.key(a), at.Add(time.Hour)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("find pending after it expired: %v", err)
	}
}

func testApprovalExpiredPendingMakesRoom(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	at := now()
	old := createPending(t, s, f.pending("mcp:payments:invoice", at))
	later := at.Add(time.Hour) // old expires exactly now
	fresh := f.pending("mcp:payments:invoice", later)
	fresh.ArgsDigest = old.ArgsDigest
	createPending(t, s, fresh)
	got, err := s.Approvals().Get(ctx, old.ID)
	must(t, "get old", err)
	if got.Status != storage.ApprovalExpired {
		t.Fatalf("lapsed request has status %q, want expired", got.Status)
	}
	got, err = s.Approvals().FindPending(ctx, f.key(old), later)
	must(t, "find pending", err)
	if got.ID != fresh.ID {
		t.Fatalf("found %s, want the new request %s", got.ID, fresh.ID)
	}
}

func testApprovalFindUsable(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	at := now()
	once := createPending(t, s, f.pending("mcp:payments:invoice", at))
	key := f.key(once)
	if _, err := s.Approvals().FindUsable(ctx, key, at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("pending request is usable: %v", err)
	}
	approve(t, s, once, storage.ApprovalOnce, at, at.Add(time.Hour))
	got, err := s.Approvals().FindUsable(ctx, key, at)
	must(t, "find once", err)
	if got.ID != once.ID || got.Mode != storage.ApprovalOnce || got.Status != storage.ApprovalApproved || got.DecidedBy != "usr_approver" {
		t.Fatalf("usable %+v", got)
	}
	// A window covering the call comes first, so the once approval stays.
	window := f.pending("mcp:payments:invoice", at.Add(time.Second))
	window.ArgsDigest = once.ArgsDigest
	createPending(t, s, window)
	approve(t, s, window, storage.ApprovalWindow, at.Add(time.Second), at.Add(10*time.Minute))
	if got, err = s.Approvals().FindUsable(ctx, key, at.Add(time.Minute)); err != nil || got.ID != window.ID {
		t.Fatalf("with a window: %+v, %v", got, err)
	}
	// The window ends (half-open); the once approval is found again.
	if got, err = s.Approvals().FindUsable(ctx, key, at.Add(10*time.Minute)); err != nil || got.ID != once.ID {
		t.Fatalf("after the window: %+v, %v", got, err)
	}
	must(t, "consume", s.Approvals().Consume(ctx, once.ID, at.Add(11*time.Minute)))
	if _, err := s.Approvals().FindUsable(ctx, key, at.Add(11*time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consumed approval is usable: %v", err)
	}
	// Another call's key finds nothing.
	other := key
	other.Resource = "mcp:payments:other"
	if _, err := s.Approvals().FindUsable(ctx, other, at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("other call: %v", err)
	}
}

func testApprovalConsumeOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	at := now()
	a := createPending(t, s, f.pending("mcp:payments:invoice", at))
	wantErr(t, "consume pending", s.Approvals().Consume(ctx, a.ID, at), storage.ErrNotFound)
	approve(t, s, a, storage.ApprovalOnce, at, at.Add(time.Hour))
	wantErr(t, "consume after its end", s.Approvals().Consume(ctx, a.ID, at.Add(time.Hour)), storage.ErrNotFound)
	used := at.Add(time.Minute)
	must(t, "consume", s.Approvals().Consume(ctx, a.ID, used))
	wantErr(t, "consume twice", s.Approvals().Consume(ctx, a.ID, used), storage.ErrNotFound)
	got, err := s.Approvals().Get(ctx, a.ID)
	must(t, "get", err)
	wantSame(t, "consumed at", got.ConsumedAt, &used)

	w := createPending(t, s, f.pending("mcp:payments:invoice", at))
	approve(t, s, w, storage.ApprovalWindow, at, at.Add(time.Hour))
	wantErr(t, "consume a window", s.Approvals().Consume(ctx, w.ID, used), storage.ErrNotFound)
	wantErr(t, "consume unknown", s.Approvals().Consume(ctx, "apr_missing", used), storage.ErrNotFound)
}

func testApprovalDecideOnlyPending(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	at := now()
	a := createPending(t, s, f.pending("mcp:payments:invoice", at))
	decided := at.Add(time.Minute)
	a.Status, a.DecidedAt, a.DecidedBy, a.Reason = storage.ApprovalDenied, &decided, "usr_approver", "not today ✓"
	must(t, "deny", s.Approvals().Decide(ctx, a))
	got, err := s.Approvals().Get(ctx, a.ID)
	must(t, "get", err)
	wantSame(t, "denied", got, a)
	// Decided requests cannot be decided again.
	approve2 := *a
	approve2.Status, approve2.Mode, approve2.Reason = storage.ApprovalApproved, storage.ApprovalOnce, ""
	wantErr(t, "approve a denied request", s.Approvals().Decide(ctx, &approve2), storage.ErrNotFound)
	// Nor expired ones: ExpiresAt is exclusive.
	b := createPending(t, s, f.pending("mcp:payments:invoice", at))
	end := b.ExpiresAt
	b.Status, b.Mode, b.DecidedAt, b.ApprovedUntil = storage.ApprovalApproved, storage.ApprovalOnce, &end, &end
	wantErr(t, "approve at expiry", s.Approvals().Decide(ctx, b), storage.ErrNotFound)
	got, err = s.Approvals().Get(ctx, b.ID)
	must(t, "get b", err)
	if got.Status != storage.ApprovalPending || got.DecidedAt != nil {
		t.Fatalf("refused decision changed the row: %+v", got)
	}
	b.ID = "apr_missing"
	wantErr(t, "decide unknown", s.Approvals().Decide(ctx, b), storage.ErrNotFound)
}

func testApprovalListByOwnerPaginated(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	g := newApprovalFixture(t, s)
	at := now()
	var mine []storage.Approval // newest first
	for i := range 7 {
		// Two requests share each instant, so the id breaks ties.
		a := createPending(t, s, f.pending(fmt.Sprintf("mcp:payments:r%d", i), at.Add(time.Duration(i/2)*time.Second)))
		mine = append([]storage.Approval{*a}, mine...)
		createPending(t, s, g.pending(fmt.Sprintf("mcp:payments:r%d", i), at))
	}
	// Sort the expected list as List does: requested_at, then id, descending.
	for i := 1; i < len(mine); i++ {
		for j := i; j > 0 && mine[j].RequestedAt.Equal(mine[j-1].RequestedAt) && mine[j].ID > mine[j-1].ID; j-- {
			mine[j], mine[j-1] = mine[j-1], mine[j]
		}
	}
	var got []storage.Approval
	filter := storage.ApprovalFilter{OwnerUserID: f.owner.ID, Status: storage.ApprovalPending, Now: at, Limit: 3}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		page, next, err := s.Approvals().List(ctx, filter)
		must(t, "list", err)
		if len(page) > 3 {
			t.Fatalf("page of %d, want at most 3", len(page))
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		filter.Cursor = next
	}
	var gotIDs, wantIDs []string
	for i := range got {
		gotIDs = append(gotIDs, got[i].ID)
	}
	for i := range mine {
		wantIDs = append(wantIDs, mine[i].ID)
	}
	wantSame(t, "owner's approvals, newest first", gotIDs, wantIDs)

	all, _, err := s.Approvals().List(ctx, storage.ApprovalFilter{Now: at})
	must(t, "list all", err)
	if len(all) != 14 {
		t.Fatalf("list all: %d approvals, want 14", len(all))
	}
	byAgent, _, err := s.Approvals().List(ctx, storage.ApprovalFilter{AgentID: g.agent.ID, Now: at})
	must(t, "list by agent", err)
	if len(byAgent) != 7 || byAgent[0].AgentID != g.agent.ID {
		t.Fatalf("list by agent: %d approvals", len(byAgent))
	}
	// Not base64, no id ("r123"), a time that is not a number ("rx|apr_1").
	for _, c := range []string{"nonsense!", "cjEyMw", "cnh8YXByXzE"} {
		_, _, err := s.Approvals().List(ctx, storage.ApprovalFilter{Cursor: c})
		wantErr(t, "list with cursor "+c, err, storage.ErrInvalidValue)
	}
}

func testApprovalListStatusAndExpire(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	at := now()
	pending := createPending(t, s, f.pending("mcp:payments:a", at))
	lapsed := createPending(t, s, f.pending("mcp:payments:b", at.Add(-time.Hour)))
	approved := createPending(t, s, f.pending("mcp:payments:c", at))
	approve(t, s, approved, storage.ApprovalWindow, at, at.Add(time.Hour))
	denied := createPending(t, s, f.pending("mcp:payments:d", at))
	denied.Status, denied.DecidedAt = storage.ApprovalDenied, &at
	must(t, "deny", s.Approvals().Decide(ctx, denied))

	ids := func(status string) []string {
		t.Helper()
		list, _, err := s.Approvals().List(ctx, storage.ApprovalFilter{OwnerUserID: f.owner.ID, Status: status, Now: at})
		must(t, "list "+status, err)
		var out []string
		for _, a := range list {
			out = append(out, a.ID)
		}
		return out
	}
	check := func(when string) {
		t.Helper()
		wantSame(t, when+": pending", ids(storage.ApprovalPending), []string{pending.ID})
		wantSame(t, when+": expired", ids(storage.ApprovalExpired), []string{lapsed.ID})
		wantSame(t, when+": approved", ids(storage.ApprovalApproved), []string{approved.ID})
		wantSame(t, when+": denied", ids(storage.ApprovalDenied), []string{denied.ID})
		if n := len(ids("")); n != 4 {
			t.Fatalf("%s: %d approvals in all, want 4", when, n)
		}
	}
	check("before the sweep")
	n, err := s.Approvals().ExpirePending(ctx, at)
	must(t, "expire", err)
	if n != 1 {
		t.Fatalf("expired %d requests, want 1", n)
	}
	got, err := s.Approvals().Get(ctx, lapsed.ID)
	must(t, "get lapsed", err)
	if got.Status != storage.ApprovalExpired {
		t.Fatalf("swept request has status %q", got.Status)
	}
	check("after the sweep")
}

func testApprovalAgentDeleteCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	f := newApprovalFixture(t, s)
	a := createPending(t, s, f.pending("mcp:payments:a", now()))
	must(t, "delete agent", s.Agents().Delete(ctx, f.agent.ID))
	wantErr(t, "get after the agent was deleted", func() error { _, err := s.Approvals().Get(ctx, a.ID); return err }(), storage.ErrNotFound)
}

// testApprovalRaceConsumeOnce: of concurrent consumers of one once
// approval, exactly one wins.
func testApprovalRaceConsumeOnce(t *testing.T, s storage.Store) {
	f := newApprovalFixture(t, s)
	for round := range rounds {
		at := now()
		a := createPending(t, s, f.pending(fmt.Sprintf("mcp:payments:r%d", round), at))
		approve(t, s, a, storage.ApprovalOnce, at, at.Add(time.Hour))
		errs := race(func(int) error { return s.Approvals().Consume(t.Context(), a.ID, at) })
		wantOneWinner(t, errs, storage.ErrNotFound)
	}
}

// testApprovalRaceCreatePending: concurrent requests for one call leave
// one pending request, and every caller can find it.
func testApprovalRaceCreatePending(t *testing.T, s storage.Store) {
	f := newApprovalFixture(t, s)
	for round := range rounds {
		at := now()
		digest := randomHex(32)
		resource := fmt.Sprintf("mcp:payments:r%d", round)
		errs := race(func(int) error {
			a := f.pending(resource, at)
			a.ArgsDigest = digest
			ok, err := s.Approvals().CreatePending(t.Context(), a)
			if err == nil && !ok {
				return errLost
			}
			return err
		})
		wantOneWinner(t, errs, errLost)
		list, _, err := s.Approvals().List(t.Context(), storage.ApprovalFilter{AgentID: f.agent.ID, Status: storage.ApprovalPending, Now: at, Limit: storage.ApprovalListMax})
		must(t, "list", err)
		if len(list) != round+1 {
			t.Fatalf("round %d: %d pending requests, want %d", round, len(list), round+1)
		}
	}
}

// testApprovalRaceDecide: of concurrent approvers and deniers of one
// request, exactly one decides it.
func testApprovalRaceDecide(t *testing.T, s storage.Store) {
	f := newApprovalFixture(t, s)
	for round := range rounds {
		at := now()
		a := createPending(t, s, f.pending(fmt.Sprintf("mcp:payments:r%d", round), at))
		errs := race(func(i int) error {
			d := *a
			d.DecidedAt, d.DecidedBy = &at, fmt.Sprintf("usr_%d", i)
			if i%2 == 0 {
				until := at.Add(time.Hour)
				d.Status, d.Mode, d.ApprovedUntil = storage.ApprovalApproved, storage.ApprovalOnce, &until
			} else {
				d.Status = storage.ApprovalDenied
			}
			return s.Approvals().Decide(t.Context(), &d)
		})
		wantOneWinner(t, errs, storage.ErrNotFound)
	}
}
