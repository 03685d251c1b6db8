package storagetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var challengeTests = []test{
	{"PutGetConsume", testChallengePutGetConsume},
	{"PutReplaces", testChallengePutReplaces},
	{"AttemptLimitUnderRace", testChallengeAttemptRace},
	{"ConsumeOnceUnderRace", testChallengeConsumeRace},
	{"ExpiredIsGone", testChallengeExpired},
	{"DeleteByUserAndExpired", testChallengeDelete},
}

var twoFactorTests = []test{
	{"PutEnableUseStep", testTwoFactorLifecycle},
	{"BackupCodesSingleUse", testBackupCodes},
}

var passkeyTests = []test{
	{"Lifecycle", testPasskeyLifecycle},
}

func putChallenge(t testing.TB, s storage.Store, purpose, userID string, expires time.Time) *storage.Challenge {
	t.Helper()
	c := &storage.Challenge{ID: newID("chl"), Purpose: purpose, Lookup: randomHex(32), UserID: userID,
		SecretHash: randomHex(32), Data: []byte(`{"k":"v"}`), ExpiresAt: expires, CreatedAt: now()}
	must(t, "put challenge", s.Challenges().Put(t.Context(), c))
	return c
}

func testChallengePutGetConsume(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	c := putChallenge(t, s, storage.PurposeTwoFactor, u.ID, now().Add(time.Minute))
	got, err := s.Challenges().Get(ctx, c.Purpose, c.Lookup, now())
	must(t, "get", err)
	wantSame(t, "get", got, c)
	wantUTC(t, "get", got.ExpiresAt, got.CreatedAt)
	// Without a user.
	anon := putChallenge(t, s, storage.PurposeOAuthState, "", now().Add(time.Minute))
	got, err = s.Challenges().Get(ctx, anon.Purpose, anon.Lookup, now())
	must(t, "get without user", err)
	wantSame(t, "get without user", got, anon)

	_, err = s.Challenges().Get(ctx, storage.PurposeMagicLink, c.Lookup, now())
	wantErr(t, "get with another purpose", err, storage.ErrNotFound)
	got, err = s.Challenges().Consume(ctx, c.Purpose, c.Lookup, now())
	must(t, "consume", err)
	wantSame(t, "consume", got, c)
	_, err = s.Challenges().Consume(ctx, c.Purpose, c.Lookup, now())
	wantErr(t, "consume twice", err, storage.ErrNotFound)
}

func testChallengePutReplaces(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := putChallenge(t, s, storage.PurposeEmailOTP, "", now().Add(time.Minute))
	_, err := s.Challenges().Attempt(ctx, c.Purpose, c.Lookup, 3, now())
	must(t, "attempt", err)
	next := *c
	next.ID, next.SecretHash, next.Attempts = newID("chl"), randomHex(32), 0
	must(t, "put again", s.Challenges().Put(ctx, &next))
	got, err := s.Challenges().Get(ctx, c.Purpose, c.Lookup, now())
	must(t, "get", err)
	wantSame(t, "replaced", got, &next)
}

func testChallengeAttemptRace(t *testing.T, s storage.Store) {
	c := putChallenge(t, s, storage.PurposeEmailOTP, "", now().Add(time.Minute))
	const max, callers = 3, 12
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if _, err := s.Challenges().Attempt(t.Context(), c.Purpose, c.Lookup, max, now()); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != max {
		t.Fatalf("%d concurrent attempts succeeded, want %d", ok.Load(), max)
	}
	got, err := s.Challenges().Get(t.Context(), c.Purpose, c.Lookup, now())
	must(t, "get", err)
	if got.Attempts != max {
		t.Fatalf("attempts = %d, want %d", got.Attempts, max)
	}
}

func testChallengeConsumeRace(t *testing.T, s storage.Store) {
	c := putChallenge(t, s, storage.PurposeMagicLink, "", now().Add(time.Minute))
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.Challenges().Consume(t.Context(), c.Purpose, c.Lookup, now()); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d concurrent consumes succeeded, want 1", ok.Load())
	}
}

func testChallengeExpired(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	c := putChallenge(t, s, storage.PurposeEmailOTP, "", at)
	_, err := s.Challenges().Get(ctx, c.Purpose, c.Lookup, at)
	wantErr(t, "get at expiry", err, storage.ErrNotFound)
	_, err = s.Challenges().Attempt(ctx, c.Purpose, c.Lookup, 5, at)
	wantErr(t, "attempt at expiry", err, storage.ErrNotFound)
	_, err = s.Challenges().Consume(ctx, c.Purpose, c.Lookup, at)
	wantErr(t, "consume at expiry", err, storage.ErrNotFound)
	_, err = s.Challenges().Get(ctx, c.Purpose, c.Lookup, at.Add(-time.Hour))
	wantErr(t, "expired row deleted by consume", err, storage.ErrNotFound)
}

func testChallengeDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := putChallenge(t, s, storage.PurposeTrustedDevice, u.ID, now().Add(time.Hour))
	b := putChallenge(t, s, storage.PurposeTwoFactor, u.ID, now().Add(time.Hour))
	old := putChallenge(t, s, storage.PurposeOAuthState, "", now().Add(-time.Minute))
	must(t, "delete by user", s.Challenges().DeleteByUser(ctx, u.ID, storage.PurposeTrustedDevice))
	_, err := s.Challenges().Get(ctx, a.Purpose, a.Lookup, now())
	wantErr(t, "deleted", err, storage.ErrNotFound)
	_, err = s.Challenges().Get(ctx, b.Purpose, b.Lookup, now())
	must(t, "other purpose kept", err)
	n, err := s.Challenges().DeleteExpired(ctx, now())
	must(t, "delete expired", err)
	if n != 1 {
		t.Fatalf("deleted %d expired, want 1 (%s)", n, old.ID)
	}
	// Deleting the user deletes its rows.
	must(t, "delete user", s.Users().Delete(ctx, u.ID))
	_, err = s.Challenges().Get(ctx, b.Purpose, b.Lookup, now())
	wantErr(t, "cascade", err, storage.ErrNotFound)
}

func testTwoFactorLifecycle(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	_, err := s.TwoFactors().Get(ctx, u.ID)
	wantErr(t, "get none", err, storage.ErrNotFound)
	tf := &storage.TwoFactor{UserID: u.ID, Secret: []byte{1, 2, 3, 0, 255}, CreatedAt: now(), UpdatedAt: now()}
	must(t, "put", s.TwoFactors().Put(ctx, tf))
	got, err := s.TwoFactors().Get(ctx, u.ID)
	must(t, "get", err)
	wantSame(t, "get", got, tf)
	// A pending enrolment may be replaced.
	tf2 := &storage.TwoFactor{UserID: u.ID, Secret: []byte{9, 9}, CreatedAt: now(), UpdatedAt: now()}
	must(t, "put again", s.TwoFactors().Put(ctx, tf2))
	must(t, "enable", s.TwoFactors().Enable(ctx, u.ID, 100, now()))
	wantErr(t, "enable twice", s.TwoFactors().Enable(ctx, u.ID, 101, now()), storage.ErrNotFound)
	wantErr(t, "put over enabled", s.TwoFactors().Put(ctx, &storage.TwoFactor{UserID: u.ID, Secret: []byte{1}}), storage.ErrAlreadyExists)
	got, err = s.TwoFactors().Get(ctx, u.ID)
	must(t, "get enabled", err)
	if !got.Enabled || got.LastStep != 100 || string(got.Secret) != string(tf2.Secret) {
		t.Fatalf("after enable: %+v", got)
	}
	for _, c := range []struct {
		step int64
		ok   bool
	}{{100, false}, {99, false}, {101, true}, {101, false}, {105, true}} {
		ok, err := s.TwoFactors().UseStep(ctx, u.ID, c.step, now())
		must(t, "use step", err)
		if ok != c.ok {
			t.Fatalf("UseStep(%d) = %v, want %v", c.step, ok, c.ok)
		}
	}
	must(t, "delete", s.TwoFactors().Delete(ctx, u.ID))
	_, err = s.TwoFactors().Get(ctx, u.ID)
	wantErr(t, "get deleted", err, storage.ErrNotFound)
}

func testBackupCodes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	codes := []string{randomHex(16), randomHex(16), randomHex(16)}
	must(t, "replace", s.TwoFactors().ReplaceBackupCodes(ctx, u.ID, codes, now()))
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if used, err := s.TwoFactors().UseBackupCode(ctx, u.ID, codes[0], now()); err == nil && used {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("a backup code was used %d times concurrently, want 1", ok.Load())
	}
	n, err := s.TwoFactors().CountBackupCodes(ctx, u.ID)
	must(t, "count", err)
	if n != 2 {
		t.Fatalf("unused codes = %d, want 2", n)
	}
	other := createUser(t, s)
	if used, _ := s.TwoFactors().UseBackupCode(ctx, other.ID, codes[1], now()); used {
		t.Fatal("another user's code was accepted")
	}
	must(t, "replace again", s.TwoFactors().ReplaceBackupCodes(ctx, u.ID, []string{randomHex(16)}, now()))
	if used, _ := s.TwoFactors().UseBackupCode(ctx, u.ID, codes[1], now()); used {
		t.Fatal("a replaced code was accepted")
	}
	must(t, "delete", s.TwoFactors().Delete(ctx, u.ID))
	if n, _ := s.TwoFactors().CountBackupCodes(ctx, u.ID); n != 0 {
		t.Fatalf("codes after delete = %d", n)
	}
}

func testPasskeyLifecycle(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	p := &storage.Passkey{ID: newID("pk"), UserID: u.ID, CredentialID: randomHex(16), Name: "laptop",
		Credential: []byte(`{"id":"x"}`), SignCount: 4000000000, CreatedAt: now()}
	must(t, "create", s.Passkeys().Create(ctx, p))
	dup := *p
	dup.ID = newID("pk")
	wantErr(t, "duplicate credential", s.Passkeys().Create(ctx, &dup), storage.ErrAlreadyExists)
	got, err := s.Passkeys().GetByCredentialID(ctx, p.CredentialID)
	must(t, "get by credential", err)
	wantSame(t, "get by credential", got, p)
	other := createUser(t, s)
	wantErr(t, "rename another's", s.Passkeys().Rename(ctx, other.ID, p.ID, "mine"), storage.ErrNotFound)
	wantErr(t, "delete another's", s.Passkeys().Delete(ctx, other.ID, p.ID), storage.ErrNotFound)
	must(t, "rename", s.Passkeys().Rename(ctx, u.ID, p.ID, "phone"))
	at := now()
	must(t, "record use", s.Passkeys().RecordUse(ctx, p.ID, 7, true, []byte(`{"id":"y"}`), at))
	list, err := s.Passkeys().ListByUser(ctx, u.ID)
	must(t, "list", err)
	want := *p
	want.Name, want.SignCount, want.CloneWarning, want.Credential, want.LastUsedAt = "phone", 7, true, []byte(`{"id":"y"}`), &at
	wantSame(t, "list", list, []storage.Passkey{want})
	must(t, "delete", s.Passkeys().Delete(ctx, u.ID, p.ID))
	_, err = s.Passkeys().Get(ctx, p.ID)
	wantErr(t, "get deleted", err, storage.ErrNotFound)
}

var banTests = []test{
	{"Lifecycle", testBanLifecycle},
}

func testBanLifecycle(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	_, err := s.Bans().Get(ctx, u.ID)
	wantErr(t, "get none", err, storage.ErrNotFound)
	until := now().Add(time.Hour)
	b := &storage.Ban{UserID: u.ID, Reason: "spam", Until: &until, BannedBy: "cli", CreatedAt: now()}
	must(t, "put", s.Bans().Put(ctx, b))
	got, err := s.Bans().Get(ctx, u.ID)
	must(t, "get", err)
	wantSame(t, "get", got, b)
	forever := &storage.Ban{UserID: u.ID, Reason: "fraud", BannedBy: "usr_admin", CreatedAt: now()}
	must(t, "put again", s.Bans().Put(ctx, forever))
	got, err = s.Bans().Get(ctx, u.ID)
	must(t, "get again", err)
	wantSame(t, "replaced", got, forever)
	must(t, "delete", s.Bans().Delete(ctx, u.ID))
	wantErr(t, "delete twice", s.Bans().Delete(ctx, u.ID), storage.ErrNotFound)
}
