package kavach_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/kavachos/kavach/storage"
)

// totpCode is the authenticator's code for secret at the env's clock.
func (e *env) totpCode(secret string) string {
	e.t.Helper()
	code, err := totp.GenerateCodeCustom(secret, e.clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

type twoFactorEnrolment struct {
	TOTPURI     string   `json:"totpURI"`
	Secret      string   `json:"secret"`
	BackupCodes []string `json:"backupCodes"`
}

// enableTwoFactor enrols the signed-in client's user and confirms it. It
// moves the clock past the confirming code's time step, so that the next
// code is a fresh one.
func (c *client) enableTwoFactor(password string) twoFactorEnrolment {
	t := c.e.t
	t.Helper()
	var en twoFactorEnrolment
	c.do("POST", "/api/auth/two-factor/enable", map[string]any{"password": password}).must(t, 200).decode(t, &en)
	c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": c.e.totpCode(en.Secret)}).must(t, 200)
	c.e.clock.Advance(30 * time.Second)
	return en
}

type pendingSignIn struct {
	Session           any      `json:"session"`
	TwoFactorRedirect bool     `json:"twoFactorRedirect"`
	TwoFactorToken    string   `json:"twoFactorToken"`
	TwoFactorMethods  []string `json:"twoFactorMethods"`
}

// mustNeedSecondFactor checks that a sign-in's answer issued no session
// but a pending second factor, and that the client is not signed in.
func (c *client) mustNeedSecondFactor(r *response) pendingSignIn {
	t := c.e.t
	t.Helper()
	var p pendingSignIn
	r.must(t, 200).decode(t, &p)
	if !p.TwoFactorRedirect || p.TwoFactorToken == "" || p.Session != nil {
		t.Fatalf("want a pending second factor, got %s", r.Raw)
	}
	if strings.Contains(r.Header.Get("Set-Cookie"), "kavach_session=") && !strings.Contains(r.Header.Get("Set-Cookie"), "kavach_session=;") {
		t.Fatalf("a session cookie was set before the second factor: %v", r.Header.Values("Set-Cookie"))
	}
	if got := c.do("GET", "/api/auth/session", nil).must(t, 200); string(got.Data) != "null" {
		t.Fatalf("signed in before the second factor: %s", got.Data)
	}
	return p
}

func TestTwoFactor(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner := e.client()
		owner.signUp("ada@example.com")

		// Enrolment needs the password and a first code.
		owner.do("POST", "/api/auth/two-factor/enable", map[string]any{"password": "wrong-password-1"}).mustError(t, 400, "INVALID_REQUEST")
		var en twoFactorEnrolment
		owner.do("POST", "/api/auth/two-factor/enable", map[string]any{"password": goodPassword}).must(t, 200).decode(t, &en)
		u, err := url.Parse(en.TOTPURI)
		if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != en.Secret || len(en.BackupCodes) != 10 {
			t.Fatalf("enrolment: %+v", en)
		}
		var st struct {
			Enabled, Pending bool
			BackupCodesLeft  int
		}
		owner.do("GET", "/api/auth/two-factor/status", nil).must(t, 200).decode(t, &st)
		if st.Enabled || !st.Pending {
			t.Fatalf("status before confirming: %+v", st)
		}
		// Not on yet: a sign-in needs no code.
		e.client().signIn("ada@example.com", goodPassword).must(t, 200)
		owner.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": "000000"}).mustError(t, 400, "INVALID_CODE")
		owner.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret)}).must(t, 200)
		owner.do("POST", "/api/auth/two-factor/enable", map[string]any{"password": goodPassword}).mustError(t, 409, "TWO_FACTOR_ENABLED")
		owner.do("GET", "/api/auth/two-factor/status", nil).must(t, 200).decode(t, &st)
		if !st.Enabled || st.BackupCodesLeft != 10 {
			t.Fatalf("status: %+v", st)
		}
		// The confirming code cannot sign anyone in (replay).
		c := e.client()
		p := c.mustNeedSecondFactor(c.signIn("ada@example.com", goodPassword))
		if strings.Join(p.TwoFactorMethods, ",") != "totp,backup-code" {
			t.Fatalf("methods %v", p.TwoFactorMethods)
		}
		c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret)}).mustError(t, 400, "INVALID_CODE")

		// Five wrong codes end the pending sign-in, even for the right code.
		for range 4 {
			c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": "123456"}).mustError(t, 400, "INVALID_CODE")
		}
		e.clock.Advance(30 * time.Second)
		c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret)}).mustError(t, 401, "TWO_FACTOR_EXPIRED")

		// A fresh first factor and the right code: signed in, and this
		// browser is trusted from now on. The token works without the
		// cookie too (bearer clients).
		bearer := e.client()
		p = bearer.mustNeedSecondFactor(bearer.signIn("ada@example.com", goodPassword))
		var done authData
		e.client().do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret), "twoFactorToken": p.TwoFactorToken}).must(t, 200).decode(t, &done)
		if done.Session == nil || done.Token == "" {
			t.Fatalf("no session after the second factor")
		}
		// The pending sign-in is used up.
		e.clock.Advance(30 * time.Second)
		e.client().do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret), "twoFactorToken": p.TwoFactorToken}).mustError(t, 401, "TWO_FACTOR_EXPIRED")

		c.mustNeedSecondFactor(c.signIn("ada@example.com", goodPassword))
		r := c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret), "trustDevice": true}).must(t, 200)
		if !strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), "\n"), "kavach_trusted_device=") {
			t.Fatalf("no trusted-device cookie: %v", r.Header.Values("Set-Cookie"))
		}
		c.do("POST", "/api/auth/sign-out", nil).must(t, 200)
		c.signIn("ada@example.com", goodPassword).must(t, 200)
		if got := c.do("GET", "/api/auth/session", nil).must(t, 200); string(got.Data) == "null" {
			t.Fatal("the trusted browser was asked for a second factor")
		}

		// Backup codes work once each.
		b := e.client()
		b.mustNeedSecondFactor(b.signIn("ada@example.com", goodPassword))
		b.do("POST", "/api/auth/two-factor/verify", map[string]any{"backupCode": strings.ToUpper(en.BackupCodes[0])}).must(t, 200)
		b2 := e.client()
		b2.mustNeedSecondFactor(b2.signIn("ada@example.com", goodPassword))
		b2.do("POST", "/api/auth/two-factor/verify", map[string]any{"backupCode": en.BackupCodes[0]}).mustError(t, 400, "INVALID_CODE")
		b2.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": "1", "backupCode": en.BackupCodes[1]}).mustError(t, 400, "INVALID_REQUEST")
		// New codes replace the old ones.
		var fresh struct {
			BackupCodes []string `json:"backupCodes"`
		}
		owner.do("POST", "/api/auth/two-factor/backup-codes", map[string]any{"password": goodPassword}).must(t, 200).decode(t, &fresh)
		b2.do("POST", "/api/auth/two-factor/verify", map[string]any{"backupCode": en.BackupCodes[1]}).mustError(t, 400, "INVALID_CODE")
		b2.do("POST", "/api/auth/two-factor/verify", map[string]any{"backupCode": fresh.BackupCodes[0]}).must(t, 200)

		// Disabling needs the password; it forgets trusted devices.
		owner.do("POST", "/api/auth/two-factor/disable", map[string]any{"password": "wrong-password-1"}).mustError(t, 400, "INVALID_REQUEST")
		owner.do("POST", "/api/auth/two-factor/disable", map[string]any{"password": goodPassword}).must(t, 200)
		owner.do("POST", "/api/auth/two-factor/disable", map[string]any{"password": goodPassword}).mustError(t, 409, "TWO_FACTOR_NOT_ENABLED")
		var plain authData
		e.client().signIn("ada@example.com", goodPassword).must(t, 200).decode(t, &plain)
		if plain.Session == nil {
			t.Fatal("no session after two-factor was disabled")
		}
		// Enabling again does not revive the old trusted device.
		owner.enableTwoFactor(goodPassword)
		c.do("POST", "/api/auth/sign-out", nil).must(t, 200)
		c.mustNeedSecondFactor(c.signIn("ada@example.com", goodPassword))

		// The audit trail and outbox name the method and the second factor.
		evs, err := e.store.Events().Pending(t.Context(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		var enabled, disabled, second int
		for _, ev := range evs {
			switch ev.Type {
			case "two_factor.enabled":
				enabled++
			case "two_factor.disabled":
				disabled++
			case "session.created":
				if strings.Contains(string(ev.Payload), `"secondFactor":"totp"`) && strings.Contains(string(ev.Payload), `"method":"email-password"`) {
					second++
				}
			}
		}
		if enabled != 2 || disabled != 1 || second < 2 {
			t.Fatalf("events: enabled %d, disabled %d, sessions after totp %d", enabled, disabled, second)
		}
	})
}

// TestTwoFactorCodesCountTowardLockout: wrong second-factor codes lock
// the account like wrong passwords, across pending sign-ins.
func TestTwoFactorCodesCountTowardLockout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner := e.client()
		owner.signUp("lin@example.com")
		en := owner.enableTwoFactor(goodPassword)
		locked := false
		for i := 0; i < 10 && !locked; i++ {
			c := e.client()
			c.mustNeedSecondFactor(c.signIn("lin@example.com", goodPassword))
			for range 5 {
				r := c.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": "999999"})
				if r.Status == 429 {
					locked = true
					break
				}
				r.mustError(t, 400, "INVALID_CODE")
			}
		}
		if !locked {
			t.Fatal("wrong codes never locked the account")
		}
		// Locked: even the right password and code do not get in.
		e.client().signIn("lin@example.com", goodPassword).mustError(t, 429, "TOO_MANY_ATTEMPTS")
		_ = en
	})
}

// TestPreHijackerTwoFactorEndsWhenOwnerProvesAddress: an authenticator
// enrolled on an unverified account by whoever made it must not survive
// the owner proving the address: else the owner cannot sign in without
// the squatter's codes, and the squatter keeps the second factor.
func TestPreHijackerTwoFactorEndsWhenOwnerProvesAddress(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		squatter := e.client()
		squatter.signUp("ada@example.com") // not Ada: the address is unverified
		squatter.enableTwoFactor(goodPassword)

		e.client().do("POST", "/api/auth/email-otp/send", map[string]any{"email": "ada@example.com"}).must(t, 200)
		owner := e.client()
		var res pendingSignIn
		owner.do("POST", "/api/auth/email-otp/verify", map[string]any{"email": "ada@example.com", "code": e.waitMailCode("ada@example.com")}).must(t, 200).decode(t, &res)
		if res.TwoFactorRedirect || res.Session == nil {
			t.Fatalf("the address's owner is asked for the squatter's second factor: %+v", res)
		}
	})
}

// TestStaleSessionCannotEnrolTwoFactorByPhone: a passwordless user's
// session older than the reauthentication window may not change two-factor
// settings. It must not get around that by verifying a phone number of its
// own (which asks for no reauthentication) and signing in with it: that
// session is "fresh" and enrols the holder's authenticator, locking the
// owner out.
func TestStaleSessionCannotEnrolTwoFactorByPhone(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		e.client().do("POST", "/api/auth/email-otp/send", map[string]any{"email": "ada@example.com"}).must(t, 200)
		stolen := e.client() // a passwordless session, later stolen
		stolen.do("POST", "/api/auth/email-otp/verify", map[string]any{"email": "ada@example.com", "code": e.waitMailCode("ada@example.com")}).must(t, 200)
		e.clock.Advance(11 * time.Minute)
		stolen.do("POST", "/api/auth/two-factor/enable", nil).mustError(t, 403, "REAUTHENTICATION_REQUIRED")

		// Adding a phone number (a way to get a fresh session) needs the
		// same re-authentication.
		const thief = "+14155550166"
		stolen.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": thief}).must(t, 200)
		stolen.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": thief, "code": waitSMSCode(t, dir, thief)}).mustError(t, 403, "REAUTHENTICATION_REQUIRED")
		e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": thief}).must(t, 200)
		fresh := e.client()
		// The number was never added: its code signs no one in.
		fresh.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": thief, "code": waitSMSCode(t, dir, thief)}).mustError(t, 400, "INVALID_CODE")
	})
}

// TestPendingSignInEndsWithPasswordReset: a password reset ends every
// session; a sign-in that passed the old password and waits for its second
// factor must end too, not turn into a session afterwards.
func TestPendingSignInEndsWithPasswordReset(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner := e.client()
		owner.signUp("ada@example.com")
		en := owner.enableTwoFactor(goodPassword)

		intruder := e.client() // knows the old password
		intruder.mustNeedSecondFactor(intruder.signIn("ada@example.com", goodPassword))

		e.client().do("POST", "/api/auth/password/forgot", map[string]string{"email": "ada@example.com"}).must(t, 200)
		link := e.waitMail("ada@example.com", "Reset your password")
		e.client().do("POST", "/api/auth/password/reset", map[string]string{"token": tokenOf(t, link), "newPassword": "fresh-harbor-lantern-77"}).must(t, 200)

		// The sign-in begun with the old password ended with the reset.
		intruder.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret)}).mustError(t, 401, "TWO_FACTOR_EXPIRED")
	})
}

// TestAddingASignInMethodNeedsReauthentication: a passkey or a phone
// number is a way back in, so a session older than the re-authentication
// window adds one only with the password.
func TestAddingASignInMethodNeedsReauthentication(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		c := e.client()
		c.signUp("ada@example.com")
		e.clock.Advance(11 * time.Minute)
		c.do("POST", "/api/auth/passkey/register/options", nil).mustError(t, 400, "INVALID_REQUEST")
		c.do("POST", "/api/auth/passkey/register/options", map[string]any{"password": "wrong-password-1"}).mustError(t, 400, "INVALID_REQUEST")
		c.do("POST", "/api/auth/passkey/register/options", map[string]any{"password": goodPassword}).must(t, 200)
		c.do("POST", "/api/auth/two-factor/enable", nil).mustError(t, 400, "INVALID_REQUEST")

		const number = "+14155550123"
		c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": number}).must(t, 200)
		code := waitSMSCode(t, dir, number)
		c.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": number, "code": code}).mustError(t, 400, "INVALID_REQUEST")
		c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": number}).must(t, 200)
		code = waitSMSCode(t, dir, number)
		c.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": number, "code": code, "password": goodPassword}).must(t, 200)
	})
}

// TestSessionsRecordTheirMethod: a session says how it was signed in,
// with the second factor after a "+".
func TestSessionsRecordTheirMethod(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		c := e.client()
		c.signUp("ada@example.com")
		var s struct {
			Session struct {
				Method string `json:"method"`
			} `json:"session"`
		}
		c.do("GET", "/api/auth/session", nil).must(t, 200).decode(t, &s)
		if s.Session.Method != "email-password" {
			t.Fatalf("method %q after sign-up", s.Session.Method)
		}
		en := c.enableTwoFactor(goodPassword)
		b := e.client()
		b.mustNeedSecondFactor(b.signIn("ada@example.com", goodPassword))
		b.do("POST", "/api/auth/two-factor/verify", map[string]any{"code": e.totpCode(en.Secret)}).must(t, 200)
		b.do("GET", "/api/auth/session", nil).must(t, 200).decode(t, &s)
		if s.Session.Method != "email-password+totp" {
			t.Fatalf("method %q after the second factor", s.Session.Method)
		}
	})
}
