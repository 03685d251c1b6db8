package kavach_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
)

type policyView struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Scope      trust.PolicyScope `json:"scope"`
	Effect     string            `json:"effect"`
	Resources  []string          `json:"resources"`
	Scopes     []string          `json:"scopes"`
	Level      string            `json:"level"`
	BelowScore float64           `json:"belowScore"`
	Enabled    bool              `json:"enabled"`
	ManagedBy  string            `json:"managedBy"`
	Version    int64             `json:"version"`
	CreatedBy  string            `json:"createdBy"`
	UpdatedBy  string            `json:"updatedBy"`
}

// The policies API: who may read and write which scopes, validation with
// the field named, versions with optimistic concurrency, history that
// outlives the policy, audit records and events for every change.
func TestTrustPoliciesAPI(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"platform@example.com"} })
		admin := e.newAdmin(t, "platform@example.com")
		orgOwner := e.client()
		orgOwner.signUp("lead@example.com")
		var org struct {
			ID string `json:"id"`
		}
		orgOwner.do("POST", "/api/auth/organizations", map[string]any{"name": "Acme", "slug": "acme"}).must(t, 201).decode(t, &org)
		var orgAgent agentCreated
		orgOwner.do("POST", "/api/auth/agents", map[string]any{"name": "acme bot", "organizationId": org.ID,
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &orgAgent)
		user := e.client()
		user.signUp("dev@example.com")
		var mine agentCreated
		user.do("POST", "/api/auth/agents", map[string]any{"name": "mine",
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &mine)

		global := map[string]any{"name": "deploys need standard", "scope": map[string]any{"type": "global"},
			"effect": "minimum_level", "resources": []string{"mcp:deploy:*"}, "level": "standard"}
		// Nobody but admins and organization owners and admins.
		user.do("GET", "/api/auth/trust/policies", nil).mustError(t, 403, "FORBIDDEN")
		user.do("POST", "/api/auth/trust/policies", global).mustError(t, 403, "FORBIDDEN")
		user.do("POST", "/api/auth/trust/policies", map[string]any{"name": "x", "scope": map[string]any{"type": "agent", "id": mine.Agent.ID},
			"effect": "suspend", "belowScore": 10}).mustError(t, 403, "FORBIDDEN")
		orgOwner.do("POST", "/api/auth/trust/policies", global).mustError(t, 403, "FORBIDDEN")
		e.client().do("GET", "/api/auth/trust/policies", nil).mustError(t, 401, "UNAUTHENTICATED")

		// Bad input is a 400 naming the field, never a 500.
		for _, bad := range []struct {
			change map[string]any
			field  string
		}{
			{map[string]any{"name": ""}, "name"},
			{map[string]any{"name": strings.Repeat("n", 129)}, "name"},
			{map[string]any{"effect": "deny"}, "effect"},
			{map[string]any{"level": "godlike"}, "level"},
			{map[string]any{"level": "untrusted"}, "level"},
			{map[string]any{"resources": []string{}}, "resources"},
			{map[string]any{"resources": []string{"a::b"}}, "resources[0]"},
			{map[string]any{"scopes": []string{"has space"}}, "scopes[0]"},
			{map[string]any{"belowScore": 10}, "belowScore"},
			{map[string]any{"scope": map[string]any{"type": "global", "id": "x"}}, "scope.id"},
			{map[string]any{"scope": map[string]any{"type": "team"}}, "scope.type"},
			{map[string]any{"scope": map[string]any{"type": "agent", "id": "agt_missing"}}, "scope.id"},
			{map[string]any{"scope": map[string]any{"type": "organization"}}, "scope.id"},
			{map[string]any{"effect": "suspend", "level": "", "resources": nil}, "belowScore"},
			{map[string]any{"effect": "suspend", "level": "", "resources": nil, "belowScore": 101}, "belowScore"},
			{map[string]any{"effect": "alert", "belowScore": 50}, "level"},
			{map[string]any{"effect": "require_approval", "scopes": []string{"mcp"}}, "scopes"},
			{map[string]any{"version": 3}, "version"},
		} {
			body := map[string]any{}
			for k, v := range global {
				body[k] = v
			}
			for k, v := range bad.change {
				body[k] = v
			}
			r := admin.do("POST", "/api/auth/trust/policies", body).mustError(t, 400, "INVALID_POLICY")
			if !strings.Contains(r.Error.Message, bad.field) {
				t.Fatalf("%v: message %q does not name %s", bad.change, r.Error.Message, bad.field)
			}
		}
		admin.do("POST", "/api/auth/trust/policies", map[string]any{"name": "x", "unknown": true}).mustError(t, 400, "INVALID_REQUEST")

		var p policyView
		admin.do("POST", "/api/auth/trust/policies", global).must(t, 201).decode(t, &p)
		if p.Version != 1 || !p.Enabled || p.Level != "standard" || p.Scope.Type != "global" || p.CreatedBy == "" || !strings.HasPrefix(p.ID, "tpol_") {
			t.Fatalf("created %+v", p)
		}
		// A new version replaces the whole policy; a stale one is refused.
		update := map[string]any{"name": "deploys need trusted", "scope": map[string]any{"type": "global"},
			"effect": "minimum_level", "resources": []string{"mcp:deploy:*", "mcp:infra:*"}, "level": "trusted", "version": 1}
		var v2 policyView
		admin.do("PUT", "/api/auth/trust/policies/"+p.ID, update).must(t, 200).decode(t, &v2)
		if v2.Version != 2 || v2.Level != "trusted" || len(v2.Resources) != 2 {
			t.Fatalf("updated %+v", v2)
		}
		admin.do("PUT", "/api/auth/trust/policies/"+p.ID, update).mustError(t, 409, "VERSION_CONFLICT")
		update["version"], update["scope"] = 2, map[string]any{"type": "organization", "id": org.ID}
		admin.do("PUT", "/api/auth/trust/policies/"+p.ID, update).mustError(t, 400, "INVALID_POLICY")
		admin.do("PUT", "/api/auth/trust/policies/tpol_missing", global).mustError(t, 404, "POLICY_NOT_FOUND")

		// An organization's owner manages its policies and its agents'; it
		// reads the global ones, changes none.
		var op policyView
		orgOwner.do("POST", "/api/auth/trust/policies", map[string]any{"name": "acme suspends at 30",
			"scope": map[string]any{"type": "organization", "id": org.ID}, "effect": "suspend", "belowScore": 30}).must(t, 201).decode(t, &op)
		orgOwner.do("POST", "/api/auth/trust/policies", map[string]any{"name": "acme bot alerts",
			"scope": map[string]any{"type": "agent", "id": orgAgent.Agent.ID}, "effect": "alert", "belowScore": 45}).must(t, 201)
		var listed struct {
			Epoch    int64        `json:"epoch"`
			Policies []policyView `json:"policies"`
		}
		orgOwner.do("GET", "/api/auth/trust/policies", nil).must(t, 200).decode(t, &listed)
		if len(listed.Policies) != 3 || listed.Epoch < 4 {
			t.Fatalf("organization owner lists %+v", listed)
		}
		orgOwner.do("GET", "/api/auth/trust/policies/"+p.ID, nil).must(t, 200)
		orgOwner.do("PUT", "/api/auth/trust/policies/"+p.ID, global).mustError(t, 403, "FORBIDDEN")
		orgOwner.do("DELETE", "/api/auth/trust/policies/"+p.ID, nil).mustError(t, 403, "FORBIDDEN")
		user.do("GET", "/api/auth/trust/policies/"+op.ID, nil).mustError(t, 404, "POLICY_NOT_FOUND")
		user.do("GET", "/api/auth/trust/policies/"+op.ID+"/history", nil).mustError(t, 404, "POLICY_NOT_FOUND")
		if op.ManagedBy != "organization" || p.ManagedBy != "platform" {
			t.Fatalf("managedBy: %q and %q", op.ManagedBy, p.ManagedBy)
		}
		// The platform's policies on an organization bind it: its owner
		// reads them and changes none; the owner's own it changes.
		var onAcme policyView
		admin.do("POST", "/api/auth/trust/policies", map[string]any{"name": "platform: acme deploys need trusted",
			"scope": map[string]any{"type": "organization", "id": org.ID}, "effect": "minimum_level",
			"resources": []string{"mcp:deploy:*"}, "level": "trusted"}).must(t, 201).decode(t, &onAcme)
		orgOwner.do("GET", "/api/auth/trust/policies/"+onAcme.ID, nil).must(t, 200)
		orgOwner.do("PUT", "/api/auth/trust/policies/"+onAcme.ID, map[string]any{"name": "off", "scope": map[string]any{"type": "organization", "id": org.ID},
			"effect": "minimum_level", "resources": []string{"mcp:deploy:*"}, "level": "trusted", "enabled": false}).mustError(t, 403, "FORBIDDEN")
		orgOwner.do("DELETE", "/api/auth/trust/policies/"+onAcme.ID, nil).mustError(t, 403, "FORBIDDEN")
		var opv2 policyView
		orgOwner.do("PUT", "/api/auth/trust/policies/"+op.ID, map[string]any{"name": "acme suspends at 35",
			"scope": map[string]any{"type": "organization", "id": org.ID}, "effect": "suspend", "belowScore": 35}).must(t, 200).decode(t, &opv2)
		if opv2.ManagedBy != "organization" || opv2.Version != 2 || opv2.BelowScore != 35 {
			t.Fatalf("organization policy updated %+v", opv2)
		}
		// Another organization's owner sees none of Acme's; global suspend
		// and alert lines are the platform team's alone.
		other := e.client()
		other.signUp("other@example.com")
		other.do("POST", "/api/auth/organizations", map[string]any{"name": "Other", "slug": "other"}).must(t, 201)
		other.do("GET", "/api/auth/trust/policies/"+op.ID, nil).mustError(t, 404, "POLICY_NOT_FOUND")
		other.do("PUT", "/api/auth/trust/policies/"+op.ID, map[string]any{"name": "x", "scope": map[string]any{"type": "organization", "id": org.ID},
			"effect": "suspend", "belowScore": 1}).mustError(t, 404, "POLICY_NOT_FOUND")
		other.do("POST", "/api/auth/trust/policies", map[string]any{"name": "x", "scope": map[string]any{"type": "agent", "id": orgAgent.Agent.ID},
			"effect": "suspend", "belowScore": 1}).mustError(t, 403, "FORBIDDEN")
		var line policyView
		admin.do("POST", "/api/auth/trust/policies", map[string]any{"name": "stop bad agents", "scope": map[string]any{"type": "global"},
			"effect": "suspend", "belowScore": 20}).must(t, 201).decode(t, &line)
		orgOwner.do("GET", "/api/auth/trust/policies/"+line.ID, nil).mustError(t, 404, "POLICY_NOT_FOUND")
		orgOwner.do("GET", "/api/auth/trust/policies", nil).must(t, 200).decode(t, &listed)
		if len(listed.Policies) != 4 {
			t.Fatalf("organization owner lists %+v", listed)
		}
		admin.do("GET", "/api/auth/trust/policies", nil).must(t, 200).decode(t, &listed)
		if len(listed.Policies) != 5 {
			t.Fatalf("admin lists %+v", listed)
		}
		// Ids no policy can have are unknown, not errors.
		for _, junk := range []string{"%FF", "%00"} {
			admin.do("GET", "/api/auth/trust/policies/"+junk, nil).mustError(t, 404, "POLICY_NOT_FOUND")
			admin.do("GET", "/api/auth/trust/policies/"+junk+"/history", nil).mustError(t, 404, "POLICY_NOT_FOUND")
			admin.do("DELETE", "/api/auth/trust/policies/"+junk, nil).mustError(t, 404, "POLICY_NOT_FOUND")
		}

		// Deleting keeps the history (for admins).
		admin.do("DELETE", "/api/auth/trust/policies/"+p.ID, nil).must(t, 200)
		admin.do("GET", "/api/auth/trust/policies/"+p.ID, nil).mustError(t, 404, "POLICY_NOT_FOUND")
		var hist []struct {
			Version   int64      `json:"version"`
			Deleted   bool       `json:"deleted"`
			ChangedBy string     `json:"changedBy"`
			Policy    policyView `json:"policy"`
		}
		admin.do("GET", "/api/auth/trust/policies/"+p.ID+"/history", nil).must(t, 200).decode(t, &hist)
		if len(hist) != 3 || hist[0].Policy.Level != "standard" || hist[1].Policy.Level != "trusted" || !hist[2].Deleted ||
			hist[2].Policy.Scope.Type != "global" || hist[0].ChangedBy == "" {
			t.Fatalf("history %+v", hist)
		}
		orgOwner.do("GET", "/api/auth/trust/policies/"+p.ID+"/history", nil).mustError(t, 404, "POLICY_NOT_FOUND")

		// Every change is in the audit log, by whom, and in the outbox.
		recs, _, err := e.store.Audit().Query(context.Background(), storage.AuditFilter{Kind: storage.AuditKindSecurity, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, r := range recs {
			if strings.HasPrefix(r.Event, "trust.policy.") {
				seen[r.Event]++
				if r.PrincipalType != "user" || r.PrincipalID == "" || !strings.HasPrefix(r.Resource, "trust_policy:") {
					t.Fatalf("policy record %+v", r)
				}
			}
		}
		if seen[trust.EventPolicyCreated] != 5 || seen[trust.EventPolicyUpdated] != 2 || seen[trust.EventPolicyDeleted] != 1 {
			t.Fatalf("policy audit records %v", seen)
		}
		events, err := e.store.Events().Pending(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range events {
			if strings.HasPrefix(ev.Type, "trust.policy.") {
				n++
			}
		}
		if n != 8 {
			t.Fatalf("%d policy events", n)
		}
	})
}

// A policy changed on one node applies on another that shares the store,
// without a restart: the second node polls the epoch every second.
func TestTrustPolicyReachesEveryNode(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		store := open(t)
		admins := func(c *kavach.Config) { c.AdminEmails = []string{"platform@example.com"} }
		a := newEnv(t, func(testing.TB) storage.Store { return store }, admins)
		b := newEnv(t, func(testing.TB) storage.Store { return store }, admins)
		admin := a.newAdmin(t, "platform@example.com")
		owner := a.client()
		owner.signUp("owner@example.com")
		var ag agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "bot",
			"permissions": []map[string]any{{"resource": "mcp:deploy:*", "actions": []string{"run"}}}}).must(t, 201).decode(t, &ag)
		codeOn := func(e *env) string {
			_, d := e.decide(t, ag.Token, "run", "mcp:deploy:prod")
			if d.Allowed {
				return "ALLOWED"
			}
			return d.Code
		}
		waitFor := func(e *env, want string) {
			t.Helper()
			deadline := time.Now().Add(15 * time.Second)
			for codeOn(e) != want {
				if time.Now().After(deadline) {
					t.Fatalf("node never answered %s", want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		if codeOn(b) != "ALLOWED" {
			t.Fatal("refused before any policy")
		}
		var p policyView
		admin.do("POST", "/api/auth/trust/policies", map[string]any{"name": "deploys need standard", "scope": map[string]any{"type": "global"},
			"effect": "minimum_level", "resources": []string{"mcp:deploy:*"}, "level": "standard"}).must(t, 201).decode(t, &p)
		if got := codeOn(a); got != "TRUST_TOO_LOW" {
			t.Fatalf("the node that made the change answers %s", got)
		}
		waitFor(b, "TRUST_TOO_LOW")
		admin.do("PUT", "/api/auth/trust/policies/"+p.ID, map[string]any{"name": "off for now", "scope": map[string]any{"type": "global"},
			"effect": "minimum_level", "resources": []string{"mcp:deploy:*"}, "level": "standard", "enabled": false}).must(t, 200)
		waitFor(b, "ALLOWED")
		if a.k.Trust.Policies().Epoch() != b.k.Trust.Policies().Epoch() {
			t.Fatalf("epochs %d and %d", a.k.Trust.Policies().Epoch(), b.k.Trust.Policies().Epoch())
		}
	})
}

// Token issuance withholds the scopes an agent's level does not reach,
// and refuses a request left with none; the token's record says what was
// withheld.
func TestTrustPolicyScopesAtTokenIssuance(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"platform@example.com"} })
		admin := e.newAdmin(t, "platform@example.com")
		owner := e.client()
		owner.signUp("owner@example.com")
		var ag agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "bot",
			"permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &ag)
		var ac agentClient
		owner.do("POST", "/api/auth/agents/"+ag.Agent.ID+"/oauth-client", map[string]any{"scope": "mcp email"}).must(t, 201).decode(t, &ac)
		token := func(scope string) (int, map[string]any) {
			return e.tokenRequest(t, ac, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
		}
		if status, out := token("mcp email"); status != 200 || out["scope"] != "mcp email" {
			t.Fatalf("before any policy: %d %v", status, out)
		}
		admin.do("POST", "/api/auth/trust/policies", map[string]any{"name": "mcp needs standard", "scope": map[string]any{"type": "agent", "id": ag.Agent.ID},
			"effect": "minimum_level", "scopes": []string{"mcp"}, "level": "standard"}).must(t, 201)
		// The new agent is limited: mcp is withheld, email is issued.
		status, out := token("mcp email")
		if status != 200 || out["scope"] != "email" {
			t.Fatalf("narrowed: %d %v", status, out)
		}
		if claims := jwtClaims(t, out["access_token"].(string)); claims["scope"] != "email" || claims["trust_level"] != "limited" {
			t.Fatalf("narrowed token claims %v", claims)
		}
		status, out = token("mcp")
		if status != 400 || out["error"] != "invalid_scope" || !strings.Contains(out["error_description"].(string), "limited") {
			t.Fatalf("refused: %d %v", status, out)
		}
		recs, _, err := e.store.Audit().Query(context.Background(), storage.AuditFilter{AgentID: ag.Agent.ID, Event: authz.AuditEventTokenIssued, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || !strings.Contains(string(recs[0].Extra), `"scopeWithheld":"mcp"`) || strings.Contains(string(recs[1].Extra), "scopeWithheld") {
			t.Fatalf("issued records %+v", recs)
		}
	})
}

// The code grant withholds scopes too: fosite grants a code's scopes only
// while it builds the token response, after the token endpoint's own
// check ran, so the stored code is narrowed as it is read. The refresh
// token carries the narrowed grant.
func TestTrustPolicyScopesOnCodeGrant(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"platform@example.com"} })
		admin := e.newAdmin(t, "platform@example.com")
		admin.do("POST", "/api/auth/trust/policies", map[string]any{"name": "mcp needs trusted", "scope": map[string]any{"type": "global"},
			"effect": "minimum_level", "scopes": []string{"mcp"}, "level": "trusted"}).must(t, 201)
		browser := e.client()
		browser.signUp("noor@example.com")
		const redirect = "http://127.0.0.1:41000/cb"
		app := e.registerClient(t, authz.ClientMetadata{ClientName: "App", RedirectURIs: []string{redirect},
			GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}, TokenEndpointAuthMethod: authz.AuthNone})
		conf := oauth2.Config{ClientID: app.Client.GetID(), RedirectURL: redirect, Scopes: []string{"openid", "email", "mcp", "offline_access"},
			Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath, TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
		ctx := context.Background()
		login := func(scopes ...string) (*oauth2.Token, error) {
			c := conf
			c.Scopes = scopes
			verifier := oauth2.GenerateVerifier()
			back := browser.authorizeAsBrowser(t, c.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "consent")))
			return c.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		}
		tok, err := login("openid", "email", "mcp", "offline_access")
		if err != nil {
			t.Fatal(err)
		}
		_, claims := e.verifyJWT(t, tok.AccessToken)
		if claims["scope"] != "openid email offline_access" || tok.Extra("scope") != "openid email offline_access" || claims["trust_level"] != "limited" {
			t.Fatalf("code grant: response scope %v, token %v", tok.Extra("scope"), claims)
		}
		tok.Expiry = time.Now().Add(-time.Hour)
		fresh, err := conf.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatal(err)
		}
		if _, claims := e.verifyJWT(t, fresh.AccessToken); claims["scope"] != "openid email offline_access" {
			t.Fatalf("refreshed token %v", claims)
		}
		// Asking for the withheld scope alone is refused.
		var re *oauth2.RetrieveError
		if _, err := login("mcp"); !errors.As(err, &re) || re.ErrorCode != "invalid_scope" {
			t.Fatalf("code grant for mcp alone: %v", err)
		}
	})
}
