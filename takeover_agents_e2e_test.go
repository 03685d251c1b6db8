package kavach_test

import (
	"testing"

	"github.com/kavachos/kavach/storage"
)

// TestTakeoverSuspendsSquattersAgents, found in review (it fails if the bug comes back): agents act for their owner. A
// squatter who creates an agent on a pre-registered address keeps its key
// after the owner proves the address (emailed code or password reset):
// the agent goes on being allowed what the account allows, for the
// squatter.
func TestTakeoverSuspendsSquattersAgents(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		for _, via := range []string{"email-otp", "password-reset"} {
			addr := via + "@example.com"
			squatter := e.client()
			squatter.signUp(addr)
			var created struct {
				Token string `json:"token"`
			}
			squatter.do("POST", "/api/auth/agents", map[string]any{
				"name": "Bot", "type": "autonomous",
				"permissions": []map[string]any{{"resource": "mcp:github:*", "actions": []string{"read"}}},
			}).must(t, 201).decode(t, &created)
			if status, dec := e.decide(t, created.Token, "read", "mcp:github:issues"); status != 200 || !dec.Allowed {
				t.Fatalf("%s: before the takeover: %d %+v", via, status, dec)
			}

			switch via {
			case "email-otp":
				e.client().do("POST", "/api/auth/email-otp/send", map[string]any{"email": addr}).must(t, 200)
				e.client().do("POST", "/api/auth/email-otp/verify", map[string]any{"email": addr, "code": e.waitMailCode(addr)}).must(t, 200)
			case "password-reset":
				e.client().do("POST", "/api/auth/password/forgot", map[string]any{"email": addr}).must(t, 200)
				tok := tokenOf(t, e.waitMail(addr, "Reset your password"))
				e.client().do("POST", "/api/auth/password/reset", map[string]any{"token": tok, "newPassword": "owner-chose-this-77"}).must(t, 200)
			}
			if status, dec := e.decide(t, created.Token, "read", "mcp:github:issues"); status == 200 && dec.Allowed {
				t.Errorf("%s: the squatter's agent still acts for the owner's account: %+v", via, dec)
			}
		}
	})
}
