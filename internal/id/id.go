// Package id makes identifiers and bearer secrets. Identifiers are random,
// prefixed by kind so a log line says what it names; secrets are 256-bit
// random strings that are only ever stored as their SHA-256.
package id

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
)

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns prefix + "_" + 26 base32 characters (128 random bits).
func New(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return prefix + "_" + lowerBase32.EncodeToString(b[:])
}

// Secret returns 256 random bits as unpadded base64url (43 characters).
func Secret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is the stored form of a secret: hex SHA-256. Secrets carry 256 bits
// of entropy, so a fast unsalted hash is the right tool (no brute force).
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
