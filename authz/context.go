package authz

import "context"

type ctxKey int

const (
	ctxAssertionClient ctxKey = iota
	ctxMatchedRedirect
	ctxAccessAudience
	ctxTokenRequest
)

// accessAudience is the audience the token endpoint narrowed this access
// token to (RFC 8707 §2.2: resource at the token request), or nil for the
// grant's whole audience. The grant itself (refresh token) keeps it all.
func accessAudience(ctx context.Context, granted []string) []string {
	narrow, ok := ctx.Value(ctxAccessAudience).([]string)
	if !ok {
		return granted
	}
	out := make([]string, 0, len(narrow))
	for _, a := range narrow {
		for _, g := range granted {
			if a == g {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// assertionClientID is the client a private_key_jwt assertion names (its
// sub), noted by the token handler before fosite authenticates it, so the
// used jti can be recorded against the client.
func assertionClientID(ctx context.Context) string {
	v, _ := ctx.Value(ctxAssertionClient).(string)
	return v
}
