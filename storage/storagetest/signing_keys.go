package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var signingKeyTests = []test{
	{"CreateList", testSigningKeyCreateList},
	{"CreateStampsCreatedAt", testSigningKeyCreateStampsCreatedAt},
	{"CreateDuplicateKID", testSigningKeyCreateDuplicateKID},
	{"CreateEmptySealedRefused", testSigningKeyCreateEmptySealed},
	{"SealedByteExact", testSigningKeySealedByteExact},
	{"ListExcludesExpiredOldestFirst", testSigningKeyListOrder},
	{"RetireOnce", testSigningKeyRetireOnce},
}

func createSigningKey(t testing.TB, s storage.Store, kid string, createdAt time.Time, expiresAt *time.Time) *storage.SigningKey {
	t.Helper()
	k := &storage.SigningKey{KID: kid, Algorithm: "EdDSA", Sealed: []byte("sealed:" + kid), CreatedAt: createdAt,
		ExpiresAt: expiresAt}
	if err := s.SigningKeys().Create(t.Context(), k); err != nil {
		t.Fatalf("create signing key: %v", err)
	}
	return k
}

// listKey returns the listed key with kid, failing the test if there is none.
func listKey(t *testing.T, s storage.Store, kid string, at time.Time) *storage.SigningKey {
	t.Helper()
	keys, err := s.SigningKeys().List(t.Context(), at)
	must(t, "list", err)
	for i := range keys {
		if keys[i].KID == kid {
			return &keys[i]
		}
	}
	t.Fatalf("key %s not listed", kid)
	return nil
}

func testSigningKeyCreateList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	keys := []*storage.SigningKey{
		{KID: "k1", Algorithm: "EdDSA", Sealed: []byte{1, 2, 3}, CreatedAt: at.Add(-2 * time.Hour)},
		{KID: "k2", Algorithm: "ES256", Sealed: []byte{4, 5, 6}, CreatedAt: at.Add(-time.Hour),
			RetiredAt: new(at.Add(-time.Minute)), ExpiresAt: new(at.Add(time.Hour))},
	}
	for _, k := range keys {
		must(t, "create "+k.KID, s.SigningKeys().Create(ctx, k))
	}
	got, err := s.SigningKeys().List(ctx, at)
	must(t, "list", err)
	wantSame(t, "list", got, []storage.SigningKey{*keys[0], *keys[1]})
	wantUTC(t, "list", got[1].CreatedAt, *got[1].RetiredAt, *got[1].ExpiresAt)
}

func testSigningKeyCreateStampsCreatedAt(t *testing.T, s storage.Store) {
	before := now()
	k := &storage.SigningKey{KID: newID("kid"), Algorithm: "RS256", Sealed: []byte{0}}
	must(t, "create", s.SigningKeys().Create(t.Context(), k))
	if k.CreatedAt.Before(before) {
		t.Fatalf("create left CreatedAt %v, want >= %v", k.CreatedAt, before)
	}
	wantSame(t, "listed", listKey(t, s, k.KID, now()), k)
}

func testSigningKeyCreateDuplicateKID(t *testing.T, s storage.Store) {
	k := createSigningKey(t, s, newID("kid"), now(), nil)
	dup := &storage.SigningKey{KID: k.KID, Algorithm: "ES256", Sealed: []byte{9}}
	wantErr(t, "create duplicate kid", s.SigningKeys().Create(t.Context(), dup), storage.ErrAlreadyExists)
}

func testSigningKeyCreateEmptySealed(t *testing.T, s storage.Store) {
	for _, sealed := range [][]byte{nil, {}} {
		k := &storage.SigningKey{KID: newID("kid"), Algorithm: "EdDSA", Sealed: sealed}
		wantErr(t, "create with empty sealed key", s.SigningKeys().Create(t.Context(), k), storage.ErrInvalidValue)
	}
	keys, err := s.SigningKeys().List(t.Context(), now())
	must(t, "list", err)
	if len(keys) != 0 {
		t.Fatalf("refused creates stored %d keys", len(keys))
	}
}

// testSigningKeySealedByteExact checks that sealed keys are binary, not
// text: NUL and bytes that are not UTF-8 are stored, not refused.
func testSigningKeySealedByteExact(t *testing.T, s storage.Store) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	reversed := bytes.Clone(every)
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	tests := []struct {
		name   string
		sealed []byte
	}{
		{"every byte value", every},
		{"every byte value reversed", reversed},
		{"NUL only", []byte{0}},
		{"invalid UTF-8", []byte{0xff, 0xfe, 0xc0, 0x80}},
		{"large", bytes.Repeat(every, 64)},
	}
	for _, tc := range tests {
		k := &storage.SigningKey{KID: newID("kid"), Algorithm: "EdDSA", Sealed: bytes.Clone(tc.sealed), CreatedAt: now()}
		must(t, "create "+tc.name, s.SigningKeys().Create(t.Context(), k))
		got := listKey(t, s, k.KID, now())
		if !bytes.Equal(got.Sealed, tc.sealed) {
			t.Fatalf("%s: sealed = %x, want %x", tc.name, got.Sealed, tc.sealed)
		}
	}
}

func testSigningKeyListOrder(t *testing.T, s storage.Store) {
	at := now()
	t0 := at.Add(-time.Hour)
	// Created out of order; b and c share a timestamp and sort by kid.
	createSigningKey(t, s, "kid_d", t0.Add(3*time.Second), new(at.Add(time.Millisecond)))
	createSigningKey(t, s, "kid_c", t0.Add(time.Second), nil)
	createSigningKey(t, s, "kid_gone", t0.Add(-time.Second), new(at.Add(-time.Minute)))
	createSigningKey(t, s, "kid_a", t0, new(at.Add(time.Hour)))
	createSigningKey(t, s, "kid_now", t0.Add(2*time.Second), new(at)) // expiring exactly now is expired
	createSigningKey(t, s, "kid_b", t0.Add(time.Second), nil)

	keys, err := s.SigningKeys().List(t.Context(), at)
	must(t, "list", err)
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.KID)
	}
	wantSame(t, "listed kids", kids, []string{"kid_a", "kid_b", "kid_c", "kid_d"})
}

func testSigningKeyRetireOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	k := createSigningKey(t, s, newID("kid"), at.Add(-time.Hour), nil)
	other := createSigningKey(t, s, newID("kid"), at.Add(-time.Minute), nil)

	retiredAt, expiresAt := at, at.Add(24*time.Hour)
	ok, err := s.SigningKeys().Retire(ctx, k.KID, retiredAt, expiresAt)
	must(t, "retire", err)
	if !ok {
		t.Fatal("retire of an active key reported false")
	}
	k.RetiredAt, k.ExpiresAt = &retiredAt, &expiresAt
	wantSame(t, "retired key", listKey(t, s, k.KID, at), k)

	ok, err = s.SigningKeys().Retire(ctx, k.KID, at.Add(time.Hour), at.Add(48*time.Hour))
	must(t, "retire again", err)
	if ok {
		t.Fatal("retire of a retired key reported true")
	}
	wantSame(t, "retired key after second retire", listKey(t, s, k.KID, at), k)
	wantSame(t, "other key untouched", listKey(t, s, other.KID, at), other)

	ok, err = s.SigningKeys().Retire(ctx, "missing", at, at)
	must(t, "retire unknown", err)
	if ok {
		t.Fatal("retire of an unknown key reported true")
	}
}
