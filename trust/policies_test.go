package trust_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
	"github.com/kavachos/kavach/trust"
)

func compile(s string) (trust.Matcher, error) {
	p, err := agents.ParsePattern(s)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// policyFixture is a store with agents, a trust service with policies,
// and a way to move agents' scores.
type policyFixture struct {
	t      testing.TB
	store  storage.Store
	agents *agents.Service
	trust  *trust.Service
	pol    *trust.Policies
	now    time.Time
	owner  string

	mu        sync.Mutex
	suspended []string
}

func newPolicyFixture(t testing.TB) *policyFixture {
	t.Helper()
	ctx := context.Background()
	f := &policyFixture{t: t, store: storagetest.OpenSQLite(t), now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	w := authz.NewAuditWriter(f.store.Audit())
	t.Cleanup(w.Close)
	clock := func() time.Time { return f.now }
	f.agents = agents.NewService(f.store, w, agents.Config{Now: clock})
	var err error
	if f.trust, err = trust.NewService(f.store, trust.DefaultModel(), trust.DetectorConfig{}, clock, nil); err != nil {
		t.Fatal(err)
	}
	f.pol, err = f.trust.EnablePolicies(ctx, trust.PolicyConfig{
		Compile: compile,
		Suspend: func(ctx context.Context, tx storage.Store, agentID string, why map[string]any) (bool, error) {
			return f.agents.SuspendForTrust(ctx, tx, agentID, why)
		},
		Suspended: func(_ context.Context, s trust.Suspension) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.suspended = append(f.suspended, s.AgentID)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.owner = id.New("usr")
	if err := f.store.Users().Create(ctx, &storage.User{ID: f.owner, Email: f.owner + "@example.com"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *policyFixture) agent(name string) string {
	f.t.Helper()
	a, _, _, err := f.agents.Create(context.Background(), agents.CreateInput{OwnerUserID: f.owner, Name: name,
		Permissions: []agents.Grant{{Resource: "mcp:*", Actions: []string{"*"}}}})
	if err != nil {
		f.t.Fatal(err)
	}
	return a.ID
}

// events applies n events of sig to the agent and stores them.
func (f *policyFixture) events(agentID string, sig trust.Signal, n int) {
	f.t.Helper()
	for range n {
		f.now = f.now.Add(time.Second)
		f.trust.Record(agentID, trust.Event{At: f.now, Signal: sig})
	}
	if err := f.trust.Flush(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *policyFixture) policy(in trust.PolicyInput) trust.Policy {
	f.t.Helper()
	p, err := f.pol.Create(context.Background(), trust.Actor{Type: "cli", Platform: true}, in)
	if err != nil {
		f.t.Fatalf("create %+v: %v", in, err)
	}
	return p
}

func global() trust.PolicyScope { return trust.PolicyScope{Type: storage.TrustPolicyGlobal} }

func (f *policyFixture) gate(chain []string, org, resource string) trust.Verdict {
	f.t.Helper()
	v, err := f.pol.Gate(context.Background(), trust.Subject{OrganizationID: org, Chain: chain}, resource)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func TestPolicyGate(t *testing.T) {
	f := newPolicyFixture(t)
	plain, special, parent := f.agent("plain"), f.agent("special"), f.agent("parent")
	if err := f.store.Organizations().Create(context.Background(), &storage.Organization{ID: "org_acme", Name: "Acme", Slug: "acme", Metadata: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if f.pol.Active() || f.gate([]string{plain}, "", "mcp:deploy:prod").Effect != "" {
		t.Fatal("a server without policies gated a call")
	}
	f.policy(trust.PolicyInput{Name: "deploys need standard", Scope: global(), Effect: trust.EffectMinimumLevel,
		Resources: []string{"mcp:deploy:*"}, Level: trust.LevelStandard})
	f.policy(trust.PolicyInput{Name: "special deploys need elevated", Scope: trust.PolicyScope{Type: storage.TrustPolicyAgent, ID: special},
		Effect: trust.EffectMinimumLevel, Resources: []string{"mcp:deploy:*"}, Level: trust.LevelElevated})
	f.policy(trust.PolicyInput{Name: "acme: a person below trusted", Scope: trust.PolicyScope{Type: storage.TrustPolicyOrganization, ID: "org_acme"},
		Effect: trust.EffectRequireApproval, Resources: []string{"mcp:*"}, Level: trust.LevelTrusted})
	off := false
	f.policy(trust.PolicyInput{Name: "disabled", Scope: global(), Effect: trust.EffectMinimumLevel,
		Resources: []string{"mcp:github:*"}, Level: trust.LevelElevated, Enabled: &off})
	if !f.pol.Active() {
		t.Fatal("policies not active")
	}

	// New agents are limited (50).
	if v := f.gate([]string{plain}, "", "mcp:deploy:prod"); v.Effect != trust.EffectMinimumLevel || v.Level != trust.LevelLimited ||
		v.Required != trust.LevelStandard || v.AgentID != plain || v.Policy.Name != "deploys need standard" {
		t.Fatalf("limited agent deploying: %+v", v)
	}
	if v := f.gate([]string{plain}, "", "mcp:github:issues"); v.Effect != "" {
		t.Fatalf("an unguarded resource (and a disabled policy): %+v", v)
	}
	f.events(plain, trust.SignalAllowed, 60)
	f.events(special, trust.SignalAllowed, 60)
	if v := f.gate([]string{plain}, "", "mcp:deploy:prod"); v.Effect != "" || v.Level != trust.LevelStandard {
		t.Fatalf("standard agent deploying: %+v", v)
	}
	// Policies only add: the agent's own stricter policy decides for it.
	if v := f.gate([]string{special}, "", "mcp:deploy:prod"); v.Effect != trust.EffectMinimumLevel || v.Required != trust.LevelElevated {
		t.Fatalf("special agent deploying: %+v", v)
	}
	// The organization's approval policy applies to its agents only, and
	// refusal wins over approval.
	if v := f.gate([]string{plain}, "org_acme", "mcp:github:issues"); v.Effect != trust.EffectRequireApproval || v.Required != trust.LevelTrusted {
		t.Fatalf("acme agent: %+v", v)
	}
	if v := f.gate([]string{special}, "org_acme", "mcp:deploy:x"); v.Effect != trust.EffectMinimumLevel {
		t.Fatalf("refusal and approval both apply: %+v", v)
	}

	// A sub-agent is no more trusted than the agents above it, and the
	// policies of an agent apply to those below it.
	f.events(parent, trust.SignalProbe, 2) // 50 - 16: untrusted
	child := f.agent("child")
	f.events(child, trust.SignalAllowed, 60)
	if v := f.gate([]string{child, parent}, "", "mcp:deploy:prod"); v.Effect != trust.EffectMinimumLevel || v.AgentID != parent || v.Level != trust.LevelUntrusted {
		t.Fatalf("child of an untrusted parent: %+v", v)
	}
	if v := f.gate([]string{plain, special}, "", "mcp:deploy:prod"); v.Required != trust.LevelElevated {
		t.Fatalf("below special: %+v", v)
	}
}

func TestPolicyScopes(t *testing.T) {
	f := newPolicyFixture(t)
	a := f.agent("a")
	f.policy(trust.PolicyInput{Name: "payments need trusted", Scope: global(), Effect: trust.EffectMinimumLevel,
		Scopes: []string{"payments:write"}, Level: trust.LevelTrusted})
	f.policy(trust.PolicyInput{Name: "read needs limited", Scope: global(), Effect: trust.EffectMinimumLevel,
		Scopes: []string{"payments:read"}, Level: trust.LevelLimited})
	refused, v, err := f.pol.RefusedScopes(context.Background(), trust.Subject{Chain: []string{a}}, []string{"payments:read", "payments:write", "mcp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[0] != "payments:write" || v.Required != trust.LevelTrusted || v.Level != trust.LevelLimited {
		t.Fatalf("refused %v, verdict %+v", refused, v)
	}
	if refused, _, _ := f.pol.RefusedScopes(context.Background(), trust.Subject{Chain: []string{a}}, []string{"mcp"}); len(refused) != 0 {
		t.Fatalf("an unguarded scope refused: %v", refused)
	}
}

// Suspend and alert policies act when the stored score crosses their line
// downwards, once per crossing.
func TestPolicySuspendsOnCrossing(t *testing.T) {
	f := newPolicyFixture(t)
	a, b := f.agent("a"), f.agent("b")
	below := func(v float64) *float64 { return &v }
	f.policy(trust.PolicyInput{Name: "stop at 30", Scope: trust.PolicyScope{Type: storage.TrustPolicyAgent, ID: a},
		Effect: trust.EffectSuspend, BelowScore: below(30)})
	f.policy(trust.PolicyInput{Name: "alert at 45", Scope: global(), Effect: trust.EffectAlert, BelowScore: below(45)})

	f.events(a, trust.SignalProbe, 1) // 42: crosses 45
	f.events(b, trust.SignalProbe, 1)
	if len(f.suspended) != 0 {
		t.Fatalf("suspended above the line: %v", f.suspended)
	}
	f.events(a, trust.SignalProbe, 2) // 26: crosses 30
	f.events(b, trust.SignalProbe, 2) // b has no suspend policy
	f.events(a, trust.SignalProbe, 1) // still below: no second action
	if len(f.suspended) != 1 || f.suspended[0] != a {
		t.Fatalf("suspended %v", f.suspended)
	}
	got, _, err := f.agents.Get(context.Background(), a)
	if err != nil || got.Status != storage.AgentSuspended {
		t.Fatalf("agent a: %+v %v", got, err)
	}
	if got, _, _ := f.agents.Get(context.Background(), b); got.Status != storage.AgentActive {
		t.Fatalf("agent b: %+v", got)
	}
	events, err := f.store.Events().Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]int{}
	for _, e := range events {
		if e.Type == trust.EventAlert {
			alerts[e.Subject]++
		}
	}
	if alerts[a] != 1 || alerts[b] != 1 {
		t.Fatalf("alerts %v", alerts)
	}
}

// Another node's change is seen on Reload, and not before.
func TestPolicyReload(t *testing.T) {
	f := newPolicyFixture(t)
	a := f.agent("a")
	other, err := trust.NewService(f.store, trust.DefaultModel(), trust.DetectorConfig{}, func() time.Time { return f.now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	op, err := other.EnablePolicies(context.Background(), trust.PolicyConfig{Compile: compile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Create(context.Background(), trust.Actor{Type: "cli", Platform: true}, trust.PolicyInput{Name: "x", Scope: global(),
		Effect: trust.EffectMinimumLevel, Resources: []string{"mcp:*"}, Level: trust.LevelElevated}); err != nil {
		t.Fatal(err)
	}
	if f.gate([]string{a}, "", "mcp:x").Effect != "" {
		t.Fatal("applied before reload")
	}
	if err := f.pol.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.gate([]string{a}, "", "mcp:x").Effect != trust.EffectMinimumLevel || f.pol.Epoch() != op.Epoch() {
		t.Fatal("not applied after reload")
	}
}

// BenchmarkPolicyGate is what Decide pays for trust policies: a dozen
// policies in force, one matching the call, the level from the cache.
func BenchmarkPolicyGate(b *testing.B) {
	f := newPolicyFixture(b)
	a := f.agent("a")
	f.policy(trust.PolicyInput{Name: "p", Scope: global(), Effect: trust.EffectMinimumLevel, Resources: []string{"mcp:service6:*"}, Level: trust.LevelLimited})
	for i := range 12 {
		f.policy(trust.PolicyInput{Name: "other", Scope: global(), Effect: trust.EffectMinimumLevel,
			Resources: []string{"billing:area" + string(rune('a'+i)) + ":*"}, Level: trust.LevelTrusted})
	}
	sub := trust.Subject{Chain: []string{a}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := f.pol.Gate(ctx, sub, "mcp:service6:issues"); err != nil || v.Effect != "" {
			b.Fatal(v, err)
		}
	}
}

// FuzzPolicyInput: whatever a policy's author sends, Create either stores
// a policy that the gate and the scope check then use without failing, or
// refuses it as invalid; never another error, never a panic.
func FuzzPolicyInput(f *testing.F) {
	for _, seed := range []string{
		`{"name":"x","scope":{"type":"global"},"effect":"minimum_level","resources":["mcp:*"],"level":"trusted"}`,
		`{"name":"x","scope":{"type":"global"},"effect":"suspend","belowScore":1e308}`,
		`{"name":"\u0000","scope":{"type":"agent","id":"\u0000"},"effect":"alert","belowScore":-0}`,
		`{"name":"x","scope":{"type":"organization","id":"org_x"},"effect":"require_approval","resources":["a:*:b","*"],"level":"limited"}`,
		`{"name":"x","scope":{"type":"global"},"effect":"minimum_level","scopes":["\"","a\\b"," "],"level":"elevated"}`,
		`{"name":"x","scope":{"type":"global"},"effect":"minimum_level","resources":["` + "\xff" + `"],"level":"standard","enabled":false}`,
	} {
		f.Add(seed)
	}
	fx := newPolicyFixture(f)
	a := fx.agent("a")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body string) {
		var in trust.PolicyInput
		if json.Unmarshal([]byte(body), &in) != nil {
			return
		}
		p, err := fx.pol.Create(ctx, trust.Actor{Type: "cli", Platform: true}, in)
		switch {
		case errors.Is(err, trust.ErrPolicyInvalid), errors.Is(err, trust.ErrTooManyPolicies):
			return
		case err != nil:
			t.Fatalf("%s: %v", body, err)
		}
		if _, err := fx.pol.Gate(ctx, trust.Subject{Chain: []string{a}}, "mcp:x:y"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := fx.pol.RefusedScopes(ctx, trust.Subject{Chain: []string{a}}, []string{"mcp"}); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.pol.Delete(ctx, trust.Actor{Type: "cli", Platform: true}, p.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// A policy acts again after the score recovered while the agent was idle
// (nothing stored meanwhile) and fell again.
func TestPolicyActsAgainAfterIdleRecovery(t *testing.T) {
	f := newPolicyFixture(t)
	ctx := context.Background()
	a := f.agent("a")
	below := func(v float64) *float64 { return &v }
	f.policy(trust.PolicyInput{Name: "stop at 30", Scope: global(), Effect: trust.EffectSuspend, BelowScore: below(30)})
	f.events(a, trust.SignalProbe, 3)
	if len(f.suspended) != 1 {
		t.Fatalf("first crossing: suspended %v", f.suspended)
	}
	if _, _, err := f.agents.Update(ctx, a, agents.UpdateInput{Status: ptrTo(storage.AgentActive)}); err != nil { // a person resumes it
		t.Fatal(err)
	}
	f.events(a, trust.SignalProbe, 1) // still below: the person is not overruled
	if len(f.suspended) != 1 {
		t.Fatalf("suspended again while below the line: %v", f.suspended)
	}
	f.now = f.now.Add(28 * 24 * time.Hour) // idle: the score recovers; nothing is stored
	if br, _, _ := f.trust.Explain(ctx, a); br.Score < 30 {
		t.Fatalf("no recovery: %v", br.Score)
	}
	f.events(a, trust.SignalProbe, 8)
	if len(f.suspended) != 2 {
		t.Fatalf("recovered above 30 and fell below again: suspended %v", f.suspended)
	}
}

func ptrTo[T any](v T) *T { return &v }

// Concurrent creates cannot pass MaxPolicies, on either database: each
// create locks the epoch before the count.
func TestPolicyCapUnderConcurrentCreates(t *testing.T) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			store := d.Open(t)
			tr, err := trust.NewService(store, trust.DefaultModel(), trust.DetectorConfig{}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			pol, err := tr.EnablePolicies(ctx, trust.PolicyConfig{Compile: compile})
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(`{"name":"x","scope":{"type":"global"},"effect":"alert","belowScore":10,"enabled":false}`)
			for i := range trust.MaxPolicies - 2 {
				if err := store.TrustPolicies().Create(ctx, &storage.TrustPolicy{ID: fmt.Sprintf("tpol_%04d", i), ScopeType: "global", Body: body, CreatedBy: "t"}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			var created, refused atomic.Int32
			for range 16 {
				wg.Go(func() {
					ten := 10.0
					_, err := pol.Create(ctx, trust.Actor{Type: "cli", Platform: true}, trust.PolicyInput{Name: "y", Scope: global(), Effect: trust.EffectAlert, BelowScore: &ten})
					switch {
					case err == nil:
						created.Add(1)
					case errors.Is(err, trust.ErrTooManyPolicies):
						refused.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n, err := store.TrustPolicies().Count(ctx); err != nil || n != trust.MaxPolicies || created.Load() != 2 || refused.Load() != 14 {
				t.Fatalf("%d policies (%v), %d created, %d refused", n, err, created.Load(), refused.Load())
			}
		})
	}
}

// BenchmarkFlushWithPolicies is a flush of 20 agents whose scores fall a
// little (an hour of decay and a rate-limit refusal each), with policies in
// force: a minimum level and an alert line no fall comes near. The flush
// acts on suspend and alert lines only when a fall crosses one.
func BenchmarkFlushWithPolicies(b *testing.B) {
	f := newPolicyFixture(b)
	f.policy(trust.PolicyInput{Name: "deploy", Scope: global(), Effect: trust.EffectMinimumLevel, Resources: []string{"deploy:*"}, Level: trust.LevelStandard})
	f.policy(trust.PolicyInput{Name: "alert", Scope: global(), Effect: trust.EffectAlert, BelowScore: ptrTo(1.0)})
	var ids []string
	for i := range 20 {
		a := f.agent("a" + string(rune('a'+i)))
		f.events(a, trust.SignalAllowed, 60)
		ids = append(ids, a)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		f.now = f.now.Add(time.Hour)
		for _, a := range ids {
			f.trust.Record(a, trust.Event{At: f.now, Signal: trust.SignalRateLimited})
		}
		if err := f.trust.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
