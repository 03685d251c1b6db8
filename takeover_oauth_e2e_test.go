package kavach_test

import (
	"context"
	"testing"

	"golang.org/x/oauth2"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
)

// TestTakeoverEndsSquattersOAuthGrants, found in review (it fails if the bug comes back): a squatter who
// pre-registered someone's address connects an app through Kavach's own
// OAuth server with their unverified session. When the owner proves the
// address by an emailed code, dropUnprovenAccess ends the squatter's
// sessions, password and second factor, but not the refresh token: the
// squatter keeps acting as the owner's account in the app. (A password
// reset does revoke OAuth grants; the code sign-ins do not.)
func TestTakeoverEndsSquattersOAuthGrants(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		const redirect = "http://127.0.0.1:41000/cb"
		app := e.registerClient(t, authz.ClientMetadata{RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: authz.AuthNone,
			GrantTypes: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}})
		squatter := e.client()
		squatter.signUp("ada@example.com") // not Ada: the address is unverified
		tok := e.userGrant(t, squatter, app, redirect)

		e.client().do("POST", "/api/auth/email-otp/send", map[string]any{"email": "ada@example.com"}).must(t, 200)
		owner := e.client()
		owner.do("POST", "/api/auth/email-otp/verify", map[string]any{"email": "ada@example.com", "code": e.waitMailCode("ada@example.com")}).must(t, 200)

		if s := e.mcpStatus(t, tok.AccessToken); s == 200 {
			t.Errorf("the squatter's access token still works on the owner's account")
		}
		conf := &oauth2.Config{ClientID: app.Client.GetID(), Endpoint: oauth2.Endpoint{TokenURL: e.url + authz.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
		if _, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("the squatter's refresh token still mints access tokens for the owner's account")
		}
	})
}
