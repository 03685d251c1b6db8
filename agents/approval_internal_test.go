package agents

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestApprovalArgumentsText(t *testing.T) {
	tests := []struct {
		name, args, want string
		cut              bool
	}{
		{"none", "", "", false},
		{"compacted", ` { "a" : [1, 2] } `, `{"a":[1,2]}`, false},
		{"not JSON kept as text", `{"a":`, `{"a":`, false},
		{"NUL and bad UTF-8 replaced", "x\x00y\xff", "x\uFFFDy\uFFFD", false},
		{"cut at a rune boundary", `"` + strings.Repeat("é", MaxApprovalArgumentsBytes) + `"`,
			`"` + strings.Repeat("é", (MaxApprovalArgumentsBytes-1)/2), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := approvalArguments([]byte(tc.args))
			if string(got) != tc.want || cut != tc.cut || !utf8.Valid(got) {
				t.Fatalf("got %q (cut %v), want %q (cut %v)", got, cut, tc.want, tc.cut)
			}
		})
	}
}

// TestRateGiveBack: a call counted and then refused (its once approval
// was used by a concurrent call) is not counted.
func TestRateGiveBack(t *testing.T) {
	rc := newRateCounters(100)
	limits := []RateLimit{{Window: PerMinute, Max: 2}, {Window: PerHour, Max: 3}}
	now := time.Date(2026, 3, 4, 10, 0, 30, 0, time.UTC)
	for range 5 {
		if _, ok := rc.take1("a", "g", limits, now, true); !ok {
			t.Fatal("take refused")
		}
		rc.giveBack1("a", "g", limits, now)
	}
	for i := range 2 {
		if _, ok := rc.take1("a", "g", limits, now, true); !ok {
			t.Fatalf("call %d refused after give-backs", i)
		}
	}
	if _, ok := rc.take1("a", "g", limits, now, true); ok {
		t.Fatal("third call in a minute allowed")
	}
	if _, ok := rc.take1("a", "g", limits, now.Add(time.Minute), true); !ok {
		t.Fatal("next minute refused")
	}
	if _, ok := rc.take1("a", "g", limits, now.Add(time.Minute), true); ok {
		t.Fatal("fourth call in an hour allowed")
	}
}
