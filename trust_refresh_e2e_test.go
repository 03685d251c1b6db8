package kavach_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
)

// A refresh token presented again after it was rotated is refused, and
// the refusal's audit record says it was reuse; the client's agent gets
// the refresh_token_reuse signal, which the audit log rebuilds.
func TestRefreshTokenReuseLowersTrust(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		ctx := context.Background()
		browser := e.client()
		browser.signUp("reuse@example.com")
		const redirect = "http://127.0.0.1:41000/cb"
		app := e.registerClient(t, authz.ClientMetadata{ClientName: "App", RedirectURIs: []string{redirect},
			GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}, TokenEndpointAuthMethod: authz.AuthNone})
		agentID, err := e.k.Agents.AgentIDForClient(ctx, app.Client.GetID())
		if err != nil {
			t.Fatalf("the client is no agent: %v", err)
		}
		conf := oauth2.Config{ClientID: app.Client.GetID(), RedirectURL: redirect, Scopes: []string{"openid", "mcp", "offline_access"},
			Endpoint: oauth2.Endpoint{AuthURL: e.url + authz.AuthorizePath, TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
		verifier := oauth2.GenerateVerifier()
		back := browser.authorizeAsBrowser(t, conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier)))
		tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("exchange: %v %+v", err, tok)
		}
		refresh := func(rt string) (int, map[string]any) {
			t.Helper()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {app.Client.GetID()}}
			resp, err := http.Post(e.url+authz.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
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
		if status, out := refresh(tok.RefreshToken); status != 200 || out["refresh_token"] == nil {
			t.Fatalf("refresh: %d %v", status, out)
		}
		// A refresh token nobody issued is refused without being reuse.
		if status, out := refresh("not-a-refresh-token"); status != 400 {
			t.Fatalf("unknown refresh token: %d %v", status, out)
		}
		if status, out := refresh(tok.RefreshToken); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("reused refresh token: %d %v", status, out)
		}

		recs, _, err := e.store.Audit().Query(ctx, storage.AuditFilter{AgentID: agentID, Event: authz.AuditEventTokenRefused})
		if err != nil {
			t.Fatal(err)
		}
		var reuses int
		for _, r := range recs {
			if string(r.Extra) == `{"refreshTokenReuse":true}` {
				reuses++
				if r.Reason != "invalid_grant" || r.Action != authz.GrantRefreshToken || r.Result != storage.AuditFail {
					t.Fatalf("reuse record %+v", r)
				}
			}
		}
		if len(recs) != 2 || reuses != 1 {
			t.Fatalf("refused token requests %+v", recs)
		}

		if err := e.k.Trust.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		stored, err := e.k.Trust.State(ctx, agentID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Counts.Of(trust.SignalRefreshTokenReuse) != 1 || stored.Events != 1 {
			t.Fatalf("stored state %+v", stored)
		}
		e.recomputeAgrees(t, agentID)
		if b, _, err := e.k.Trust.Explain(ctx, agentID); err != nil || b.Score >= 50 {
			t.Fatalf("score after a reuse: %+v %v", b, err)
		}
	})
}
