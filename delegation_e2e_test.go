package kavach_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

type agentCreated struct {
	Agent struct {
		ID              string  `json:"id"`
		ParentID        *string `json:"parentId"`
		DelegationDepth int     `json:"delegationDepth"`
		Permissions     []struct {
			Resource string   `json:"resource"`
			Actions  []string `json:"actions"`
		} `json:"permissions"`
	} `json:"agent"`
	Token string `json:"token"`
}

type agentClient struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// oauthClientFor gives the agent an OAuth client through the owner's
// session.
func oauthClientFor(t *testing.T, owner *client, agentID string) agentClient {
	t.Helper()
	var ac agentClient
	owner.do("POST", "/api/auth/agents/"+agentID+"/oauth-client", nil).must(t, 201).decode(t, &ac)
	if ac.ClientID == "" || ac.ClientSecret == "" {
		t.Fatalf("agent client %+v", ac)
	}
	return ac
}

// tokenExchange posts an RFC 8693 request authenticated as ac.
func (e *env) tokenExchange(t *testing.T, ac agentClient, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("grant_type", authz.GrantTokenExchange)
	return e.tokenRequest(t, ac, form)
}

// tokenRequest posts form to the token endpoint, authenticated as ac.
func (e *env) tokenRequest(t *testing.T, ac agentClient, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+authz.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(ac.ClientID), url.QueryEscape(ac.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func exchangeForm(subject string) url.Values {
	return url.Values{"subject_token": {subject}, "subject_token_type": {authz.TokenTypeAccessToken}}
}

// jwtClaims reads a JWT's payload (the server checked its signature).
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// mcpWith opens an MCP session on /mcp with a bearer token.
func (e *env) mcpWith(t *testing.T, token string) (*mcpclient.Client, error) {
	t.Helper()
	c, err := mcpclient.NewStreamableHttpClient(e.url+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(t.Context()); err != nil {
		return nil, err
	}
	if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
		return nil, err
	}
	return c, nil
}

func callAuthorizeTool(t *testing.T, c *mcpclient.Client, action, resource string) decision {
	t.Helper()
	var call mcp.CallToolRequest
	call.Params.Name = "authorize"
	call.Params.Arguments = map[string]any{"action": action, "resource": resource}
	res, err := c.CallTool(t.Context(), call)
	if err != nil || res.IsError {
		t.Fatalf("authorize tool: %+v %v", res, err)
	}
	var d decision
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDelegationAndTokenExchange: an agent created by a user gets a token
// by client_credentials and asks for decisions over HTTP and MCP; it
// delegates to a sub-agent, which exchanges the parent's token (RFC 8693)
// for a narrower one with act, and a grandchild does the same with nested
// act; suspending the parent stops the chain, revoking it kills every
// token in it.
func TestDelegationAndTokenExchange(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.OAuth.Resources = []string{c.BaseURL + "/other-mcp"} })
		ctx := context.Background()
		owner := e.client()
		owner.signUp("owner@example.com")

		var parent agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{
			"name": "Repo bot",
			"permissions": []map[string]any{
				{"resource": "mcp:github:*", "actions": []string{"read", "create_issue"}},
				{"resource": "mcp:deploy:*", "actions": []string{"run"}, "constraints": map[string]any{"requireApproval": true}},
			},
		}).must(t, 201).decode(t, &parent)
		pc := oauthClientFor(t, owner, parent.Agent.ID)
		owner.do("POST", "/api/auth/agents/"+parent.Agent.ID+"/oauth-client", nil).mustError(t, 409, "AGENT_HAS_CLIENT")
		pTok, err := (&clientcredentials.Config{ClientID: pc.ClientID, ClientSecret: pc.ClientSecret, TokenURL: e.url + authz.TokenPath, Scopes: []string{"mcp"}}).Token(ctx)
		if err != nil {
			t.Fatalf("client_credentials for a user's agent: %v", err)
		}
		if status, d := e.decide(t, pTok.AccessToken, "create_issue", "mcp:github:issues"); status != 200 || !d.Allowed {
			t.Fatalf("parent decision over HTTP: %d %+v", status, d)
		}
		pm, err := e.mcpWith(t, pTok.AccessToken)
		if err != nil {
			t.Fatalf("parent on /mcp: %v", err)
		}
		if d := callAuthorizeTool(t, pm, "read", "mcp:github:pulls"); !d.Allowed || d.AuditID == "" {
			t.Fatalf("authorize tool for the parent: %+v", d)
		}
		if d := callAuthorizeTool(t, pm, "read", "mcp:slack:general"); d.Allowed || d.Code != "PERMISSION_DENIED" {
			t.Fatalf("authorize tool, denied: %+v", d)
		}

		// Human in the loop: the deploy needs approval; the owner approves
		// it once; the retry passes, the next call asks again.
		d := callAuthorizeTool(t, pm, "run", "mcp:deploy:production")
		if d.Allowed || d.Code != "APPROVAL_REQUIRED" || d.ApprovalID == "" {
			t.Fatalf("deploy before approval: %+v", d)
		}
		var polled struct {
			Status string `json:"status"`
		}
		poller := e.client()
		poller.headers["Authorization"] = "Bearer " + pTok.AccessToken
		poller.do("GET", "/api/auth/approvals/"+d.ApprovalID, nil).must(t, 200).decode(t, &polled)
		if polled.Status != "pending" {
			t.Fatalf("polled approval %+v", polled)
		}
		owner.do("POST", "/api/auth/approvals/"+d.ApprovalID+"/approve", map[string]any{"mode": "once"}).must(t, 200)
		if again := callAuthorizeTool(t, pm, "run", "mcp:deploy:production"); !again.Allowed || again.ApprovalID != d.ApprovalID {
			t.Fatalf("deploy after approval: %+v", again)
		}
		if third := callAuthorizeTool(t, pm, "run", "mcp:deploy:production"); third.Allowed || third.Code != "APPROVAL_REQUIRED" || third.ApprovalID == d.ApprovalID {
			t.Fatalf("deploy after the approval was used: %+v", third)
		}

		// The parent delegates with its own token; it cannot hand down more
		// than it has, nor delegate for another agent.
		delegator := e.client()
		delegator.headers["Authorization"] = "Bearer " + pTok.AccessToken
		delegator.do("POST", "/api/auth/agents/"+parent.Agent.ID+"/delegate", map[string]any{
			"name": "greedy", "permissions": []map[string]any{{"resource": "mcp:*", "actions": []string{"read"}}},
		}).mustError(t, 400, "PERMISSION_NOT_DELEGABLE")
		var child agentCreated
		delegator.do("POST", "/api/auth/agents/"+parent.Agent.ID+"/delegate", map[string]any{
			"name": "Issue reader", "permissions": []map[string]any{{"resource": "mcp:github:issues", "actions": []string{"read"}}},
		}).must(t, 201).decode(t, &child)
		if child.Agent.ParentID == nil || *child.Agent.ParentID != parent.Agent.ID || child.Agent.DelegationDepth != 1 || !strings.HasPrefix(child.Token, "kv_") {
			t.Fatalf("sub-agent %+v", child)
		}
		delegator.do("POST", "/api/auth/agents/"+child.Agent.ID+"/delegate", map[string]any{
			"name": "x", "permissions": []map[string]any{{"resource": "mcp:github:issues", "actions": []string{"read"}}},
		}).mustError(t, 404, "AGENT_NOT_FOUND")
		cc := oauthClientFor(t, owner, child.Agent.ID)

		// Token exchange: the sub-agent trades the parent's token for its own,
		// twenty minutes later: the new token ends when the subject does.
		e.clock.Advance(20 * time.Minute)
		status, out := e.tokenExchange(t, cc, exchangeForm(pTok.AccessToken))
		if status != 200 || out["issued_token_type"] != authz.TokenTypeAccessToken || out["refresh_token"] != nil {
			t.Fatalf("exchange: %d %v", status, out)
		}
		cTok := out["access_token"].(string)
		claims := jwtClaims(t, cTok)
		act, _ := claims["act"].(map[string]any)
		if claims["sub"] != pc.ClientID || claims["client_id"] != cc.ClientID || act["sub"] != cc.ClientID || act["act"] != nil {
			t.Fatalf("exchanged token claims %v", claims)
		}
		if claims["exp"] != jwtClaims(t, pTok.AccessToken)["exp"] {
			t.Fatalf("exchanged token exp %v, subject token exp %v: it must end with its subject", claims["exp"], jwtClaims(t, pTok.AccessToken)["exp"])
		}
		// Narrower: the sub-agent's grants apply.
		if status, d := e.decide(t, cTok, "read", "mcp:github:issues"); status != 200 || !d.Allowed {
			t.Fatalf("sub-agent read: %d %+v", status, d)
		}
		if status, d := e.decide(t, cTok, "create_issue", "mcp:github:issues"); status != 200 || d.Allowed || d.Code != "PERMISSION_DENIED" {
			t.Fatalf("sub-agent create_issue: %d %+v", status, d)
		}
		recs, _, err := e.k.Store.Audit().Query(ctx, storage.AuditFilter{AgentID: child.Agent.ID, Event: "authorize", Limit: 1})
		if err != nil || len(recs) != 1 || recs[0].ActingFor != parent.Agent.ID ||
			!slices.Equal(recs[0].Chain, []string{parent.Agent.ID, child.Agent.ID}) {
			t.Fatalf("sub-agent's audit record: %+v %v", recs, err)
		}
		cm, err := e.mcpWith(t, cTok)
		if err != nil {
			t.Fatalf("sub-agent on /mcp: %v", err)
		}
		if d := callAuthorizeTool(t, cm, "create_issue", "mcp:github:issues"); d.Allowed {
			t.Fatalf("sub-agent via MCP: %+v", d)
		}

		// Policy: wider scopes, foreign agents, bad types are refused.
		status, out = e.tokenExchange(t, cc, func() url.Values { f := exchangeForm(pTok.AccessToken); f.Set("scope", "openid"); return f }())
		if status != 400 || out["error"] != "invalid_scope" {
			t.Fatalf("exchange for a scope the subject lacks: %d %v", status, out)
		}
		for _, param := range []string{"audience", "resource"} {
			f := exchangeForm(pTok.AccessToken)
			f.Set(param, "https://nowhere.example/")
			if status, out := e.tokenExchange(t, cc, f); status != 400 || out["error"] != "invalid_target" {
				t.Fatalf("exchange naming an unknown %s: %d %v", param, status, out)
			}
		}
		f := exchangeForm(pTok.AccessToken)
		f.Set("audience", e.url+"/other-mcp")
		if status, out := e.tokenExchange(t, cc, f); status != 400 || out["error"] != "invalid_target" {
			t.Fatalf("exchange widening the audience: %d %v", status, out)
		}
		var narrowClient agentCreated
		delegator.do("POST", "/api/auth/agents/"+parent.Agent.ID+"/delegate", map[string]any{
			"name": "No scopes", "permissions": []map[string]any{{"resource": "mcp:github:issues", "actions": []string{"read"}}},
		}).must(t, 201).decode(t, &narrowClient)
		var nc agentClient
		owner.do("POST", "/api/auth/agents/"+narrowClient.Agent.ID+"/oauth-client", map[string]any{"scope": "openid"}).must(t, 201).decode(t, &nc)
		if status, out := e.tokenExchange(t, nc, exchangeForm(pTok.AccessToken)); status != 400 || out["error"] != "invalid_scope" {
			t.Fatalf("exchange by a client without the subject's scopes: %d %v", status, out)
		}

		// A token for another resource server is no credential here.
		otherTok, err := (&clientcredentials.Config{ClientID: pc.ClientID, ClientSecret: pc.ClientSecret, TokenURL: e.url + authz.TokenPath,
			Scopes: []string{"mcp"}, EndpointParams: url.Values{"resource": {e.url + "/other-mcp"}}}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := e.decide(t, otherTok.AccessToken, "read", "mcp:github:issues"); status != 401 {
			t.Fatalf("a token for another resource decided: %d", status)
		}
		replayer := e.client()
		replayer.headers["Authorization"] = "Bearer " + otherTok.AccessToken
		replayer.do("POST", "/api/auth/agents/"+parent.Agent.ID+"/delegate", map[string]any{
			"name": "stolen", "permissions": []map[string]any{{"resource": "mcp:github:issues", "actions": []string{"read"}}},
		}).mustError(t, 401, "UNAUTHENTICATED")

		var stranger agentCreated
		owner.do("POST", "/api/auth/agents", map[string]any{"name": "Unrelated",
			"permissions": []map[string]any{{"resource": "mcp:github:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &stranger)
		sc := oauthClientFor(t, owner, stranger.Agent.ID)
		if status, out := e.tokenExchange(t, sc, exchangeForm(pTok.AccessToken)); status != 400 || out["error"] != "invalid_request" {
			t.Fatalf("an unrelated agent exchanged the parent's token: %d %v", status, out)
		}
		bad := exchangeForm(pTok.AccessToken)
		bad.Set("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")
		if status, out := e.tokenExchange(t, cc, bad); status != 400 || out["error"] != "invalid_request" {
			t.Fatalf("wrong subject token type: %d %v", status, out)
		}
		if status, out := e.tokenExchange(t, cc, exchangeForm(pTok.AccessToken+"x")); status != 400 || out["error"] != "invalid_request" {
			t.Fatalf("forged subject token: %d %v", status, out)
		}

		// A grandchild exchanges the child's token: act nests.
		var grand agentCreated
		cDelegator := e.client()
		cDelegator.headers["Authorization"] = "Bearer " + cTok
		cDelegator.do("POST", "/api/auth/agents/"+child.Agent.ID+"/delegate", map[string]any{
			"name": "Leaf", "permissions": []map[string]any{{"resource": "mcp:github:issues", "actions": []string{"read"}}},
		}).must(t, 201).decode(t, &grand)
		gc := oauthClientFor(t, owner, grand.Agent.ID)
		status, out = e.tokenExchange(t, gc, exchangeForm(cTok))
		if status != 200 {
			t.Fatalf("grandchild exchange: %d %v", status, out)
		}
		gTok := out["access_token"].(string)
		gAct, _ := jwtClaims(t, gTok)["act"].(map[string]any)
		inner, _ := gAct["act"].(map[string]any)
		if gAct["sub"] != gc.ClientID || inner["sub"] != cc.ClientID || inner["act"] != nil || jwtClaims(t, gTok)["sub"] != pc.ClientID {
			t.Fatalf("nested act %v", jwtClaims(t, gTok))
		}
		gm, err := e.mcpWith(t, gTok)
		if err != nil {
			t.Fatal(err)
		}
		var who mcp.CallToolRequest
		who.Params.Name = "whoami"
		res, err := gm.CallTool(t.Context(), who)
		if err != nil || res.IsError {
			t.Fatalf("whoami: %+v %v", res, err)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var w struct {
			Principal string   `json:"principal"`
			Actors    []string `json:"actors"`
		}
		_ = json.Unmarshal(b, &w)
		if w.Principal != pc.ClientID || !slices.Equal(w.Actors, []string{cc.ClientID, gc.ClientID}) {
			t.Fatalf("whoami with nested act: %+v", w)
		}

		// Suspending the parent stops every token below it; resuming restores them.
		owner.do("PATCH", "/api/auth/agents/"+parent.Agent.ID, map[string]any{"status": "suspended"}).must(t, 200)
		if _, err := e.mcpWith(t, gTok); err == nil {
			t.Fatal("a grandchild's token worked on /mcp under a suspended root")
		}
		if status, d := e.decide(t, cTok, "read", "mcp:github:issues"); status != 200 || d.Allowed || d.Code != "AGENT_SUSPENDED" {
			t.Fatalf("sub-agent under a suspended parent: %d %+v", status, d)
		}
		rs := e.registerClient(t, authz.ClientMetadata{ClientName: "resource server", GrantTypes: []string{authz.GrantClientCredentials}})
		if in := e.introspect(t, rs, cTok); in["active"] != false {
			t.Fatalf("introspection of a token below a suspended agent: %v", in)
		}
		if _, err := (&clientcredentials.Config{ClientID: cc.ClientID, ClientSecret: cc.ClientSecret, TokenURL: e.url + authz.TokenPath,
			AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx); err == nil ||
			!strings.Contains(err.Error(), "unauthorized_client") {
			t.Fatalf("client_credentials under a suspended parent: %v", err)
		}
		owner.do("PATCH", "/api/auth/agents/"+parent.Agent.ID, map[string]any{"status": "active"}).must(t, 200)
		if _, err := e.mcpWith(t, gTok); err != nil {
			t.Fatalf("grandchild after resume: %v", err)
		}
		if in := e.introspect(t, rs, cTok); in["active"] != true {
			t.Fatalf("introspection after resume: %v", in)
		}

		// Revoking the parent kills the whole chain's tokens and keys.
		owner.do("DELETE", "/api/auth/agents/"+parent.Agent.ID, nil).must(t, 200)
		for name, tok := range map[string]string{"parent": pTok.AccessToken, "child": cTok, "grandchild": gTok} {
			if _, err := e.mcpWith(t, tok); err == nil {
				t.Fatalf("%s token works on /mcp after the parent was revoked", name)
			}
			if status, _ := e.decide(t, tok, "read", "mcp:github:issues"); status != 401 {
				t.Fatalf("%s token at /api/auth/authorize after revoke: %d", name, status)
			}
		}
		if status, d := e.decide(t, child.Token, "read", "mcp:github:issues"); status != 401 {
			t.Fatalf("child's API key after the parent was revoked (keys are revoked with it): %d %+v", status, d)
		}
		var got struct {
			Status string `json:"status"`
		}
		owner.do("GET", "/api/auth/agents/"+grand.Agent.ID, nil).must(t, 200).decode(t, &got)
		if got.Status != "revoked" {
			t.Fatalf("grandchild status after the root was revoked: %s", got.Status)
		}
	})
}

// TestTokenExchangeForUser: a user's token, held by the app the user
// signed in to, is exchanged by the user's own agent: sub stays the user,
// act names the agent with the app nested inside; another user's agent is
// refused; a may_act claim in the subject token is honoured.
func TestTokenExchangeForUser(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, nil)
	ctx := context.Background()
	browser := e.client()
	user := browser.signUp("noor@example.com")
	const redirect = "http://127.0.0.1:41000/cb"
	app := e.registerClient(t, authz.ClientMetadata{ClientName: "App", RedirectURIs: []string{redirect},
		GrantTypes: []string{authz.GrantAuthorizationCode}, TokenEndpointAuthMethod: authz.AuthNone})
	conf := oauth2.Config{ClientID: app.Client.GetID(), RedirectURL: redirect, Scopes: []string{"mcp"},
		Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath, TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	back := browser.authorizeAsBrowser(t, conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier)))
	userTok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}

	var mine agentCreated
	browser.do("POST", "/api/auth/agents", map[string]any{"name": "Noor's helper", "type": "delegated",
		"permissions": []map[string]any{{"resource": "mcp:calendar:*", "actions": []string{"read"}}}}).must(t, 201).decode(t, &mine)
	mc := oauthClientFor(t, browser, mine.Agent.ID)
	status, out := e.tokenExchange(t, mc, exchangeForm(userTok.AccessToken))
	if status != 200 {
		t.Fatalf("user's agent exchange: %d %v", status, out)
	}
	_, c := e.verifyJWT(t, out["access_token"].(string))
	act, _ := c["act"].(map[string]any)
	inner, _ := act["act"].(map[string]any)
	if c["sub"] != user.User.ID || act["sub"] != mc.ClientID || inner["sub"] != app.Client.GetID() || c["scope"] != "mcp" {
		t.Fatalf("exchanged claims %v", c)
	}
	if status, d := e.decide(t, out["access_token"].(string), "read", "mcp:calendar:events"); status != 200 || !d.Allowed {
		t.Fatalf("decision with the exchanged token: %d %+v", status, d)
	}
	recs, _, err := e.k.Store.Audit().Query(ctx, storage.AuditFilter{AgentID: mine.Agent.ID, Event: "authorize", Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].ActingFor != user.User.ID || len(recs[0].Chain) != 3 || recs[0].Chain[0] != user.User.ID || recs[0].Chain[2] != mine.Agent.ID {
		t.Fatalf("audit record of a decision for a user: %+v %v", recs, err)
	}

	// A sub-agent of the user's agent may not take the user's token from
	// an app outside its chain.
	var sub agentCreated
	browser.do("POST", "/api/auth/agents/"+mine.Agent.ID+"/delegate", map[string]any{"name": "sub",
		"permissions": []map[string]any{{"resource": "mcp:calendar:events", "actions": []string{"read"}}}}).must(t, 201).decode(t, &sub)
	subc := oauthClientFor(t, browser, sub.Agent.ID)
	if status, out := e.tokenExchange(t, subc, exchangeForm(userTok.AccessToken)); status != 400 || out["error"] != "invalid_request" {
		t.Fatalf("a sub-agent exchanged its owner's token held by an app: %d %v", status, out)
	}
	// A token whose holder is suspended cannot be exchanged.
	appAgent, err := e.k.OAuth.AgentForClient(ctx, app.Client.GetID())
	if err != nil {
		t.Fatal(err)
	}
	suspended, active := storage.AgentSuspended, storage.AgentActive
	if _, _, err := e.k.Agents.Update(ctx, appAgent.ID, agents.UpdateInput{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if status, out := e.tokenExchange(t, mc, exchangeForm(userTok.AccessToken)); status != 400 || out["error"] != "invalid_request" {
		t.Fatalf("exchange of a suspended holder's token: %d %v", status, out)
	}
	if _, _, err := e.k.Agents.Update(ctx, appAgent.ID, agents.UpdateInput{Status: &active}); err != nil {
		t.Fatal(err)
	}

	other := e.client()
	other.signUp("other@example.com")
	var theirs agentCreated
	other.do("POST", "/api/auth/agents", map[string]any{"name": "Other's agent"}).must(t, 201).decode(t, &theirs)
	oc := oauthClientFor(t, other, theirs.Agent.ID)
	if status, out := e.tokenExchange(t, oc, exchangeForm(userTok.AccessToken)); status != 400 || out["error"] != "invalid_request" {
		t.Fatalf("another user's agent exchanged the token: %d %v", status, out)
	}

	// may_act: a subject token naming one client is refused to another,
	// even one the policy would otherwise let act.
	signed := func(mayAct string) string {
		now := time.Now()
		claims := authz.AccessClaims{Issuer: e.url, Subject: user.User.ID, Audience: authz.Audience{e.url + "/mcp"}, ClientID: app.Client.GetID(),
			Scope: "mcp", JTI: "jti-" + mayAct, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), MayAct: &authz.Actor{Subject: mayAct}}
		tok, err := e.k.Keys.Sign("ES256", authz.AccessTokenType, claims)
		if err != nil {
			t.Fatal(err)
		}
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if err := e.k.Store.OAuthTokens().Create(ctx, &storage.OAuthToken{Kind: storage.TokenKindAccess, Signature: id.Hash(sig),
			RequestID: "req-" + mayAct, ClientID: app.Client.GetID(), Subject: user.User.ID, Active: true,
			RequestedAt: now, ExpiresAt: now.Add(time.Hour), Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if status, out := e.tokenExchange(t, mc, exchangeForm(signed("cli_someone_else"))); status != 400 || out["error"] != "invalid_request" ||
		!strings.Contains(out["error_description"].(string), "may_act") {
		t.Fatalf("may_act naming another client: %d %v", status, out)
	}
	if status, out := e.tokenExchange(t, mc, exchangeForm(signed(mc.ClientID))); status != 200 {
		t.Fatalf("may_act naming this client: %d %v", status, out)
	}
}
