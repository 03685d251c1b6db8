package mcp

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// fakeVerifier stands in for authz's verifier: it knows a fixed set of
// tokens, and answers others as invalid. It counts the calls it gets.
type fakeVerifier struct {
	tokens map[string]*TokenInfo
	errs   map[string]error
	calls  atomic.Int64
}

func (f *fakeVerifier) VerifyAccessToken(_ context.Context, token string) (*TokenInfo, error) {
	f.calls.Add(1)
	if err, ok := f.errs[token]; ok {
		return nil, err
	}
	if info, ok := f.tokens[token]; ok {
		return info, nil
	}
	return nil, fmt.Errorf("unknown token: %w", ErrInvalidToken)
}

const (
	testResource = "https://auth.example.com/mcp"
	testIssuer   = "https://auth.example.com"
	testPRMURL   = "https://auth.example.com/.well-known/oauth-protected-resource/mcp"
)

var (
	testIssuedAt  = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	testExpiresAt = testIssuedAt.Add(time.Hour)
)

// tokenFor is a verified token for audience with scopes.
func tokenFor(audience []string, scopes ...string) *TokenInfo {
	authTime := testIssuedAt.Add(-time.Minute)
	return &TokenInfo{
		Subject:   "usr_alice",
		ClientID:  "https://client.example.com/metadata.json",
		JTI:       "jti-1",
		Scopes:    scopes,
		Audience:  audience,
		IssuedAt:  testIssuedAt,
		ExpiresAt: testExpiresAt,
		AuthTime:  &authTime,
	}
}

func testConfig(v Verifier) ResourceConfig {
	return ResourceConfig{
		Resource:             testResource,
		AuthorizationServers: []string{testIssuer},
		ScopesSupported:      []string{"mcp:tools", "profile", "offline_access"},
		RequiredScopes:       []string{"mcp:tools", "profile"},
		ResourceName:         "Kavach MCP",
		Verifier:             v,
	}
}
