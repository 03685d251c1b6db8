// Package seal encrypts small secrets at rest (signing keys, TOTP secrets,
// provider tokens) under keys derived from the server secret.
//
// Each use names a purpose, and each purpose gets its own AES-256-GCM key
// (HKDF-SHA256 over the server secret with the purpose as info), so data
// sealed for one purpose never opens under another. Callers bind a sealed
// value to its row with additional data (a key id, a user id), so a value
// copied to another row does not open either. The package owns the sealed
// format and nothing else: it does not know where sealed values are stored
// or what they contain, and it never logs.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrOpen means sealed data did not open: a wrong secret or purpose, other
// additional data than it was sealed with, or data that was altered or
// truncated. AES-GCM cannot tell these apart, and callers should not try.
var ErrOpen = errors.New("seal: cannot open sealed data (wrong secret, purpose or additional data, or the data was altered)")

// version1 marks the format version || nonce (12 bytes) || ciphertext || tag
// (16 bytes), with the key derived as in New. A new format or derivation
// gets a new version byte, so values sealed earlier keep opening.
const version1 = 1

// salt separates these keys from anything else derived from the server
// secret; it changes only with a new version.
var salt = []byte("kavach/seal/v1")

// Sealer seals and opens values for one purpose. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer whose key is derived from secret (the server
// secret, whose length policy the configuration enforces) for purpose (a
// fixed name such as "signing-keys"; changing it makes earlier values
// unreadable).
func New(secret, purpose string) (*Sealer, error) {
	if secret == "" {
		return nil, errors.New("seal: secret is empty")
	}
	if purpose == "" {
		return nil, errors.New("seal: purpose is empty")
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), salt, purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	// A random 96-bit nonce per message: safe for far more messages than a
	// purpose will ever seal under one secret (the bound is about 2^32).
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Overhead is how many bytes Seal adds to a plaintext.
const Overhead = 1 + 12 + 16

// Seal encrypts and authenticates plaintext, and authenticates
// additionalData without storing it: Open must be given the same
// additionalData.
func (s *Sealer) Seal(plaintext, additionalData []byte) []byte {
	out := make([]byte, 1, Overhead+len(plaintext))
	out[0] = version1
	return s.aead.Seal(out, nil, plaintext, additionalData)
}

// Open authenticates and decrypts what Seal returned. Every failure wraps
// ErrOpen.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than any sealed value", ErrOpen, len(sealed))
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, sealed[0])
	}
	plaintext, err := s.aead.Open(nil, nil, sealed[1:], additionalData)
	if err != nil {
		return nil, ErrOpen
	}
	return plaintext, nil
}
