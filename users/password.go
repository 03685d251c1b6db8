package users

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	// DefaultPBKDF2Iterations is OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256
	// and Django's default since 5.0.
	DefaultPBKDF2Iterations = 600_000

	// MaxPBKDF2Iterations bounds the iteration count we hash with and accept from a
	// stored hash, so a poisoned or corrupt hash cannot pin a CPU for minutes.
	MaxPBKDF2Iterations = 10_000_000

	// MaxPasswordBytes bounds the work one request can cause: longer passwords
	// are refused by Hash and never match in Verify.
	MaxPasswordBytes = 1024
)

// ErrHasherBusy is returned when the context ends while waiting for a hashing slot.
// The error also wraps the context's error.
var ErrHasherBusy = errors.New("password hasher busy")

// LegacyVerifier checks a password against a hash from a previous system (the
// migration-guide hook). It is consulted only for stored hashes in a format that
// PasswordHasher does not know.
type LegacyVerifier func(ctx context.Context, storedHash, password string) (bool, error)

// PasswordHasher hashes and verifies human passwords.
//
// New hashes use Django's PBKDF2-SHA256 format, so users imported from Django verify
// without conversion. Verify also accepts bcrypt (Clerk exports) and KavachOS's
// PBKDF2 format, and reports needsRehash so the caller can upgrade the stored hash
// after a successful sign-in.
//
// Every expensive computation runs behind a semaphore of maxConcurrent slots: a burst
// of sign-ins queues instead of starving the rest of the server of CPU.
type PasswordHasher struct {
	iterations int
	slots      chan struct{}
	legacy     LegacyVerifier
	// dummy is a current-params hash no password matches in practice; DummyVerify
	// checks against it so unknown accounts cost the same as known ones.
	dummy string
	// refCost is a moving average (ns) of how long one PBKDF2 check at the
	// current iteration count takes; cheap failures are padded up to it.
	refCost atomic.Int64
	// padded counts paddings (tests check that cheap failures are padded).
	padded atomic.Int64
}

// MaxHashWait bounds how long a request waits for a free hashing slot before
// the server answers that it is busy.
const MaxHashWait = 5 * time.Second

// NewPasswordHasher returns a hasher. iterations <= 0 means DefaultPBKDF2Iterations
// and values above MaxPBKDF2Iterations are lowered to it, so every hash it writes
// also verifies. maxConcurrent <= 0 means runtime.GOMAXPROCS(0). legacy may be nil.
func NewPasswordHasher(iterations, maxConcurrent int, legacy LegacyVerifier) *PasswordHasher {
	if iterations <= 0 {
		iterations = DefaultPBKDF2Iterations
	}
	iterations = min(iterations, MaxPBKDF2Iterations)
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	return &PasswordHasher{
		iterations: iterations,
		slots:      make(chan struct{}, maxConcurrent),
		legacy:     legacy,
		dummy:      formatDjango(iterations, "kavachDummySaltNoMatch", make([]byte, sha256.Size)),
	}
}

// Iterations reports the PBKDF2 iteration count new hashes use.
func (h *PasswordHasher) Iterations() int { return h.iterations }

// Hash returns password in Django's format:
// pbkdf2_sha256$<iterations>$<salt>$<base64 key>.
func (h *PasswordHasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", &PasswordPolicyError{Reason: reasonTooLong, Message: "Password is too long."}
	}
	salt := newDjangoSalt()
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha256.New, password, []byte(salt), h.iterations, sha256.Size)
	h.release()
	if err != nil {
		return "", fmt.Errorf("users: hash password: %w", err)
	}
	return formatDjango(h.iterations, salt, key), nil
}

// Verify reports whether password matches stored. needsRehash is true when it matches
// but stored is weaker than what Hash produces today: a PBKDF2 hash with fewer
// iterations, bcrypt, KavachOS's format, or a hash the legacy hook accepted; the caller
// should then store a fresh Hash. A stronger stored hash is kept.
//
// A malformed stored hash, or one with absurd cost parameters, simply does not match.
// A failed check against anything cheaper than a current hash is padded with the work
// of one current hash, so that a wrong password for an imported (bcrypt) or malformed
// hash answers no faster than an unknown account does.
// err is non-nil only when no answer could be computed: the context ended while
// waiting (ErrHasherBusy) or the legacy hook failed.
func (h *PasswordHasher) Verify(ctx context.Context, stored, password string) (ok, needsRehash bool, err error) {
	start := time.Now()
	ok, current, err := h.verify(ctx, stored, password)
	if err == nil && !ok && !current {
		h.pad(ctx, password, time.Since(start))
	}
	return ok, ok && !current, err
}

// pad makes a failed check that cost elapsed last as long as a check
// against a current hash. It sleeps the difference rather than hashing
// again, so that padding neither overshoots (a bcrypt check plus a full
// PBKDF2 would be slower than an unknown account) nor takes a hashing slot.
// Until a current check has been timed, it falls back to one dummy check.
func (h *PasswordHasher) pad(ctx context.Context, password string, elapsed time.Duration) {
	h.padded.Add(1)
	ref := time.Duration(h.refCost.Load())
	if ref == 0 {
		_, _, _ = h.verify(ctx, h.dummy, password)
		return
	}
	if d := ref - elapsed; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// recordCost folds one timed current-cost check into refCost.
func (h *PasswordHasher) recordCost(d time.Duration) {
	old := h.refCost.Load()
	if old == 0 {
		h.refCost.Store(int64(d))
		return
	}
	h.refCost.Store(old + (int64(d)-old)/8)
}

// verify checks password against stored; current reports that stored is our
// format at (at least) today's iteration count.
func (h *PasswordHasher) verify(ctx context.Context, stored, password string) (ok, current bool, err error) {
	if len(password) > MaxPasswordBytes || stored == "" {
		return false, false, nil
	}
	switch {
	case strings.HasPrefix(stored, djangoPrefix):
		iter, salt, want, parsed := parseDjango(stored)
		if !parsed {
			return false, false, nil
		}
		ok, err = h.checkPBKDF2(ctx, password, salt, iter, want)
		return ok, iter >= h.iterations, err
	case isBcrypt(stored):
		ok, err = h.checkBcrypt(ctx, stored, password)
		return ok, false, err
	case strings.HasPrefix(stored, kavachOSPrefix):
		iter, salt, want, parsed := parseKavachOS(stored)
		if !parsed {
			return false, false, nil
		}
		ok, err = h.checkPBKDF2(ctx, password, salt, iter, want)
		return ok, false, err
	case h.legacy != nil:
		ok, err = h.checkLegacy(ctx, stored, password)
		return ok, false, err
	}
	return false, false, nil
}

// DummyVerify spends the same work as a Verify against a current-params hash. Call it
// when the account does not exist, so response time does not reveal which emails
// have accounts.
// It returns an error only when no hashing slot could be had (ErrHasherBusy),
// which callers must report exactly as a busy real check, or a busy server
// would answer unknown accounts differently from real ones.
func (h *PasswordHasher) DummyVerify(ctx context.Context, password string) error {
	_, _, err := h.verify(ctx, h.dummy, password)
	return err
}

func (h *PasswordHasher) checkPBKDF2(ctx context.Context, password string, salt []byte, iter int, want []byte) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	start := time.Now()
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if iter == h.iterations && len(want) == sha256.Size {
		h.recordCost(time.Since(start))
	}
	h.release()
	if err != nil {
		return false, fmt.Errorf("users: verify password: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func (h *PasswordHasher) checkBcrypt(ctx context.Context, stored, password string) (bool, error) {
	cost, err := bcrypt.Cost([]byte(stored))
	if err != nil || cost > maxBcryptCost {
		return false, nil
	}
	// bcrypt only reads the first 72 bytes; legacy systems that accepted longer
	// passwords hashed exactly this prefix.
	pw := []byte(password)
	if len(pw) > 72 {
		pw = pw[:72]
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	err = bcrypt.CompareHashAndPassword([]byte(stored), pw)
	h.release()
	return err == nil, nil
}

func (h *PasswordHasher) checkLegacy(ctx context.Context, stored, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	ok, err := h.legacy(ctx, stored, password)
	if err != nil {
		return false, fmt.Errorf("users: legacy password verifier: %w", err)
	}
	return ok, nil
}

// acquire takes a hashing slot, waiting while all are in use. If ctx ends while
// waiting the error is ErrHasherBusy; if it was already over when a slot was free,
// the error is ctx's own and no hashing happens, since nobody waits for the answer.
func (h *PasswordHasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		if err := ctx.Err(); err != nil {
			h.release()
			return fmt.Errorf("users: password hashing: %w", err)
		}
		return nil
	default:
	}
	// Waiting is bounded on our side too: the request context of a client
	// that stays connected never ends, and a queue that only grows would
	// turn a burst into memory exhaustion and minutes-long answers.
	t := time.NewTimer(MaxHashWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("users: %w: %w", ErrHasherBusy, ctx.Err())
	case <-t.C:
		return fmt.Errorf("users: %w: waited %v for a hashing slot", ErrHasherBusy, MaxHashWait)
	}
}

func (h *PasswordHasher) release() { <-h.slots }

// Django format: pbkdf2_sha256$<iterations>$<salt>$<base64std key>, the salt used as
// raw bytes.
const (
	djangoPrefix     = "pbkdf2_sha256$"
	djangoSaltLength = 22
	djangoSaltChars  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

func formatDjango(iterations int, salt string, key []byte) string {
	return djangoPrefix + strconv.Itoa(iterations) + "$" + salt + "$" + base64.StdEncoding.EncodeToString(key)
}

func parseDjango(stored string) (iter int, salt, key []byte, ok bool) {
	parts := strings.Split(stored[len(djangoPrefix):], "$")
	if len(parts) != 3 || parts[1] == "" {
		return 0, nil, nil, false
	}
	iter, ok = parseIterations(parts[0])
	if !ok {
		return 0, nil, nil, false
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	// Django's pbkdf2_sha256 always stores a SHA-256-sized key.
	if err != nil || len(key) != sha256.Size {
		return 0, nil, nil, false
	}
	return iter, []byte(parts[1]), key, true
}

// newDjangoSalt returns 22 characters from [A-Za-z0-9], as Django's
// get_random_string does (about 131 bits).
func newDjangoSalt() string {
	const n = len(djangoSaltChars) // 62
	salt := make([]byte, 0, djangoSaltLength)
	var buf [32]byte
	for len(salt) < djangoSaltLength {
		rand.Read(buf[:]) // never fails since Go 1.24; it crashes the program instead
		for _, b := range buf {
			// Reject bytes past the last whole multiple of 62 so every character
			// is equally likely.
			if int(b) >= 256-256%n {
				continue
			}
			salt = append(salt, djangoSaltChars[int(b)%n])
			if len(salt) == djangoSaltLength {
				break
			}
		}
	}
	return string(salt)
}

// KavachOS format (the TypeScript system we migrate from):
// pbkdf2:<iterations>:<salt hex>:<key hex>, PBKDF2-HMAC-SHA256 with the key length
// read from the stored key (64 bytes in KavachOS v0.2.1).
const (
	kavachOSPrefix   = "pbkdf2:"
	minKavachOSKey   = 16
	maxKavachOSKey   = 64 // two SHA-256 blocks; longer keys would multiply the work
	maxKavachOSSalt  = 1024
	maxIterationsLen = len("10000000")
)

func parseKavachOS(stored string) (iter int, salt, key []byte, ok bool) {
	parts := strings.Split(stored[len(kavachOSPrefix):], ":")
	if len(parts) != 3 {
		return 0, nil, nil, false
	}
	iter, ok = parseIterations(parts[0])
	if !ok || len(parts[1]) > 2*maxKavachOSSalt {
		return 0, nil, nil, false
	}
	salt, err := hex.DecodeString(parts[1])
	if err != nil || len(salt) == 0 {
		return 0, nil, nil, false
	}
	key, err = hex.DecodeString(parts[2])
	if err != nil || len(key) < minKavachOSKey || len(key) > maxKavachOSKey {
		return 0, nil, nil, false
	}
	return iter, salt, key, true
}

// parseIterations accepts plain decimal digits in [1, MaxPBKDF2Iterations].
func parseIterations(s string) (int, bool) {
	if s == "" || len(s) > maxIterationsLen {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPBKDF2Iterations {
		return 0, false
	}
	return n, true
}

// maxBcryptCost bounds bcrypt work from a stored hash: cost 15 is already about two
// seconds, and real exports (Clerk uses 10) stay well below it.
const maxBcryptCost = 15

func isBcrypt(stored string) bool {
	return strings.HasPrefix(stored, "$2a$") || strings.HasPrefix(stored, "$2b$") || strings.HasPrefix(stored, "$2y$")
}
