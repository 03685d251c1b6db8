package authz

import "context"

type ctxKey int

const (
	ctxAssertionClient ctxKey = iota
	ctxMatchedRedirect
)

// assertionClientID is the client a private_key_jwt assertion names (its
// sub), noted by the token handler before fosite authenticates it, so the
// used jti can be recorded against the client.
func assertionClientID(ctx context.Context) string {
	v, _ := ctx.Value(ctxAssertionClient).(string)
	return v
}
