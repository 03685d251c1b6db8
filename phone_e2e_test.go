package kavach_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/storage"
)

// Phone codes end to end: the development SMS folder, and the webhook
// sender against a real receiver on loopback.

// linkPhone verifies number for the signed-in client.
func (c *client) linkPhone(dir, raw, number string) {
	t := c.e.t
	t.Helper()
	c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": raw}).must(t, 200)
	var out struct {
		PhoneNumber string `json:"phoneNumber"`
		Verified    bool   `json:"verified"`
	}
	c.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": raw, "code": waitSMSCode(t, dir, number)}).must(t, 200).decode(t, &out)
	if out.PhoneNumber != number || !out.Verified {
		t.Fatalf("verify phone: %+v", out)
	}
}

func TestPhoneCodes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		const ada = "+14155550100"
		owner := e.client()
		owner.signUp("ada@example.com")
		sendCode := func(number string) *response {
			return e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": number}).must(t, 200)
		}
		signIn := func(c *client, number, code string) *response {
			return c.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": number, "code": code})
		}

		// A signed-in user verifies a number: a wrong code first.
		owner.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+1 (415) 555-0100"}).must(t, 200)
		code := waitSMSCode(t, dir, ada)
		owner.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": otherCode(code)}).mustError(t, 400, "INVALID_CODE")
		owner.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": code}).must(t, 200)
		acct, err := e.store.Accounts().GetByProvider(t.Context(), "phone", ada)
		if err != nil {
			t.Fatal(err)
		}
		if e.countEvents("phone.verified") != 1 {
			t.Fatal("no phone.verified event")
		}

		// Then signs in with a code sent to it.
		sendCode(ada)
		code = waitSMSCode(t, dir, ada)
		c := e.client()
		var res authData
		signIn(c, "+1 415 555 0100", code).must(t, 200).decode(t, &res)
		if res.Session == nil || res.User.ID != acct.UserID {
			t.Fatalf("phone sign-in: %s", res.User.ID)
		}
		c.mustBeSignedIn("ada@example.com")
		// Used once.
		signIn(e.client(), ada, code).mustError(t, 400, "INVALID_CODE")

		// Expired after 5 minutes.
		sendCode(ada)
		code = waitSMSCode(t, dir, ada)
		e.clock.Advance(5*time.Minute + time.Second)
		signIn(e.client(), ada, code).mustError(t, 400, "INVALID_CODE")

		// Three wrong guesses use a code up.
		sendCode(ada)
		code = waitSMSCode(t, dir, ada)
		for range 3 {
			signIn(e.client(), ada, otherCode(code)).mustError(t, 400, "INVALID_CODE")
		}
		signIn(e.client(), ada, code).mustError(t, 400, "INVALID_CODE")

		// Another user cannot take the number, even with its code; only
		// then is it told the number is taken.
		bob := e.client()
		bob.signUp("bob@example.com")
		bob.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": ada}).must(t, 200)
		code = waitSMSCode(t, dir, ada)
		bob.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": otherCode(code)}).mustError(t, 400, "INVALID_CODE")
		bob.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": code}).mustError(t, 409, "PHONE_IN_USE")
		if a, err := e.store.Accounts().GetByProvider(t.Context(), "phone", ada); err != nil || a.UserID != acct.UserID {
			t.Fatalf("the number moved: %+v %v", a, err)
		}

		// A number without an account answers like a wrong code, whether
		// the code is right or not: sign-up by phone is not offered.
		const stranger = "+14155550199"
		sendCode(stranger)
		code = waitSMSCode(t, dir, stranger)
		wrongAnswer := signIn(e.client(), stranger, otherCode(code)).mustError(t, 400, "INVALID_CODE")
		rightAnswer := signIn(e.client(), stranger, code).mustError(t, 400, "INVALID_CODE")
		if string(wrongAnswer.Raw) != string(rightAnswer.Raw) {
			t.Fatalf("answers differ: %s vs %s", wrongAnswer.Raw, rightAnswer.Raw)
		}
		e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "4155550100"}).mustError(t, 400, "INVALID_REQUEST")

		// Verifying another number replaces the first.
		const second = "+442079460958"
		owner.linkPhone(dir, "+44 20 7946 0958", second)
		if _, err := e.store.Accounts().GetByProvider(t.Context(), "phone", ada); err == nil {
			t.Fatal("the old number still signs in")
		}
		sendCode(second)
		signIn(e.client(), second, waitSMSCode(t, dir, second)).must(t, 200)

		if got := e.sessionMethods()["phone-otp"]; got != 2 {
			t.Fatalf("%d phone-otp sessions, want 2: %v", got, e.sessionMethods())
		}
	})
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

const smsSecret = "sms-webhook-secret-for-tests-0123"

// TestPhoneWebhookSender: codes reach a real receiver on loopback, signed
// as documented; a receiver that fails is logged, and the client is told
// nothing different.
func TestPhoneWebhookSender(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		got := make(chan smsDelivery, 10)
		var failing sync.Map // set "fail" to answer 500
		receiver := newSMSReceiver(t, got, &failing)
		logs := &syncBuffer{}
		e := newEnv(t, open, func(c *kavach.Config) {
			c.SignIn.SMSWebhookURL = receiver.URL + "/sms"
			c.SignIn.SMSWebhookSecret = smsSecret
			c.Logger = slogTo(logs)
		})
		owner := e.client()
		owner.signUp("ada@example.com")
		owner.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+14155550100"}).must(t, 200)
		d := <-got
		if !d.Valid || d.To != "+14155550100" {
			t.Fatalf("delivery %+v", d)
		}
		m := smsCodeRE.FindStringSubmatch(d.Text)
		if m == nil {
			t.Fatalf("no code in %q", d.Text)
		}
		owner.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": "+14155550100", "code": m[1]}).must(t, 200)

		// The receiver fails: the answer is the same, the failure is
		// logged (without the code).
		failing.Store("fail", true)
		ok := e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+14155550100"}).must(t, 200)
		if !strings.Contains(string(ok.Raw), `"sent":true`) {
			t.Fatalf("answer %s", ok.Raw)
		}
		d = <-got
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(logs.String(), "sending text message failed") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		out := logs.String()
		if !strings.Contains(out, "sending text message failed") || !strings.Contains(out, "500") {
			t.Fatalf("failure not logged:\n%s", out)
		}
		if m := smsCodeRE.FindStringSubmatch(d.Text); m == nil || strings.Contains(out, m[1]) {
			t.Fatalf("the log holds the code:\n%s", out)
		}
	})
}

// smsDelivery is what the receiver got, and whether it was signed right.
type smsDelivery struct {
	To, Text string
	Valid    bool
}

// newSMSReceiver is an SMS gateway's webhook endpoint on loopback that
// checks the signature as docs/sign-in-methods.md tells receivers to.
func newSMSReceiver(t *testing.T, got chan<- smsDelivery, failing *sync.Map) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, valid := readSigned(r, smsSecret)
		var d smsDelivery
		_ = json.Unmarshal(body, &d) // {"to","text"}: field names match case-insensitively
		d.Valid = valid
		got <- d
		if _, fail := failing.Load("fail"); fail || !valid {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPhoneNotEnabled: production without an SMS webhook turns the phone
// routes off.
func TestPhoneNotEnabled(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, func(c *kavach.Config) {
		c.Env = kavach.EnvProduction
		c.Password.Iterations = 100_000
	})
	e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+14155550100"}).mustError(t, 404, "PHONE_NOT_ENABLED")
	e.client().do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": "+14155550100", "code": "123456"}).mustError(t, 404, "PHONE_NOT_ENABLED")
}

// readSigned reads the body and checks the Standard Webhooks signature:
// base64 HMAC-SHA256 of "id.timestamp.body" under the secret's bytes.
func readSigned(r *http.Request, secret string) ([]byte, bool) {
	body, _ := io.ReadAll(r.Body)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	return body, r.Header.Get("webhook-id") != "" && hmac.Equal([]byte(want), []byte(r.Header.Get("webhook-signature")))
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func TestConfigSMSWebhook(t *testing.T) {
	base := kavach.Config{Secret: testSecret, BaseURL: "https://auth.example.com", Env: kavach.EnvProduction, Email: kavach.EmailConfig{SMTPHost: "smtp.example.com"}}
	tests := []struct {
		name    string
		mutate  func(*kavach.SignInConfig)
		wantErr string
	}{
		{"no phone at all", func(*kavach.SignInConfig) {}, ""},
		{"webhook", func(s *kavach.SignInConfig) {
			s.SMSWebhookURL, s.SMSWebhookSecret = "https://sms.example.com/send", smsSecret
		}, ""},
		{"url without secret", func(s *kavach.SignInConfig) { s.SMSWebhookURL = "https://sms.example.com/send" }, "go together"},
		{"secret without url", func(s *kavach.SignInConfig) { s.SMSWebhookSecret = smsSecret }, "go together"},
		{"http in production", func(s *kavach.SignInConfig) {
			s.SMSWebhookURL, s.SMSWebhookSecret = "http://sms.example.com/send", smsSecret
		}, "https"},
		{"short secret", func(s *kavach.SignInConfig) {
			s.SMSWebhookURL, s.SMSWebhookSecret = "https://sms.example.com/send", "short"
		}, "at least 24 bytes"},
		{"long code lifetime", func(s *kavach.SignInConfig) { s.OneTimeCodeTTL = 2 * time.Hour }, "at most 1h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mutate(&c.SignIn)
			c = c.Defaults()
			if c.SignIn.SMSDevDir != "" {
				t.Fatalf("production got a development SMS folder %q", c.SignIn.SMSDevDir)
			}
			err := c.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if dev := (kavach.Config{}).Defaults(); dev.SignIn.SMSDevDir != "kavach-sms" || dev.SignIn.MagicLinkTTL != 10*time.Minute || dev.SignIn.OneTimeCodeTTL != 5*time.Minute {
		t.Fatalf("development defaults: %+v", dev.SignIn)
	}
}

// TestPreHijackerPhoneEndsWhenOwnerProvesAddress: someone who signs up
// an address they do not own (unverified) and verifies their own phone
// number on it must lose that number when the address's owner proves it
// with a code or link, as they lose the password and sessions; otherwise
// they sign in to the owner's account by phone afterwards.
func TestPreHijackerPhoneEndsWhenOwnerProvesAddress(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		const squatterPhone = "+14155550177"
		squatter := e.client()
		squatter.signUp("ada@example.com") // not Ada: the address is unverified
		squatter.linkPhone(dir, squatterPhone, squatterPhone)

		// Ada proves the address with an emailed code and uses the account.
		e.client().do("POST", "/api/auth/email-otp/send", map[string]any{"email": "ada@example.com"}).must(t, 200)
		owner := e.client()
		owner.do("POST", "/api/auth/email-otp/verify", map[string]any{"email": "ada@example.com", "code": e.waitMailCode("ada@example.com")}).must(t, 200)
		owner.mustBeSignedIn("ada@example.com")
		if got := squatter.do("GET", "/api/auth/session", nil).must(t, 200); string(got.Data) != "null" {
			t.Fatalf("the squatter's session survived: %s", got.Data)
		}

		// The squatter's phone number must not get them back in.
		e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": squatterPhone}).must(t, 200)
		intruder := e.client()
		// The pre-hijacker's number was dropped: its code signs no one in.
		intruder.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": squatterPhone, "code": waitSMSCode(t, dir, squatterPhone)}).mustError(t, 400, "INVALID_CODE")
	})
}

// TestPhoneVerifyGuessesCountForNumberOwner: guesses at the codes of a
// number that signs in to an account must count toward that account's
// lockout on every route. Through the signed-in verify route they count
// toward the guesser's own account instead, and the right code answers
// PHONE_IN_USE without being spent, so it then signs in as the owner.
func TestPhoneVerifyGuessesCountForNumberOwner(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		const ada = "+14155550100"
		owner := e.client()
		owner.signUp("ada@example.com")
		owner.linkPhone(dir, ada, ada)

		// 12 wrong guesses (more than the lockout threshold of 10) at
		// Ada's codes, from two throwaway accounts, two guesses a code.
		var guessers []*client
		for i := range 2 {
			g := e.client()
			g.signUp("guesser" + string(rune('a'+i)) + "@example.com")
			guessers = append(guessers, g)
		}
		wrongs := 0
		for i := range 6 {
			g := guessers[i%2]
			g.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": ada}).must(t, 200)
			code := waitSMSCode(t, dir, ada)
			for _, wrong := range []string{otherCode(code), otherCode(otherCode(code))} {
				if wrong == code {
					continue
				}
				r := g.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": wrong})
				if wrongs < 10 {
					r.mustError(t, 400, "INVALID_CODE")
				} else {
					r.mustError(t, 429, "TOO_MANY_ATTEMPTS")
				}
				wrongs++
			}
		}
		// The guesses count against the number, whoever sends them: it is
		// locked now, even for the right code (and for Ada, until the lock
		// ends; her password sign-in is not affected).
		e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": ada}).must(t, 200)
		e.client().do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": waitSMSCode(t, dir, ada)}).mustError(t, 429, "TOO_MANY_ATTEMPTS")
		e.clock.Advance(16 * time.Minute)

		// The right code through the verify route is told apart, and spent:
		// it cannot then sign in as Ada.
		g := guessers[0]
		g.do("POST", "/api/auth/sign-in/email", map[string]any{"email": "guessera@example.com", "password": goodPassword}).must(t, 200)
		g.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": ada}).must(t, 200)
		code := waitSMSCode(t, dir, ada)
		g.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": code}).mustError(t, 409, "PHONE_IN_USE")
		// PHONE_IN_USE spent the code: it cannot sign in as the owner.
		e.client().do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": code}).mustError(t, 400, "INVALID_CODE")
	})
}

// TestPhoneTrunkZeroIsTheSameNumber: "+44 (0)20 7946 0958" is how UK
// numbers are often written, and it is the number +442079460958. It must
// normalize to it (or be refused), not become a second number that a
// second account can verify.
func TestPhoneTrunkZeroIsTheSameNumber(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		const number = "+442079460958"
		owner := e.client()
		owner.signUp("ada@example.com")
		owner.linkPhone(dir, number, number)

		other := e.client()
		other.signUp("bob@example.com")
		// The "(0)" spelling is the same number: the code goes to it, and
		// the number is ada's.
		other.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+44 (0)20 7946 0958"}).must(t, 200)
		code := waitSMSCode(t, dir, number)
		other.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": "+44 (0)20 7946 0958", "code": code}).mustError(t, 409, "PHONE_IN_USE")
	})
}

// TestPhoneSignInDoesNotTellWhoseNumber: phone sign-in must not tell
// whether a number belongs to an account. It counts guesses toward the
// owner's lockout, so once anyone has locked an address (ten wrong
// passwords), a wrong code for that person's number answers
// TOO_MANY_ATTEMPTS while any other number answers INVALID_CODE: the
// number is tied to the address.
func TestPhoneSignInDoesNotTellWhoseNumber(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, nil)
		const ada, stranger = "+14155550100", "+14155550199"
		owner := e.client()
		owner.signUp("ada@example.com")
		owner.linkPhone(dir, ada, ada)
		for range 10 {
			e.client().signIn("ada@example.com", "wrong-password-1")
		}
		a := e.client().do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": ada, "code": "000000"})
		b := e.client().do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": stranger, "code": "000000"})
		if a.Status != b.Status || string(a.Raw) != string(b.Raw) {
			t.Fatalf("Ada's number answers %d %s, another number %d %s", a.Status, a.Raw, b.Status, b.Raw)
		}
	})
}

// TestPreHijackedAdminAddressPhone: the same gap as above on an address
// listed in AdminEmails: once its owner proves it, the account is an
// admin, and the squatter's phone number signs in to it.
func TestPreHijackedAdminAddressPhone(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
		const squatterPhone = "+14155550178"
		squatter := e.client()
		squatter.signUp("root@example.com")
		squatter.linkPhone(dir, squatterPhone, squatterPhone)
		squatter.do("GET", "/api/auth/admin/oauth2/clients", nil).mustError(t, 403, "FORBIDDEN")

		e.client().do("POST", "/api/auth/magic-link/send", map[string]any{"email": "root@example.com"}).must(t, 200)
		e.client().do("GET", e.relative(e.waitMail("root@example.com", "Your sign-in link")), nil).must(t, 200)

		e.client().do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": squatterPhone}).must(t, 200)
		intruder := e.client()
		intruder.do("POST", "/api/auth/phone/verify", map[string]any{"phoneNumber": squatterPhone, "code": waitSMSCode(t, dir, squatterPhone)}).mustError(t, 400, "INVALID_CODE")
		intruder.do("GET", "/api/auth/admin/oauth2/clients", nil).mustError(t, 401, "UNAUTHENTICATED")
	})
}

// TestSMSBudget: the node sends at most KAVACH_SMS_PER_HOUR texts an
// hour, whatever the numbers; malformed numbers do not spend the budget.
func TestSMSBudget(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e, dir := smsEnv(t, open, func(c *kavach.Config) { c.SignIn.SMSPerHour = 2 })
		c := e.client()
		c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "0800 not a number"}).mustError(t, 400, "INVALID_REQUEST")
		c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+14155550101"}).must(t, 200)
		c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+14155550102"}).must(t, 200)
		r := c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+14155550103"}).mustError(t, 429, "RATE_LIMITED")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		e.clock.Advance(time.Hour)
		c.do("POST", "/api/auth/phone/send-code", map[string]any{"phoneNumber": "+14155550103"}).must(t, 200)
		waitSMSCode(t, dir, "+14155550103")
	})
}
