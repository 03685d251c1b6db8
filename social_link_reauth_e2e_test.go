package kavach_test

import (
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

// TestSocialLinkNeedsReauthentication, found in review (it fails if the bug comes back): a provider account is a way
// back in, like a passkey or a phone number (which now need
// re-authentication). A session older than the re-authentication window
// (a stolen one) must not link the thief's provider account without the
// password; else the thief signs in with it after the owner ends every
// session and changes the password.
func TestSocialLinkNeedsReauthentication(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		f := newFakeProvider(t)
		e := socialEnv(t, open, f, nil)
		stolen := e.client()
		me := stolen.signUp("cy@example.com")
		e.clock.Advance(11 * time.Minute)
		// The same session may not add a passkey without the password.
		stolen.do("POST", "/api/auth/passkey/register/options", nil).mustError(t, 400, "INVALID_REQUEST")

		f.as("sub-thief", "thief@example.org", true)
		stolen.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "acme", "callbackURL": "/settings"}).mustError(t, 400, "INVALID_REQUEST")
		if a, err := e.store.Accounts().GetByProvider(t.Context(), "acme", "sub-thief"); err == nil && a.UserID == me.User.ID {
			t.Fatal("a session past the re-authentication window linked another provider account without the password")
		}
		// With the password it may.
		var link struct {
			URL string `json:"url"`
		}
		stolen.do("POST", "/api/auth/oauth/link", map[string]any{"provider": "acme", "callbackURL": "/settings", "password": goodPassword}).must(t, 200).decode(t, &link)
		stolen.socialFlow(t, f, link.URL)
		if a, err := e.store.Accounts().GetByProvider(t.Context(), "acme", "sub-thief"); err != nil || a.UserID != me.User.ID {
			t.Fatalf("the link with the password did not join the account: %+v %v", a, err)
		}
	})
}
