package agents

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// benchGrants returns ten allow grants of equal specificity, so precedence
// order is input order, of which only the seventh matches benchRequest.
// The seventh carries constraints when constrained is set.
func benchGrants(constrained, withArgs bool) []Grant {
	grants := make([]Grant, 10)
	for i := range grants {
		grants[i] = Grant{
			ID:       fmt.Sprintf("g%02d", i+1),
			Resource: fmt.Sprintf("mcp:service%d:*", i),
			Actions:  []string{"read", "create_issue", "comment"},
		}
	}
	if constrained {
		grants[6].Constraints = Constraints{
			RateLimits:  []RateLimit{{PerMinute, 60}},
			TimeWindows: []TimeWindow{{Start: "08:00", End: "20:00", Zone: "America/New_York"}},
			IPAllow:     []string{"10.0.0.0/8", "2001:db8::/32"},
		}
	}
	if withArgs {
		grants[6].Constraints.Arguments = []ArgumentRule{
			{Pointer: "/repo", Regex: "kavachos/[a-z-]+", Required: true},
			{Pointer: "/labels/0", Enum: []any{"bug", "feature"}},
		}
	}
	return grants
}

var benchRequest = Request{
	Action:    "create_issue",
	Resource:  "mcp:service6:issues",
	Arguments: json.RawMessage(`{"repo":"kavachos/kavach","title":"Evaluate is slow","labels":["bug"]}`),
	IP:        netip.MustParseAddr("10.20.30.40"),
}

var benchNow = time.Date(2026, 3, 6, 15, 0, 0, 0, time.UTC) // 10:00 in New York

func BenchmarkEvaluate(b *testing.B) {
	cases := []struct {
		name        string
		grants      []Grant
		req         Request
		want        string
		constrained bool
	}{
		{"match7th", benchGrants(false, false), benchRequest, CodeAllowed, false},
		{"match7th-time-ip", benchGrants(true, false), benchRequest, CodeAllowed, true},
		{"match7th-time-ip-args", benchGrants(true, true), benchRequest, CodeAllowed, true},
		{"no-match", benchGrants(false, false), Request{Action: "read", Resource: "mcp:other:x"}, CodePermissionDenied, false},
	}
	for _, c := range cases {
		gs, err := CompileGrants(c.grants)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			if out := gs.Evaluate(c.req, benchNow); out.Code != c.want || (c.want == CodeAllowed && out.Grant.ID != "g07") {
				b.Fatalf("Evaluate = %+v", out)
			}
			b.ReportAllocs()
			for b.Loop() {
				gs.Evaluate(c.req, benchNow)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, c := range []struct {
		name   string
		grants []Grant
	}{
		{"10-plain", benchGrants(false, false)},
		{"10-constrained", benchGrants(true, true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CompileGrants(c.grants); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
