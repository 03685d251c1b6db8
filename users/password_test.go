package users

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testIterations keeps tests fast; one test checks the real default.
const testIterations = 1000

// Fixtures computed independently with Python's hashlib.pbkdf2_hmac, so they pin
// compatibility with Django and KavachOS rather than with our own encoder.
const (
	fixturePassword = "correct horse"
	djangoFixture   = "pbkdf2_sha256$1000$AbCdEfGhIjKlMnOpQrStUv$nUE03thWfOiV46DAqteSej5Vv8sUGw4nkINzCTUCicc="
	kavachOSFixture = "pbkdf2:1000:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f:" +
		"67d13ea64761843ed78a407d66d0af0ddb745f3071ee473708fc89250a64d26e" +
		"f1fc846d14b2e362ced6206c635838135b04f0e0924f062c24b87893bad8ee7e"
)

func mustHash(t testing.TB, h *PasswordHasher, password string) string {
	t.Helper()
	s, err := h.Hash(context.Background(), password)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return s
}

// bcryptWithPrefix hashes at MinCost and swaps in another minor version; $2a$, $2b$
// and $2y$ differ only in bugs of old C implementations, not in the output.
func bcryptWithPrefix(t testing.TB, prefix, password string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	return prefix + strings.TrimPrefix(string(b), "$2a$")
}

// countingLegacy returns a hook that records its calls and answers with ok and err.
func countingLegacy(calls *atomic.Int32, ok bool, err error) LegacyVerifier {
	return func(_ context.Context, stored, password string) (bool, error) {
		calls.Add(1)
		return ok && stored == "md5$legacy" && password == fixturePassword, err
	}
}

func TestPasswordHasherVerify(t *testing.T) {
	h := NewPasswordHasher(testIterations, 2, nil)
	current := mustHash(t, h, fixturePassword)
	weaker := mustHash(t, NewPasswordHasher(testIterations/2, 1, nil), fixturePassword)
	stronger := mustHash(t, NewPasswordHasher(testIterations*2, 1, nil), fixturePassword)
	long := strings.Repeat("x", 72)

	tests := []struct {
		name        string
		stored      string
		password    string
		ok, rehash  bool
		hookAnswers bool // legacy hook set and says yes for md5$legacy
	}{
		{name: "round trip", stored: current, password: fixturePassword, ok: true},
		{name: "wrong password", stored: current, password: "correct horsf"},
		{name: "empty password", stored: current, password: ""},
		{name: "case matters", stored: current, password: "Correct horse"},
		{name: "django fixture", stored: djangoFixture, password: fixturePassword, ok: true},
		{name: "django fixture wrong password", stored: djangoFixture, password: "battery"},
		{name: "weaker iterations need rehash", stored: weaker, password: fixturePassword, ok: true, rehash: true},
		{name: "stronger hash is kept", stored: stronger, password: fixturePassword, ok: true, rehash: false},
		{name: "weaker iterations wrong password", stored: weaker, password: "nope"},
		{name: "bcrypt $2a$", stored: bcryptWithPrefix(t, "$2a$", fixturePassword), password: fixturePassword, ok: true, rehash: true},
		{name: "bcrypt $2b$", stored: bcryptWithPrefix(t, "$2b$", fixturePassword), password: fixturePassword, ok: true, rehash: true},
		{name: "bcrypt $2y$", stored: bcryptWithPrefix(t, "$2y$", fixturePassword), password: fixturePassword, ok: true, rehash: true},
		{name: "bcrypt wrong password", stored: bcryptWithPrefix(t, "$2b$", fixturePassword), password: "nope"},
		{name: "bcrypt ignores bytes past 72", stored: bcryptWithPrefix(t, "$2a$", long), password: long + "tail", ok: true, rehash: true},
		{name: "kavachos format", stored: kavachOSFixture, password: fixturePassword, ok: true, rehash: true},
		{name: "kavachos wrong password", stored: kavachOSFixture, password: "nope"},
		{name: "legacy hook accepts", stored: "md5$legacy", password: fixturePassword, hookAnswers: true, ok: true, rehash: true},
		{name: "legacy hook refuses", stored: "md5$legacy", password: "nope", hookAnswers: true},
		{name: "unknown format without hook", stored: "md5$legacy", password: fixturePassword},
		{name: "password over 1024 bytes", stored: current, password: strings.Repeat("a", MaxPasswordBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hasher := h
			if tt.hookAnswers {
				var calls atomic.Int32
				hasher = NewPasswordHasher(testIterations, 2, countingLegacy(&calls, true, nil))
			}
			ok, rehash, err := hasher.Verify(context.Background(), tt.stored, tt.password)
			if err != nil {
				t.Fatalf("Verify: unexpected error %v", err)
			}
			if ok != tt.ok || rehash != tt.rehash {
				t.Errorf("Verify = (ok %v, rehash %v), want (%v, %v)", ok, rehash, tt.ok, tt.rehash)
			}
		})
	}
}

func TestPasswordHasherHashFormat(t *testing.T) {
	h := NewPasswordHasher(testIterations, 1, nil)
	a, b := mustHash(t, h, fixturePassword), mustHash(t, h, fixturePassword)
	if a == b {
		t.Errorf("two hashes of one password are equal: salts are not random")
	}
	parts := strings.Split(a, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2_sha256" || parts[1] != "1000" {
		t.Fatalf("hash %q is not pbkdf2_sha256$1000$<salt>$<key>", a)
	}
	if len(parts[2]) != 22 || strings.Trim(parts[2], djangoSaltChars) != "" {
		t.Errorf("salt %q: want 22 characters from [A-Za-z0-9]", parts[2])
	}
	if key, err := base64.StdEncoding.DecodeString(parts[3]); err != nil || len(key) != 32 {
		t.Errorf("key %q: want standard base64 of 32 bytes (err %v)", parts[3], err)
	}
}

func TestPasswordHasherDefaultIterations(t *testing.T) {
	h := NewPasswordHasher(0, 0, nil)
	if h.Iterations() != 600_000 {
		t.Fatalf("Iterations() = %d, want 600000", h.Iterations())
	}
	s := mustHash(t, h, fixturePassword)
	if !strings.HasPrefix(s, "pbkdf2_sha256$600000$") {
		t.Errorf("hash %q does not record 600000 iterations", s)
	}
	if NewPasswordHasher(MaxPBKDF2Iterations+1, 1, nil).Iterations() != MaxPBKDF2Iterations {
		t.Errorf("iterations above the maximum are not lowered to it")
	}
}

func TestPasswordHasherHashRefusesLongPasswords(t *testing.T) {
	h := NewPasswordHasher(testIterations, 1, nil)
	_, err := h.Hash(context.Background(), strings.Repeat("a", MaxPasswordBytes+1))
	var pe *PasswordPolicyError
	if !errors.Is(err, ErrPasswordPolicy) || !errors.As(err, &pe) || pe.Reason != "too_long" {
		t.Fatalf("Hash(1025 bytes) error = %v, want a too_long PasswordPolicyError", err)
	}
	if _, err := h.Hash(context.Background(), strings.Repeat("a", MaxPasswordBytes)); err != nil {
		t.Fatalf("Hash(1024 bytes): %v", err)
	}
}

func TestPasswordHasherMalformed(t *testing.T) {
	valid := mustHash(t, NewPasswordHasher(testIterations, 1, nil), fixturePassword)
	validParts := strings.Split(valid, "$")
	key := validParts[3]
	bcryptHash := bcryptWithPrefix(t, "$2a$", fixturePassword)

	tests := []struct{ name, stored string }{
		{"empty", ""},
		{"django prefix only", "pbkdf2_sha256$"},
		{"django missing key", "pbkdf2_sha256$1000$salt"},
		{"django extra field", valid + "$x"},
		{"django empty salt", "pbkdf2_sha256$1000$$" + key},
		{"django zero iterations", "pbkdf2_sha256$0$salt$" + key},
		{"django negative iterations", "pbkdf2_sha256$-1000$salt$" + key},
		{"django signed iterations", "pbkdf2_sha256$+1000$salt$" + key},
		{"django absurd iterations", "pbkdf2_sha256$100000000$salt$" + key},
		{"django just over the cap", "pbkdf2_sha256$10000001$salt$" + key},
		{"django huge iterations", "pbkdf2_sha256$99999999999999999999999$salt$" + key},
		{"django iterations not a number", "pbkdf2_sha256$abc$salt$" + key},
		{"django key not base64", "pbkdf2_sha256$1000$salt$!!!!"},
		{"django key too short", "pbkdf2_sha256$1000$salt$" + base64.StdEncoding.EncodeToString([]byte("short"))},
		{"django key too long", "pbkdf2_sha256$1000$salt$" + base64.StdEncoding.EncodeToString(make([]byte, 1024))},
		{"bcrypt truncated", bcryptHash[:20]},
		{"bcrypt cost 31", "$2a$31$" + bcryptHash[7:]},
		{"bcrypt cost not a number", "$2a$xx$" + bcryptHash[7:]},
		{"kavachos missing parts", "pbkdf2:1000:00ff"},
		{"kavachos odd hex salt", "pbkdf2:1000:0:" + strings.Repeat("ab", 32)},
		{"kavachos empty salt", "pbkdf2:1000::" + strings.Repeat("ab", 32)},
		{"kavachos key not hex", "pbkdf2:1000:00ff:" + strings.Repeat("zz", 32)},
		{"kavachos key too short", "pbkdf2:1000:00ff:ab"},
		{"kavachos key too long", "pbkdf2:1000:00ff:" + strings.Repeat("ab", 65)},
		{"kavachos absurd iterations", "pbkdf2:1000000000:00ff:" + strings.Repeat("ab", 32)},
		{"kavachos zero iterations", "pbkdf2:0:00ff:" + strings.Repeat("ab", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			h := NewPasswordHasher(testIterations, 1, countingLegacy(&calls, true, nil))
			start := time.Now()
			ok, rehash, err := h.Verify(context.Background(), tt.stored, fixturePassword)
			if ok || rehash || err != nil {
				t.Errorf("Verify(%q) = (%v, %v, %v), want no match and no error", tt.stored, ok, rehash, err)
			}
			if calls.Load() != 0 {
				t.Errorf("legacy hook called for a hash in a known format")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Verify took %v: a malformed hash must not cost real work", d)
			}
		})
	}
}

func TestPasswordHasherLegacyHook(t *testing.T) {
	bcryptHash := bcryptWithPrefix(t, "$2b$", fixturePassword)
	hookErr := errors.New("legacy store unavailable")

	tests := []struct {
		name      string
		stored    string
		hookOK    bool
		hookErr   error
		wantCalls int32
		wantOK    bool
		wantErr   error
	}{
		{name: "our format does not reach the hook", stored: djangoFixture, hookOK: true, wantOK: true},
		{name: "bcrypt does not reach the hook", stored: bcryptHash, hookOK: true, wantOK: true},
		{name: "kavachos does not reach the hook", stored: kavachOSFixture, hookOK: true, wantOK: true},
		{name: "unknown format reaches the hook", stored: "md5$legacy", hookOK: true, wantCalls: 1, wantOK: true},
		{name: "hook error propagates", stored: "md5$legacy", hookOK: true, hookErr: hookErr, wantCalls: 1, wantErr: hookErr},
		{name: "empty stored hash does not reach the hook", stored: "", hookOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			h := NewPasswordHasher(testIterations, 1, countingLegacy(&calls, tt.hookOK, tt.hookErr))
			ok, _, err := h.Verify(context.Background(), tt.stored, fixturePassword)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if ok != tt.wantOK {
				t.Errorf("ok = %v, want %v", ok, tt.wantOK)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("hook called %d times, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestPasswordHasherConcurrencyCap(t *testing.T) {
	entered := make(chan struct{})
	unblock := make(chan struct{})
	// A legacy hook that blocks holds the only slot for as long as we like.
	blocking := func(context.Context, string, string) (bool, error) {
		close(entered)
		<-unblock
		return true, nil
	}
	h := NewPasswordHasher(testIterations, 1, blocking)

	held := make(chan error, 1)
	go func() {
		_, _, err := h.Verify(context.Background(), "legacy", fixturePassword)
		held <- err
	}()
	<-entered

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(cancelled, fixturePassword); !errors.Is(err, ErrHasherBusy) || !errors.Is(err, context.Canceled) {
		t.Errorf("Hash while the slot is held = %v, want ErrHasherBusy wrapping context.Canceled", err)
	}
	ok, _, err := h.Verify(cancelled, djangoFixture, fixturePassword)
	if ok || !errors.Is(err, ErrHasherBusy) {
		t.Errorf("Verify while the slot is held = (%v, %v), want (false, ErrHasherBusy)", ok, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if _, err := h.Hash(short, fixturePassword); !errors.Is(err, ErrHasherBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hash timing out while waiting = %v, want ErrHasherBusy wrapping DeadlineExceeded", err)
	}

	// A waiter with a live context gets the slot once it is released.
	waited := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), fixturePassword)
		waited <- err
	}()
	close(unblock)
	if err := <-held; err != nil {
		t.Fatalf("holder: %v", err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("waiter: %v", err)
	}

	// With a free slot, a context that is already over does no work and is not "busy".
	if _, err := h.Hash(cancelled, fixturePassword); !errors.Is(err, context.Canceled) || errors.Is(err, ErrHasherBusy) {
		t.Errorf("Hash with a free slot and a cancelled context = %v, want context.Canceled only", err)
	}
	if len(h.slots) != 0 {
		t.Errorf("%d slots still held after all calls returned", len(h.slots))
	}
}

func TestPasswordHasherDummyVerify(t *testing.T) {
	h := NewPasswordHasher(testIterations, 1, nil)
	// The dummy hash must be a current-params hash, so it costs what a real one does.
	if _, rehash, err := h.Verify(context.Background(), h.dummy, ""); rehash || err != nil {
		t.Fatalf("dummy hash is not in the current format (rehash %v, err %v)", rehash, err)
	}
	if iter, _, _, ok := parseDjango(h.dummy); !ok || iter != h.Iterations() {
		t.Fatalf("dummy hash %q does not parse at %d iterations", h.dummy, h.Iterations())
	}
	h.DummyVerify(context.Background(), fixturePassword)
	if len(h.slots) != 0 {
		t.Errorf("DummyVerify left a slot held")
	}
}

func FuzzVerify(f *testing.F) {
	h := NewPasswordHasher(testIterations, 1, nil)
	for _, s := range []string{
		djangoFixture, kavachOSFixture, bcryptWithPrefix(f, "$2y$", fixturePassword),
		"", "$", "$2a$", "$2b$10$", "pbkdf2_sha256$", "pbkdf2_sha256$1$$", "pbkdf2:", "pbkdf2:1:00:",
		"pbkdf2_sha256$10000001$a$b", "$2a$99$" + strings.Repeat("a", 53),
	} {
		f.Add(s, fixturePassword)
	}
	f.Fuzz(func(t *testing.T, stored, password string) {
		ok, rehash, err := h.Verify(context.Background(), stored, password)
		if err != nil {
			t.Fatalf("Verify(%q) error %v: no hook and a live context leave no reason to fail", stored, err)
		}
		if rehash && !ok {
			t.Fatalf("Verify(%q) asks for a rehash without a match", stored)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	h := NewPasswordHasher(DefaultPBKDF2Iterations, 0, nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, fixturePassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewPasswordHasher(DefaultPBKDF2Iterations, 0, nil)
	ctx := context.Background()
	stored := mustHash(b, h, fixturePassword)
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, stored, fixturePassword); !ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}

func TestCheapFailuresArePadded(t *testing.T) {
	h := NewPasswordHasher(testIterations, 1, func(context.Context, string, string) (bool, error) { return false, nil })
	current := mustHash(t, h, fixturePassword)
	cases := []struct {
		name   string
		stored string
		padded int64
	}{
		{"current hash, wrong password", current, 0},
		{"current hash, right password", current, 0},
		{"bcrypt, wrong password", bcryptWithPrefix(t, "$2b$", fixturePassword), 1},
		{"weaker pbkdf2, wrong password", mustHash(t, NewPasswordHasher(testIterations/2, 1, nil), fixturePassword), 1},
		{"legacy hook says no", "md5$whatever", 1},
		{"malformed", "pbkdf2_sha256$x$y$z", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw := "wrong password"
			if strings.Contains(c.name, "right") {
				pw = fixturePassword
			}
			before := h.padded.Load()
			_, _, _ = h.Verify(context.Background(), c.stored, pw)
			if got := h.padded.Load() - before; got != c.padded {
				t.Fatalf("padded %d times, want %d", got, c.padded)
			}
		})
	}
}
