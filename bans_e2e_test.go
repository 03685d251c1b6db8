package kavach_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
)

// TestBans: a ban ends the user's sessions and pending sign-ins, every
// sign-in is refused after the credential checks out (a wrong password
// still says INVALID_CREDENTIALS, so a ban tells a guesser nothing), a
// timed ban ends by itself, and only server admins ban.
func TestBans(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		admin := e.newAdmin(t, "root@example.com")
		var me struct {
			ID string `json:"id"`
		}
		admin.do("GET", "/api/auth/user", nil).must(t, 200).decode(t, &me)
		victim := e.client()
		d := victim.signUp("mallory@example.com")
		other := e.client()
		other.signUp("bob@example.com")
		// A pending second factor is dropped too.
		tfa := e.client()
		tfaUser := tfa.signUp("trent@example.com")
		tfa.enableTwoFactor(goodPassword)
		pending := e.client()
		pending.mustNeedSecondFactor(pending.signIn("trent@example.com", goodPassword))

		other.do("POST", "/api/auth/admin/users/"+d.User.ID+"/ban", nil).mustError(t, 403, "FORBIDDEN")
		admin.do("POST", "/api/auth/admin/users/"+me.ID+"/ban", nil).mustError(t, 400, "INVALID_REQUEST")
		admin.do("POST", "/api/auth/admin/users/usr_nobody/ban", nil).mustError(t, 404, "USER_NOT_FOUND")
		admin.do("POST", "/api/auth/admin/users/"+d.User.ID+"/ban", map[string]any{"expiresIn": -5}).mustError(t, 400, "INVALID_REQUEST")
		admin.do("POST", "/api/auth/admin/users/"+d.User.ID+"/ban", map[string]any{"reason": "spam", "expiresIn": 3600}).must(t, 200)
		admin.do("POST", "/api/auth/admin/users/"+tfaUser.User.ID+"/ban", map[string]any{"reason": "fraud"}).must(t, 200)

		if got := victim.do("GET", "/api/auth/session", nil).must(t, 200); string(got.Data) != "null" {
			t.Fatalf("the banned user's session survived: %s", got.Data)
		}
		victim.signIn("mallory@example.com", "not-the-password-9").mustError(t, 401, "INVALID_CREDENTIALS")
		r := victim.signIn("mallory@example.com", goodPassword).mustError(t, 403, "USER_BANNED")
		if !strings.Contains(r.Error.Message, "spam") {
			t.Fatalf("ban message: %s", r.Error.Message)
		}
		pending.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": "123456"}).mustError(t, 401, "TWO_FACTOR_EXPIRED")
		e.client().signIn("trent@example.com", goodPassword).mustError(t, 403, "USER_BANNED")

		// The timed ban ends by itself; the other is lifted.
		e.clock.Advance(time.Hour + time.Second)
		victim.signIn("mallory@example.com", goodPassword).must(t, 200)
		admin.do("POST", "/api/auth/admin/users/"+tfaUser.User.ID+"/unban", nil).must(t, 200)
		admin.do("POST", "/api/auth/admin/users/"+tfaUser.User.ID+"/unban", nil).mustError(t, 404, "NOT_BANNED")
		again := e.client()
		again.mustNeedSecondFactor(again.signIn("trent@example.com", goodPassword))

		evs, err := e.store.Events().Pending(t.Context(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		var banned, unbanned int
		for _, ev := range evs {
			switch ev.Type {
			case "user.banned":
				banned++
			case "user.unbanned":
				unbanned++
			}
		}
		if banned != 2 || unbanned != 1 {
			t.Fatalf("events: banned %d, unbanned %d", banned, unbanned)
		}
	})
}

// TestBanEndsOAuthGrants: a ban keeps the person out of everything their
// sessions reached, so the OAuth grants they gave apps (access and refresh
// tokens) must stop working too, as they do after a password reset.
func TestBanEndsOAuthGrants(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		admin := e.newAdmin(t, "root@example.com")
		const redirect = "http://127.0.0.1:41000/cb"
		app := e.registerClient(t, authz.ClientMetadata{RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: authz.AuthNone,
			GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}})
		b := e.client()
		d := b.signUp("mallory@example.com")
		tok := e.userGrant(t, b, app, redirect)
		if e.mcpStatus(t, tok.AccessToken) != 200 {
			t.Fatal("fresh token refused")
		}
		admin.do("POST", "/api/auth/admin/users/"+d.User.ID+"/ban", map[string]any{"reason": "fraud"}).must(t, 200)
		if s := e.mcpStatus(t, tok.AccessToken); s != 401 {
			t.Errorf("the banned user's access token still answers %d", s)
		}
		conf := &oauth2.Config{ClientID: app.Client.GetID(), Endpoint: oauth2.Endpoint{TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
		if _, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("the banned user's refresh token still mints access tokens")
		}
	})
}

// TestSignInFailuresAuditedWithMethod: a failed sign-in's audit record
// says which method failed (an email code, a second-factor code), as a
// successful one's does, and a banned user's refused sign-in is audited.
func TestSignInFailuresAuditedWithMethod(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		admin := e.newAdmin(t, "root@example.com")

		// A wrong emailed code.
		e.client().do("POST", "/api/auth/email-otp/send", map[string]any{"email": "ada@example.com"}).must(t, 200)
		e.client().do("POST", "/api/auth/email-otp/verify", map[string]any{"email": "ada@example.com", "code": otherCode(e.waitMailCode("ada@example.com"))}).mustError(t, 400, "INVALID_CODE")
		// A wrong second-factor code.
		owner := e.client()
		owner.signUp("lin@example.com")
		owner.enableTwoFactor(goodPassword)
		c := e.client()
		c.mustNeedSecondFactor(c.signIn("lin@example.com", goodPassword))
		c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": "999999"}).mustError(t, 400, "INVALID_CODE")
		// A banned user's right password.
		m := e.client()
		d := m.signUp("mallory@example.com")
		admin.do("POST", "/api/auth/admin/users/"+d.User.ID+"/ban", map[string]any{"reason": "fraud"}).must(t, 200)
		e.client().signIn("mallory@example.com", goodPassword).mustError(t, 403, "USER_BANNED")

		fails, _, err := e.store.Audit().Query(t.Context(), storage.AuditFilter{Event: "sign_in.failed"})
		if err != nil {
			t.Fatal(err)
		}
		var methods []string
		banned := 0
		for _, f := range fails {
			methods = append(methods, string(f.Extra))
			if f.Reason == "USER_BANNED" && f.PrincipalID == d.User.ID {
				banned++
			}
		}
		all := strings.Join(methods, " ")
		for _, want := range []string{"email-otp", "totp"} {
			if !strings.Contains(all, want) {
				t.Errorf("no sign_in.failed record names %q: extras %q", want, methods)
			}
		}
		if banned != 1 {
			t.Errorf("%d audited refusals of the banned user, want 1", banned)
		}
	})
}

// TestBanStopsUsersAgents: agents act for their owner with the owner's
// delegated permissions; a banned owner's agents must stop being allowed
// anything, or the ban leaves the person acting through them.
func TestBanStopsUsersAgents(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		admin := e.newAdmin(t, "root@example.com")
		owner := e.client()
		d := owner.signUp("mallory@example.com")
		var created struct {
			Token string `json:"token"`
		}
		owner.do("POST", "/api/auth/agents", map[string]any{
			"name": "Bot", "type": "autonomous",
			"permissions": []map[string]any{{"resource": "mcp:github:*", "actions": []string{"read"}}},
		}).must(t, 201).decode(t, &created)
		if status, dec := e.decide(t, created.Token, "read", "mcp:github:issues"); status != 200 || !dec.Allowed {
			t.Fatalf("before the ban: %d %+v", status, dec)
		}
		admin.do("POST", "/api/auth/admin/users/"+d.User.ID+"/ban", map[string]any{"reason": "fraud"}).must(t, 200)
		if status, dec := e.decide(t, created.Token, "read", "mcp:github:issues"); status == 200 && dec.Allowed {
			t.Fatalf("the banned user's agent is still allowed: %+v", dec)
		}
	})
}
