package authz

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
)

// IDTokenSigner is fosite's jwt.Signer over a KeyManager, for ID tokens:
// fosite's OpenID handlers call Generate to sign them and Decode to read
// id_token_hint. Tokens are signed with the current key for Alg (RS256
// when empty; the algorithm most relying parties accept) and typ "JWT".
// Decode accepts tokens signed by any published key of the manager, so an
// id_token_hint signed before a rotation or an Alg change still decodes,
// but only with typ "JWT" or none, so an access token (at+jwt) is never
// taken for an ID token.
type IDTokenSigner struct {
	Keys *KeyManager
	Alg  string
}

var _ jwt.Signer = (*IDTokenSigner)(nil)

func (s *IDTokenSigner) alg() string {
	if s.Alg == "" {
		return AlgRS256
	}
	return s.Alg
}

// idTokenType is the typ of ID tokens (OpenID Connect does not register
// one; "JWT" is what fosite and relying parties expect).
const idTokenType = "JWT"

// Generate signs claims. The header may only repeat typ "JWT": kid and alg
// come from the KeyManager, and any other member would be silently lost,
// so it is refused instead.
func (s *IDTokenSigner) Generate(_ context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if claims == nil || header == nil {
		return "", "", errors.New("authz: id token: claims and header are required")
	}
	for k, v := range header.ToMap() {
		if t, ok := v.(string); k == "typ" && ok && strings.EqualFold(t, idTokenType) {
			continue
		}
		return "", "", fmt.Errorf("authz: id token: header member %q is not supported", k)
	}
	token, err := s.Keys.Sign(s.alg(), idTokenType, map[string]any(claims))
	if err != nil {
		return "", "", fmt.Errorf("authz: id token: %w", err)
	}
	return token, token[strings.LastIndexByte(token, '.')+1:], nil
}

// Decode verifies a token we issued and checks its exp, iat and nbf as
// fosite does, returning fosite's errors: a *jwt.ValidationError whose
// ValidationErrorExpired bit lets fosite accept an expired id_token_hint,
// with the token still returned.
func (s *IDTokenSigner) Decode(_ context.Context, token string) (*jwt.Token, error) {
	k, _, typ, err := s.Keys.verify(token, s.Keys.algs)
	if err != nil {
		bit := jwt.ValidationErrorSignatureInvalid
		if errors.Is(err, errJWSMalformed) {
			bit = jwt.ValidationErrorMalformed
		}
		return &jwt.Token{}, &jwt.ValidationError{Errors: bit, Inner: err}
	}
	if typ != "" && !strings.EqualFold(typ, idTokenType) {
		return &jwt.Token{}, &jwt.ValidationError{Errors: jwt.ValidationErrorMalformed, Inner: fmt.Errorf("%w: typ %q is not an id token", ErrInvalidJWS, typ)}
	}
	// The signature is verified; fosite's parser verifies it again (cheap
	// next to a round trip, and Decode is rare: id_token_hint only) because
	// it is the only way to build a jwt.Token that fosite considers valid.
	// Its go-jose v3 needs Ed25519 keys wrapped in a JWK.
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(*jwt.Token) (any, error) {
		return &josev3.JSONWebKey{Key: k.public}, nil
	})
}

// Validate verifies token like Decode and returns its signature part.
func (s *IDTokenSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// GetSignature returns the signature part of a compact JWS.
func (s *IDTokenSigner) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("authz: id token: header, body and signature must all be set")
	}
	return parts[2], nil
}

// Hash is SHA-256, as fosite's default signer.
func (s *IDTokenSigner) Hash(_ context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// GetSigningMethodLength is the length of Hash's output, as fosite's
// default signer (fosite itself does not call it).
func (s *IDTokenSigner) GetSigningMethodLength(context.Context) int {
	return sha256.Size
}
