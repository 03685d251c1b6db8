package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/kavachos/kavach/internal/id"
)

// AccessTokenType is the JWS typ of access tokens (RFC 9068 §2.1).
const AccessTokenType = "at+jwt"

// AccessClaims are the claims of an access token (RFC 9068 §2.2).
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	JTI       string   `json:"jti"`
	IssuedAt  int64    `json:"iat"`
	ExpiresAt int64    `json:"exp"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	// Act names the agent acting for Subject, with earlier actors nested
	// (RFC 8693 §4.1); set on tokens issued by token exchange.
	Act *Actor `json:"act,omitempty"`
	// MayAct names the one party that may exchange this token to act for
	// its subject (RFC 8693 §4.4). Kavach honours it when present.
	MayAct *Actor `json:"may_act,omitempty"`
	// TrustLevel is the client's agent's trust level when the token was
	// issued (docs/trust.md): untrusted, limited, standard, trusted or
	// elevated. Resource servers may require a level.
	TrustLevel string `json:"trust_level,omitempty"`
}

// Audience is "aud": one string, or an array when there are several.
type Audience []string

func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud must be a string or an array of strings")
	}
	*a = many
	return nil
}

// tokenStrategy issues access tokens as signed JWTs and leaves
// authorization codes and refresh tokens to fosite's HMAC strategy
// (opaque, stored as hashes).
type tokenStrategy struct {
	oauth2.CoreStrategy // HMAC: codes and refresh tokens
	keys                *KeyManager
	issuer              string
	alg                 string
	ttl                 time.Duration
	// trustLevel gives the trust level of an agent, if known.
	trustLevel func(ctx context.Context, agentID string) (string, bool)
	now        func() time.Time
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

func (t *tokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	if i := strings.LastIndexByte(token, '.'); i >= 0 && strings.Count(token, ".") == 2 {
		return token[i+1:]
	}
	return ""
}

func (t *tokenStrategy) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	now := t.now().UTC()
	exp := req.GetSession().GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		// Not every fosite flow sets it (the code flow does not); the
		// stored session must carry it too, for introspection.
		exp = now.Add(t.ttl).Truncate(time.Second)
		req.GetSession().SetExpiresAt(fosite.AccessToken, exp)
	}
	sub := req.GetSession().GetSubject()
	if sub == "" {
		sub = req.GetClient().GetID() // client_credentials: the client is the subject
	}
	c := AccessClaims{
		Issuer: t.issuer, Subject: sub, Audience: Audience(accessAudience(ctx, req.GetGrantedAudience())),
		ClientID: req.GetClient().GetID(), Scope: strings.Join(req.GetGrantedScopes(), " "),
		JTI: id.Secret(), IssuedAt: now.Unix(), ExpiresAt: exp.Unix(), Act: exchangeAct(ctx),
	}
	st := tokenRequestOf(ctx)
	if t.trustLevel != nil && st != nil && st.agent.ID != "" {
		if l, ok := t.trustLevel(ctx, st.agent.ID); ok {
			c.TrustLevel = l
		}
	}
	if s, ok := req.GetSession().(*openid.DefaultSession); ok && s.Claims != nil && !s.Claims.AuthTime.IsZero() {
		c.AuthTime = s.Claims.AuthTime.Unix()
	}
	token, err := t.keys.Sign(t.alg, AccessTokenType, c)
	if err != nil {
		return "", "", fmt.Errorf("sign access token: %w", err)
	}
	if st != nil {
		st.issued = &c // for the token's audit record, written with its row
	}
	return token, t.AccessTokenSignature(ctx, token), nil
}

// ValidateAccessToken checks signature, type and expiry. Whether the token
// was revoked is the stored session's Active flag, which fosite checks.
func (t *tokenStrategy) ValidateAccessToken(_ context.Context, _ fosite.Requester, token string) error {
	_, err := t.parse(token)
	return err
}

// parse verifies a token we issued and returns its claims.
func (t *tokenStrategy) parse(token string) (*AccessClaims, error) {
	if len(token) > 8192 {
		return nil, fosite.ErrInvalidTokenFormat
	}
	payload, typ, err := t.keys.Verify(token, []string{t.alg})
	if err != nil {
		return nil, fosite.ErrTokenSignatureMismatch.WithWrap(err)
	}
	if !strings.EqualFold(typ, AccessTokenType) && !strings.EqualFold(typ, "application/"+AccessTokenType) {
		return nil, fosite.ErrInvalidTokenFormat.WithHint("Not an access token.")
	}
	var c AccessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fosite.ErrInvalidTokenFormat.WithWrap(err)
	}
	if c.Issuer != t.issuer {
		return nil, fosite.ErrTokenClaim.WithHint("Wrong issuer.")
	}
	if !t.now().Before(time.Unix(c.ExpiresAt, 0)) {
		return nil, fosite.ErrTokenExpired
	}
	return &c, nil
}
