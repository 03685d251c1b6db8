package kavach_test

import (
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

// TestPhoneSessionIsNoReauthentication, found in review (it fails if the bug comes back): reauthenticate
// now takes any session under 10 minutes old instead of the password. A
// session from a texted code (one factor: whoever holds the SIM) is such a
// session, so a SIM-swapper enrols their own authenticator on a password
// account without knowing the password. The owner's password then needs
// the thief's codes, and a password reset does not remove them.
func TestPhoneSessionIsNoReauthentication(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		owner := e.client()
		owner.signUp("ada@example.com")
		const number = "+14155550142"
		owner.linkPhone(dir, number, number)
		e.clock.Advance(time.Hour)

		swapper := e.client() // holds the number now, not the password
		swapper.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": number}).must(t, 200)
		swapper.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": number, "code": waitSMSCode(t, dir, number)}).must(t, 200)
		// The texted-code session does not stand in for the password.
		swapper.do("POST", "/api/auth/two-factor/enable", nil).mustError(t, 400, "INVALID_REQUEST")
	})
}
