package storagetest

import (
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var verificationTests = []test{
	{"CreateConsume", testVerificationCreateConsume},
	{"CreateDuplicateTokenHash", testVerificationCreateDuplicate},
	{"ConsumeWrongPurpose", testVerificationConsumeWrongPurpose},
	{"ConsumeExpiredDeletes", testVerificationConsumeExpired},
	{"DeleteByUser", testVerificationDeleteByUser},
	{"DeleteExpired", testVerificationDeleteExpired},
}

func testVerificationCreateConsume(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	v := createVerification(t, s, u, storage.PurposeEmailVerification, now().Add(time.Hour))

	got, err := s.Verifications().Consume(ctx, v.Purpose, v.TokenHash, now())
	must(t, "consume", err)
	wantSame(t, "consume", got, v)
	wantUTC(t, "consume", got.ExpiresAt, got.CreatedAt)

	_, err = s.Verifications().Consume(ctx, v.Purpose, v.TokenHash, now())
	wantErr(t, "consume twice", err, storage.ErrNotFound)
	_, err = s.Verifications().Consume(ctx, v.Purpose, randomHex(32), now())
	wantErr(t, "consume unknown", err, storage.ErrNotFound)
}

func testVerificationCreateDuplicate(t *testing.T, s storage.Store) {
	u := createUser(t, s)
	v := createVerification(t, s, u, storage.PurposePasswordReset, now().Add(time.Hour))
	dup := &storage.Verification{ID: newID("ver"), Purpose: storage.PurposeEmailVerification,
		TokenHash: v.TokenHash, UserID: u.ID, Email: u.Email, ExpiresAt: v.ExpiresAt}
	wantErr(t, "create duplicate token hash", s.Verifications().Create(t.Context(), dup), storage.ErrAlreadyExists)
}

func testVerificationConsumeWrongPurpose(t *testing.T, s storage.Store) {
	ctx := t.Context()
	v := createVerification(t, s, createUser(t, s), storage.PurposePasswordReset, now().Add(time.Hour))
	_, err := s.Verifications().Consume(ctx, storage.PurposeEmailVerification, v.TokenHash, now())
	wantErr(t, "consume with another purpose", err, storage.ErrNotFound)
	// A token presented for the wrong purpose is not used up.
	_, err = s.Verifications().Consume(ctx, v.Purpose, v.TokenHash, now())
	must(t, "consume with its purpose", err)
}

func testVerificationConsumeExpired(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	v := createVerification(t, s, createUser(t, s), storage.PurposePasswordReset, at)
	_, err := s.Verifications().Consume(ctx, v.Purpose, v.TokenHash, at)
	wantErr(t, "consume at expiry", err, storage.ErrNotFound)
	// The expired row is gone, so an earlier clock cannot revive it.
	_, err = s.Verifications().Consume(ctx, v.Purpose, v.TokenHash, at.Add(-time.Hour))
	wantErr(t, "consume after expired consume", err, storage.ErrNotFound)
}

func testVerificationDeleteByUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	exp := now().Add(time.Hour)
	r1 := createVerification(t, s, u, storage.PurposePasswordReset, exp)
	r2 := createVerification(t, s, u, storage.PurposePasswordReset, exp)
	ev := createVerification(t, s, u, storage.PurposeEmailVerification, exp)
	otherReset := createVerification(t, s, other, storage.PurposePasswordReset, exp)

	must(t, "delete by user", s.Verifications().DeleteByUser(ctx, u.ID, storage.PurposePasswordReset))
	for _, v := range []*storage.Verification{r1, r2} {
		_, err := s.Verifications().Consume(ctx, v.Purpose, v.TokenHash, now())
		wantErr(t, "consume deleted", err, storage.ErrNotFound)
	}
	for _, v := range []*storage.Verification{ev, otherReset} {
		_, err := s.Verifications().Consume(ctx, v.Purpose, v.TokenHash, now())
		must(t, "consume kept "+v.Purpose, err)
	}
	must(t, "delete by user with none", s.Verifications().DeleteByUser(ctx, u.ID, storage.PurposePasswordReset))
}

func testVerificationDeleteExpired(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	at := now()
	createVerification(t, s, u, storage.PurposePasswordReset, at.Add(-time.Minute))
	createVerification(t, s, u, storage.PurposeEmailVerification, at)
	live := createVerification(t, s, u, storage.PurposePasswordReset, at.Add(time.Minute))

	n, err := s.Verifications().DeleteExpired(ctx, at)
	must(t, "delete expired", err)
	if n != 2 {
		t.Fatalf("delete expired removed %d, want 2", n)
	}
	_, err = s.Verifications().Consume(ctx, live.Purpose, live.TokenHash, at)
	must(t, "consume live", err)
}
