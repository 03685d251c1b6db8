package social

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Apple has no fixed client secret: the client secret is a short JWT,
// signed with the team's ES256 key, naming the team (iss), the client
// (sub) and Apple (aud). One is made for every code exchange and lives
// five minutes.

const appleSecretTTL = 5 * time.Minute

func parseAppleKey(pemText string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("the Apple private key is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("the Apple private key: %v", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the Apple private key must be a P-256 (ES256) key")
	}
	return ec, nil
}

// AppleClientSecret makes the client secret of a Sign in with Apple code
// exchange.
func AppleClientSecret(key any, teamID, keyID, clientID string, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), keyID))
	if err != nil {
		return "", fmt.Errorf("apple client secret: %w", err)
	}
	claims := jwt.Claims{
		Issuer: teamID, Subject: clientID, Audience: jwt.Audience{appleIssuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(appleSecretTTL)),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("apple client secret: %w", err)
	}
	return s, nil
}
