package seal

import (
	"bytes"
	"errors"
	"testing"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

func mustNew(t *testing.T, secret, purpose string) *Sealer {
	t.Helper()
	s, err := New(secret, purpose)
	if err != nil {
		t.Fatalf("New(%q): %v", purpose, err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := mustNew(t, testSecret, "signing-keys")
	for _, tc := range []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty", nil, nil},
		{"no additional data", []byte("private key"), nil},
		{"with additional data", []byte("private key"), []byte("kid-1")},
		{"binary", bytes.Repeat([]byte{0, 1, 2, 255}, 1000), []byte{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed := s.Seal(tc.plaintext, tc.ad)
			if len(sealed) != len(tc.plaintext)+Overhead {
				t.Errorf("sealed length %d, want %d", len(sealed), len(tc.plaintext)+Overhead)
			}
			if len(tc.plaintext) > 4 && bytes.Contains(sealed, tc.plaintext) {
				t.Error("sealed value contains the plaintext")
			}
			got, err := s.Open(sealed, tc.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Open = %x, want %x", got, tc.plaintext)
			}
		})
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	s := mustNew(t, testSecret, "p")
	a, b := s.Seal([]byte("same"), nil), s.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal")
	}
}

func TestOpenRefuses(t *testing.T) {
	s := mustNew(t, testSecret, "signing-keys")
	plaintext, ad := []byte("the private key"), []byte("kid-1")
	sealed := s.Seal(plaintext, ad)
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	for _, tc := range []struct {
		name   string
		sealer *Sealer
		sealed []byte
		ad     []byte
	}{
		{"wrong secret", mustNew(t, testSecret+"x", "signing-keys"), sealed, ad},
		{"wrong purpose", mustNew(t, testSecret, "totp-secrets"), sealed, ad},
		{"wrong additional data", s, sealed, []byte("kid-2")},
		{"missing additional data", s, sealed, nil},
		{"tampered version", s, flip(0), ad},
		{"tampered nonce", s, flip(1), ad},
		{"tampered ciphertext", s, flip(Overhead - 16), ad},
		{"tampered tag", s, flip(len(sealed) - 1), ad},
		{"truncated by one byte", s, sealed[:len(sealed)-1], ad},
		{"truncated to overhead", s, sealed[:Overhead], ad},
		{"truncated below overhead", s, sealed[:Overhead-1], ad},
		{"extended", s, append(bytes.Clone(sealed), 0), ad},
		{"empty", s, nil, ad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.sealer.Open(tc.sealed, tc.ad)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
			if got != nil {
				t.Errorf("Open returned plaintext %q with an error", got)
			}
		})
	}
}

func TestSameSecretAndPurposeOpenAcrossSealers(t *testing.T) {
	// Same inputs, same key: a value sealed by one process opens in another.
	a, b := mustNew(t, testSecret, "signing-keys"), mustNew(t, testSecret, "signing-keys")
	got, err := b.Open(a.Seal([]byte("x"), nil), nil)
	if err != nil || string(got) != "x" {
		t.Fatalf("Open across Sealers with the same secret and purpose = %q, %v", got, err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct{ name, secret, purpose string }{
		{"empty secret", "", "signing-keys"},
		{"empty purpose", testSecret, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := New(tc.secret, tc.purpose); err == nil {
				t.Fatalf("New = %v, want an error", s)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	s, err := New(testSecret, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Seal([]byte("seed"), []byte("ad")), []byte("ad"))
	f.Add([]byte{version1}, []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		got, err := s.Open(sealed, ad)
		if err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("Open error %v does not wrap ErrOpen", err)
		}
		if err == nil && !bytes.Equal(got, []byte("seed")) {
			t.Fatalf("Open accepted forged data: %q", got)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	s, _ := New(testSecret, "bench")
	pt, ad := make([]byte, 64), []byte("kid")
	b.ReportAllocs()
	for b.Loop() {
		s.Seal(pt, ad)
	}
}

func BenchmarkOpen(b *testing.B) {
	s, _ := New(testSecret, "bench")
	ad := []byte("kid")
	sealed := s.Seal(make([]byte, 64), ad)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}
