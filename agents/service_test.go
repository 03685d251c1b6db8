package agents_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/storagetest"
)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// t0 is a Wednesday, 10:00 UTC.
var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// env is a Service on a real store with a real, durable audit writer.
type env struct {
	store storage.Store
	svc   *agents.Service
	clock *clock
	owner string
}

func newEnv(t testing.TB, s storage.Store, cfg agents.Config) *env {
	t.Helper()
	e := &env{store: s, clock: &clock{t: t0}}
	e.reconfigure(t, cfg) // the writer's Close runs before the store's
	e.owner = e.newUser(t)
	return e
}

// reconfigure replaces the service with one built from cfg (on the same
// store and clock).
func (e *env) reconfigure(t testing.TB, cfg agents.Config) {
	w := authz.NewAuditWriter(e.store.Audit())
	t.Cleanup(w.Close)
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	e.svc = agents.NewService(e.store, w, cfg)
}

func (e *env) newUser(t testing.TB) string {
	t.Helper()
	uid := id.New("usr")
	u := &storage.User{ID: uid, Email: uid + "@example.com", Name: "Owner", CreatedAt: t0, UpdatedAt: t0}
	if err := e.store.Users().Create(t.Context(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return uid
}

// forEachDriver runs fn on SQLite, and on PostgreSQL when
// KAVACH_TEST_POSTGRES_URL is set.
func forEachDriver(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range storagetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) { fn(t, newEnv(t, d.Open(t), agents.Config{})) })
	}
}

func (e *env) create(t testing.TB, in agents.CreateInput) (storage.Agent, []agents.Grant, string) {
	t.Helper()
	if in.OwnerUserID == "" {
		in.OwnerUserID = e.owner
	}
	if in.Name == "" {
		in.Name = "test agent"
	}
	a, grants, key, err := e.svc.Create(t.Context(), in)
	if err != nil {
		t.Fatalf("create agent: %v", err)
	}
	return a, grants, key
}

func (e *env) decide(t testing.TB, agentID, action, resource string) agents.Decision {
	t.Helper()
	return e.svc.Decide(t.Context(), agents.DecideRequest{AgentID: agentID, Action: action, Resource: resource})
}

// wantDecision checks allowed and code, and that the decision has an
// audit id.
func wantDecision(t testing.TB, what string, d agents.Decision, allowed bool, code string) {
	t.Helper()
	if d.Allowed != allowed || d.Code != code || d.AuditID == "" {
		t.Fatalf("%s: got %+v, want allowed=%v code=%s with an audit id", what, d, allowed, code)
	}
}

// auditRecords returns the agent's audit records, oldest first.
func (e *env) auditRecords(t testing.TB, f storage.AuditFilter) []storage.AuditRecord {
	t.Helper()
	var out []storage.AuditRecord
	for {
		page, next, err := e.store.Audit().Query(t.Context(), f)
		if err != nil {
			t.Fatalf("query audit: %v", err)
		}
		out = append(out, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	slices.Reverse(out)
	return out
}

func auditByID(recs []storage.AuditRecord) map[string]storage.AuditRecord {
	m := make(map[string]storage.AuditRecord, len(recs))
	for _, r := range recs {
		m[r.ID] = r
	}
	return m
}

var (
	readGitHub = agents.Grant{Resource: "mcp:github:*", Actions: []string{"read", "create_issue"}}
	denyAdmin  = agents.Grant{Resource: "mcp:github:admin", Actions: []string{"*"}, Effect: agents.EffectDeny}
	readSlack  = agents.Grant{Resource: "mcp:slack:*", Actions: []string{"read"}}
)

// TestAgentLifecycle walks one agent through its life: create, key,
// decisions (each in the audit log), new permissions, suspend, resume,
// rotation with overlap, revocation.
func TestAgentLifecycle(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, grants, key := e.create(t, agents.CreateInput{
			Name: "  release bot ", Permissions: []agents.Grant{readGitHub, denyAdmin},
			Metadata: json.RawMessage(`{ "team": "ops" }`),
		})
		if a.Name != "release bot" || a.Type != storage.AgentAutonomous || a.Status != storage.AgentActive ||
			a.OwnerUserID == nil || *a.OwnerUserID != e.owner || string(a.Metadata) != `{"team":"ops"}` {
			t.Fatalf("created agent %+v", a)
		}
		if len(grants) != 2 || !strings.HasPrefix(grants[0].ID, "grt_") || grants[0].Resource != "mcp:github:*" || grants[1].Effect != agents.EffectDeny {
			t.Fatalf("created grants %+v", grants)
		}
		if !strings.HasPrefix(key, "kv_") || len(key) != 3+43 {
			t.Fatalf("key %q", key)
		}

		// The key authenticates the agent; others do not.
		got, err := e.svc.AuthenticateKey(ctx, key)
		if err != nil || got.ID != a.ID {
			t.Fatalf("authenticate: %+v, %v", got, err)
		}
		for _, bad := range []string{"", key[:len(key)-1], key + "x", "kv_" + id.Secret(), "xx_" + key[3:]} {
			if _, err := e.svc.AuthenticateKey(ctx, bad); !errors.Is(err, agents.ErrInvalidKey) {
				t.Fatalf("authenticate %q: %v", bad, err)
			}
		}

		// Get reads back what Create stored, in the given order.
		ga, gg, err := e.svc.Get(ctx, a.ID)
		if err != nil || ga.ID != a.ID || len(gg) != 2 || gg[0].ID != grants[0].ID || gg[1].ID != grants[1].ID {
			t.Fatalf("get: %+v %+v %v", ga, gg, err)
		}

		// Decisions, each with a durable audit record.
		allow := e.svc.Decide(ctx, agents.DecideRequest{AgentID: a.ID, Action: "read", Resource: "mcp:github:issues",
			Arguments: json.RawMessage(`{"repo": "kavachos/kavach"}`), IP: netip.MustParseAddr("2001:db8::7"), UserAgent: "agent/1.0"})
		wantDecision(t, "read issues", allow, true, agents.CodeAllowed)
		deny := e.decide(t, a.ID, "read", "mcp:github:admin")
		wantDecision(t, "read admin (deny grant)", deny, false, agents.CodePermissionDenied)
		none := e.decide(t, a.ID, "read", "mcp:slack:general")
		wantDecision(t, "slack (no grant)", none, false, agents.CodePermissionDenied)

		recs := auditByID(e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindDecision}))
		r, ok := recs[allow.AuditID]
		if !ok {
			t.Fatalf("allow decision %s not in the audit log", allow.AuditID)
		}
		if r.Event != agents.AuditEventAuthorize || r.PrincipalType != "agent" || r.PrincipalID != a.ID ||
			r.Action != "read" || r.Resource != "mcp:github:issues" || r.Result != storage.AuditAllow ||
			r.Reason != agents.CodeAllowed || r.IP != "2001:db8::7" || r.UserAgent != "agent/1.0" ||
			len(r.ArgsDigest) != 64 || !strings.Contains(string(r.Extra), grants[0].ID) || r.ActingFor != "" {
			t.Fatalf("allow record %+v", r)
		}
		if r := recs[deny.AuditID]; r.Result != storage.AuditDeny || r.Reason != agents.CodePermissionDenied {
			t.Fatalf("deny record %+v", r)
		}
		if _, ok := recs[none.AuditID]; !ok {
			t.Fatalf("deny decision %s not in the audit log", none.AuditID)
		}

		// New permissions change decisions at once, and keep the IDs of
		// grants passed back with their IDs.
		perms := []agents.Grant{grants[0], readSlack}
		ua, ug, err := e.svc.Update(ctx, a.ID, agents.UpdateInput{Permissions: &perms})
		if err != nil {
			t.Fatalf("update permissions: %v", err)
		}
		if len(ug) != 2 || ug[0].ID != grants[0].ID || ug[1].ID == "" || ug[1].ID == grants[1].ID || ua.Status != storage.AgentActive {
			t.Fatalf("updated grants %+v", ug)
		}
		wantDecision(t, "slack after update", e.decide(t, a.ID, "read", "mcp:slack:general"), true, agents.CodeAllowed)
		wantDecision(t, "admin after the deny is gone", e.decide(t, a.ID, "read", "mcp:github:admin"), true, agents.CodeAllowed)

		// Suspend: decisions and the key are refused, with the agent's status.
		suspended := storage.AgentSuspended
		if ua, _, err = e.svc.Update(ctx, a.ID, agents.UpdateInput{Status: &suspended}); err != nil || ua.Status != suspended {
			t.Fatalf("suspend: %+v, %v", ua, err)
		}
		wantDecision(t, "suspended", e.decide(t, a.ID, "read", "mcp:slack:general"), false, agents.CodeAgentSuspended)
		if got, err := e.svc.AuthenticateKey(ctx, key); !errors.Is(err, agents.ErrAgentSuspended) || got.ID != a.ID {
			t.Fatalf("authenticate while suspended: %+v, %v", got, err)
		}

		// Resume.
		active := storage.AgentActive
		if _, _, err = e.svc.Update(ctx, a.ID, agents.UpdateInput{Status: &active}); err != nil {
			t.Fatalf("resume: %v", err)
		}
		wantDecision(t, "resumed", e.decide(t, a.ID, "read", "mcp:slack:general"), true, agents.CodeAllowed)

		// Rotate with a ten-minute overlap: both keys work within it, only
		// the new one after it.
		newKey, err := e.svc.Rotate(ctx, a.ID, 10*time.Minute)
		if err != nil || newKey == key || !strings.HasPrefix(newKey, "kv_") {
			t.Fatalf("rotate: %q, %v", newKey, err)
		}
		e.clock.Advance(9 * time.Minute)
		for name, k := range map[string]string{"old": key, "new": newKey} {
			if _, err := e.svc.AuthenticateKey(ctx, k); err != nil {
				t.Fatalf("%s key within the overlap: %v", name, err)
			}
		}
		e.clock.Advance(time.Minute)
		if _, err := e.svc.AuthenticateKey(ctx, key); !errors.Is(err, agents.ErrInvalidKey) {
			t.Fatalf("old key after the overlap: %v", err)
		}
		if _, err := e.svc.AuthenticateKey(ctx, newKey); err != nil {
			t.Fatalf("new key after the overlap: %v", err)
		}

		// Rotate without overlap: the previous key dies at once.
		third, err := e.svc.Rotate(ctx, a.ID, 0)
		if err != nil {
			t.Fatalf("rotate: %v", err)
		}
		if _, err := e.svc.AuthenticateKey(ctx, newKey); !errors.Is(err, agents.ErrInvalidKey) {
			t.Fatalf("replaced key without overlap: %v", err)
		}

		// Revoke: permanent, every key dead, every decision refused.
		if err := e.svc.Revoke(ctx, a.ID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if err := e.svc.Revoke(ctx, a.ID); err != nil {
			t.Fatalf("revoke again: %v", err)
		}
		if _, err := e.svc.AuthenticateKey(ctx, third); !errors.Is(err, agents.ErrInvalidKey) {
			t.Fatalf("key of a revoked agent: %v", err)
		}
		wantDecision(t, "revoked", e.decide(t, a.ID, "read", "mcp:slack:general"), false, agents.CodeAgentRevoked)
		if ga, _, err := e.svc.Get(ctx, a.ID); err != nil || ga.Status != storage.AgentRevoked {
			t.Fatalf("get revoked: %+v, %v", ga, err)
		}
		if _, _, err := e.svc.Update(ctx, a.ID, agents.UpdateInput{Status: &active}); !errors.Is(err, agents.ErrAgentRevoked) {
			t.Fatalf("resume a revoked agent: %v", err)
		}
		if _, err := e.svc.Rotate(ctx, a.ID, 0); !errors.Is(err, agents.ErrAgentRevoked) {
			t.Fatalf("rotate a revoked agent: %v", err)
		}
		keys, err := e.store.AgentKeys().ListByAgent(ctx, a.ID)
		if err != nil || len(keys) != 3 {
			t.Fatalf("keys: %+v, %v", keys, err)
		}
		for _, k := range keys {
			if k.RevokedAt == nil || k.RevokedAt.After(e.clock.Now()) {
				t.Fatalf("key %s not revoked: %+v", k.Prefix, k)
			}
		}

		// The lifecycle is in the outbox and in the audit log as security
		// events, and no key appears anywhere.
		wantEvents := []string{agents.EventAgentCreated, agents.EventAgentUpdated, agents.EventAgentSuspended,
			agents.EventAgentResumed, agents.EventAgentRotated, agents.EventAgentRotated, agents.EventAgentRevoked}
		events, err := e.store.Events().Pending(ctx, 100)
		if err != nil {
			t.Fatalf("pending events: %v", err)
		}
		var gotEvents []string
		for _, ev := range events {
			if ev.Subject == a.ID {
				gotEvents = append(gotEvents, ev.Type)
			}
			for _, k := range []string{key, newKey, third} {
				if strings.Contains(string(ev.Payload), k[3:]) {
					t.Fatalf("event %s carries a key: %s", ev.Type, ev.Payload)
				}
			}
		}
		if !slices.Equal(gotEvents, wantEvents) {
			t.Fatalf("events %v, want %v", gotEvents, wantEvents)
		}
		var gotSecurity []string
		for _, r := range e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Kind: storage.AuditKindSecurity}) {
			gotSecurity = append(gotSecurity, r.Event)
			if r.PrincipalType != "user" || r.PrincipalID != e.owner || r.Result != storage.AuditOK {
				t.Fatalf("security record %+v", r)
			}
		}
		if !slices.Equal(gotSecurity, wantEvents) {
			t.Fatalf("security records %v, want %v", gotSecurity, wantEvents)
		}
		if err := verifyChain(t, e.store); err != nil {
			t.Fatal(err)
		}
	})
}

// verifyChain checks that the audit log's records link up (lifecycle
// records are appended inside transactions, decisions by the writer).
func verifyChain(t *testing.T, s storage.Store) error {
	prev := int64(0)
	return s.Audit().Scan(t.Context(), 0, func(r storage.AuditRecord) error {
		if r.Seq != prev+1 {
			return errors.New("audit log has a gap")
		}
		prev = r.Seq
		return nil
	})
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	past := t0.Add(-time.Second)
	now := t0
	tests := []struct {
		name  string
		in    agents.CreateInput
		field string
	}{
		{"empty name", agents.CreateInput{Name: "  "}, "name"},
		{"long name", agents.CreateInput{Name: strings.Repeat("x", agents.MaxNameRunes+1)}, "name"},
		{"control character in name", agents.CreateInput{Name: "bot\x07"}, "name"},
		{"bidi override in name", agents.CreateInput{Name: "bot\u202e"}, "name"},
		{"unknown type", agents.CreateInput{Name: "bot", Type: "robot"}, "type"},
		{"metadata array", agents.CreateInput{Name: "bot", Metadata: json.RawMessage(`[1]`)}, "metadata"},
		{"metadata not JSON", agents.CreateInput{Name: "bot", Metadata: json.RawMessage(`{`)}, "metadata"},
		{"metadata too large", agents.CreateInput{Name: "bot", Metadata: json.RawMessage(`{"a":"` + strings.Repeat("x", agents.MaxMetadataBytes) + `"}`)}, "metadata"},
		{"expiry in the past", agents.CreateInput{Name: "bot", ExpiresAt: &past}, "expiresAt"},
		{"expiry now", agents.CreateInput{Name: "bot", ExpiresAt: &now}, "expiresAt"},
		{"invalid grant", agents.CreateInput{Name: "bot", Permissions: []agents.Grant{readGitHub, {Resource: "mcp:*:x*", Actions: []string{"read"}}}}, "permissions[1]"},
		{"grant without actions", agents.CreateInput{Name: "bot", Permissions: []agents.Grant{{Resource: "mcp"}}}, "permissions[0]"},
		{"deny with constraints", agents.CreateInput{Name: "bot", Permissions: []agents.Grant{{Resource: "mcp", Actions: []string{"*"}, Effect: "deny", Constraints: agents.Constraints{RequireApproval: true}}}}, "permissions[0]"},
		{"unknown owner", agents.CreateInput{Name: "bot", OwnerUserID: "usr_nobody"}, "owner"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.OwnerUserID == "" {
				tc.in.OwnerUserID = e.owner
			}
			_, _, _, err := e.svc.Create(t.Context(), tc.in)
			var ve *agents.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("got %v, want a validation error on %s", err, tc.field)
			}
			if strings.HasPrefix(tc.field, "permissions") && !errors.Is(err, agents.ErrInvalidGrant) {
				t.Fatalf("%v does not wrap ErrInvalidGrant", err)
			}
		})
	}
	if list, err := e.svc.List(t.Context(), e.owner); err != nil || len(list) != 0 {
		t.Fatalf("refused creates stored agents: %+v, %v", list, err)
	}
	if _, _, _, err := e.svc.Create(t.Context(), agents.CreateInput{Name: "bot"}); err == nil {
		t.Fatal("an agent without an owner was created")
	}
}

func TestQuota(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		e.reconfigure(t, agents.Config{MaxAgentsPerOwner: 3})
		var ids []string
		for range 3 {
			a, _, _ := e.create(t, agents.CreateInput{})
			ids = append(ids, a.ID)
		}
		if _, _, _, err := e.svc.Create(ctx, agents.CreateInput{OwnerUserID: e.owner, Name: "fourth"}); !errors.Is(err, agents.ErrQuotaExceeded) {
			t.Fatalf("fourth agent: %v", err)
		}
		// Another owner has a quota of its own.
		if _, _, _, err := e.svc.Create(ctx, agents.CreateInput{OwnerUserID: e.newUser(t), Name: "other"}); err != nil {
			t.Fatalf("other owner: %v", err)
		}
		// A suspended agent still counts; a revoked one frees its place.
		suspended := storage.AgentSuspended
		if _, _, err := e.svc.Update(ctx, ids[0], agents.UpdateInput{Status: &suspended}); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := e.svc.Create(ctx, agents.CreateInput{OwnerUserID: e.owner, Name: "fourth"}); !errors.Is(err, agents.ErrQuotaExceeded) {
			t.Fatalf("fourth agent with one suspended: %v", err)
		}
		if err := e.svc.Revoke(ctx, ids[1]); err != nil {
			t.Fatal(err)
		}
		e.create(t, agents.CreateInput{Name: "replacement"})
		list, err := e.svc.List(ctx, e.owner)
		if err != nil || len(list) != 4 {
			t.Fatalf("list: %d agents, %v", len(list), err)
		}
	})
}

// TestQuotaConcurrent: the quota holds when creates race.
func TestQuotaConcurrent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		e.reconfigure(t, agents.Config{MaxAgentsPerOwner: 5})
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				_, _, _, err := e.svc.Create(t.Context(), agents.CreateInput{OwnerUserID: e.owner, Name: "racer"})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		created := 0
		for err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, agents.ErrQuotaExceeded):
				t.Fatalf("create: %v", err)
			}
		}
		if created != 5 {
			t.Fatalf("%d agents created, want 5", created)
		}
	})
}

func TestUpdate(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		exp := t0.Add(time.Hour)
		a, _, _ := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}, ExpiresAt: &exp})

		name, md := "renamed", json.RawMessage(`{"v": 2}`)
		later := t0.Add(48 * time.Hour)
		laterPtr := &later
		e.clock.Advance(time.Second)
		ua, ug, err := e.svc.Update(ctx, a.ID, agents.UpdateInput{Name: &name, Metadata: &md, ExpiresAt: &laterPtr})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if ua.Name != name || string(ua.Metadata) != `{"v":2}` || ua.ExpiresAt == nil || !ua.ExpiresAt.Equal(later) ||
			!ua.UpdatedAt.Equal(t0.Add(time.Second)) || len(ug) != 1 || ug[0].Resource != readGitHub.Resource {
			t.Fatalf("updated %+v %+v", ua, ug)
		}
		ga, _, err := e.svc.Get(ctx, a.ID)
		if err != nil || ga.Name != name || string(ga.Metadata) != `{"v":2}` || !ga.ExpiresAt.Equal(later) {
			t.Fatalf("get after update: %+v, %v", ga, err)
		}

		// Removing the expiry.
		var none *time.Time
		if ua, _, err = e.svc.Update(ctx, a.ID, agents.UpdateInput{ExpiresAt: &none}); err != nil || ua.ExpiresAt != nil {
			t.Fatalf("clear expiry: %+v, %v", ua, err)
		}

		// Refused input changes nothing.
		revoked, empty := storage.AgentRevoked, ""
		bad := []agents.Grant{{Resource: "a::b", Actions: []string{"x"}}}
		for name, in := range map[string]agents.UpdateInput{
			"status revoked": {Status: &revoked},
			"empty name":     {Name: &empty},
			"bad grant":      {Permissions: &bad},
		} {
			var ve *agents.ValidationError
			if _, _, err := e.svc.Update(ctx, a.ID, in); !errors.As(err, &ve) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if _, _, err := e.svc.Update(ctx, "agt_missing", agents.UpdateInput{Name: &name}); !errors.Is(err, agents.ErrAgentNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		if _, _, err := e.svc.Get(ctx, "agt_missing"); !errors.Is(err, agents.ErrAgentNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		if err := e.svc.Revoke(ctx, "agt_missing"); !errors.Is(err, agents.ErrAgentNotFound) {
			t.Fatalf("revoke missing: %v", err)
		}

		// An update that changes nothing writes no event.
		before, _ := e.store.Events().Pending(ctx, 100)
		if _, _, err := e.svc.Update(ctx, a.ID, agents.UpdateInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		after, _ := e.store.Events().Pending(ctx, 100)
		if len(after) != len(before) {
			t.Fatalf("a no-op update wrote %d events", len(after)-len(before))
		}
	})
}

func TestExpiry(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		exp := t0.Add(time.Hour)
		a, _, key := e.create(t, agents.CreateInput{Permissions: []agents.Grant{readGitHub}, ExpiresAt: &exp})
		wantDecision(t, "before expiry", e.decide(t, a.ID, "read", "mcp:github:x"), true, agents.CodeAllowed)

		e.clock.Advance(time.Hour)
		wantDecision(t, "at expiry", e.decide(t, a.ID, "read", "mcp:github:x"), false, agents.CodeAgentExpired)
		if got, err := e.svc.AuthenticateKey(ctx, key); !errors.Is(err, agents.ErrAgentExpired) || got.Status != storage.AgentExpired {
			t.Fatalf("authenticate expired: %+v, %v", got, err)
		}
		if ga, _, _ := e.svc.Get(ctx, a.ID); ga.Status != storage.AgentExpired {
			t.Fatalf("get: status %s", ga.Status)
		}
		if list, _ := e.svc.List(ctx, e.owner); len(list) != 1 || list[0].Status != storage.AgentExpired {
			t.Fatalf("list: %+v", list)
		}

		// Moving the expiry forward brings the agent back.
		later := t0.Add(24 * time.Hour)
		laterPtr := &later
		if _, _, err := e.svc.Update(ctx, a.ID, agents.UpdateInput{ExpiresAt: &laterPtr}); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, "after extending", e.decide(t, a.ID, "read", "mcp:github:x"), true, agents.CodeAllowed)
	})
}

func TestRevokeDeactivatesClientTokens(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		c := &storage.OAuthClient{ID: id.New("cli"), SecretHash: strings.Repeat("ab", 32), Source: storage.ClientSourcePreregistered,
			Metadata: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}
		if err := e.store.OAuthClients().Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		a := &storage.Agent{ID: id.New("agt"), Type: storage.AgentService, Name: "svc", OwnerUserID: &e.owner, ClientID: &c.ID,
			Status: storage.AgentActive, CreatedAt: t0, UpdatedAt: t0}
		if err := e.store.Agents().Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		tok := &storage.OAuthToken{Kind: storage.TokenKindAccess, Signature: id.Secret(), RequestID: "req1", ClientID: c.ID,
			Active: true, RequestedAt: t0, ExpiresAt: t0.Add(time.Hour), Data: []byte(`{}`)}
		if err := e.store.OAuthTokens().Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Revoke(ctx, a.ID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		got, err := e.store.OAuthTokens().Get(ctx, tok.Kind, tok.Signature)
		if err != nil || got.Active {
			t.Fatalf("token of a revoked agent: %+v, %v", got, err)
		}
	})
}

// TestActor: a lifecycle record names the actor the caller gives.
func TestActor(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), agents.Config{})
	admin := e.newUser(t)
	a, _, _ := e.create(t, agents.CreateInput{})
	if err := e.svc.Revoke(agents.WithActor(t.Context(), "user", admin), a.ID); err != nil {
		t.Fatal(err)
	}
	recs := e.auditRecords(t, storage.AuditFilter{AgentID: a.ID, Event: agents.EventAgentRevoked})
	if len(recs) != 1 || recs[0].PrincipalID != admin {
		t.Fatalf("revoke records %+v", recs)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg agents.Config
		ok  bool
	}{
		{agents.Config{}, true},
		{agents.Config{KeyPrefix: "ak_", MaxAgentsPerOwner: 5}, true},
		{agents.Config{MaxAgentsPerOwner: -1}, false},
		{agents.Config{KeyPrefix: "k v"}, false},
		{agents.Config{KeyPrefix: "toolongprefix_"}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}
