package agents

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
	"unicode/utf8"
)

func TestArgsDigest(t *testing.T) {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	tests := []struct {
		name, args, canonical string
	}{
		{"keys sorted, space dropped", ` {"b": 1, "a": [true, false, null]} `, `{"a":[true,false,null],"b":1}`},
		{"nested objects sorted", `{"z":{"y":1,"x":2},"a":{}}`, `{"a":{},"z":{"x":2,"y":1}}`},
		{"keys sorted by UTF-8 bytes", `{"é":1,"z":2,"A":3}`, `{"A":3,"z":2,"é":1}`},
		{"escapes normalized", `{"s":"\u0041\/\u00e9\n\u001f\"\\"}`, `{"s":"A/é\n\u001f\"\\"}`},
		{"numbers as written", `[1.0, 1e2, -0]`, `[1.0,1e2,-0]`},
		{"scalar", `"x"`, `"x"`},
		{"invalid JSON digested raw", `{"a":}`, `{"a":}`},
		{"duplicate keys digested raw", `{"a":1,"a":2}`, `{"a":1,"a":2}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := argsDigest([]byte(tc.args)), hash(tc.canonical); got != want {
				t.Fatalf("digest of %s is not that of %s", tc.args, tc.canonical)
			}
		})
	}
	if argsDigest(nil) != "" {
		t.Fatal("empty arguments have a digest")
	}
}

func TestAuditText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"read", 10, "read"},
		{"a\x00b", 10, "a\uFFFDb"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"abcdef", 3, "abc"},
		{"ab€", 4, "ab"}, // never cuts a character in half
	}
	for _, tc := range tests {
		if got := auditText(tc.in, tc.max); got != tc.want || !utf8.ValidString(got) {
			t.Errorf("auditText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestRateCounters(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 23, 59, 30, 0, time.UTC)
	rc := newRateCounters(100)
	day := []RateLimit{{PerDay, 2}}
	for i, want := range []bool{true, true, false} {
		if _, ok := rc.take1("a", "g", day, t0, true); ok != want {
			t.Fatalf("call %d: %v", i, ok)
		}
	}
	// Windows are aligned to UTC: the day ends at midnight, 30 s later.
	if _, ok := rc.take1("a", "g", day, t0.Add(30*time.Second), true); !ok {
		t.Fatal("refused after midnight UTC")
	}
	// A refused call counts against no window.
	both := []RateLimit{{PerMinute, 1}, {PerHour, 2}}
	t1 := t0.Add(time.Hour)
	if _, ok := rc.take1("b", "g", both, t1, true); !ok {
		t.Fatal("first call refused")
	}
	if l, ok := rc.take1("b", "g", both, t1, true); ok || l.Window != PerMinute {
		t.Fatalf("second call in the minute: %v %v", l, ok)
	}
	if _, ok := rc.take1("b", "g", both, t1.Add(time.Minute), true); !ok {
		t.Fatal("refused in the next minute, although the hour had one call left")
	}
	// Memory stays bounded.
	for i := range 1000 {
		rc.take1(fmt.Sprint("agent", i), "g", day, t1, true)
	}
	if n := rc.len(); n > 100 {
		t.Fatalf("%d counters kept, bound 100", n)
	}
}

func TestPrincipalCacheBounded(t *testing.T) {
	c := newPrincipalCache(time.Minute, 50)
	now := time.Now()
	for i := range 500 {
		_, gen := c.get("x")
		c.put(fmt.Sprint(i), &principal{loadedAt: now}, gen)
	}
	if n := len(c.m); n > 50 {
		t.Fatalf("%d entries, bound 50", n)
	}
	// A load that raced an invalidation is not stored.
	_, gen := c.get("late")
	c.invalidate("other")
	c.put("late", &principal{loadedAt: now}, gen)
	if p, _ := c.get("late"); p != nil {
		t.Fatal("a load older than an invalidation was cached")
	}
}

// take1 and giveBack1 are take and giveBack for one agent's grant.
func (rc *rateCounters) take1(agent, grant string, limits []RateLimit, now time.Time, consume bool) (RateLimit, bool) {
	_, l, ok := rc.take([]rateCharge{{agent: agent, grant: grant, limits: limits}}, now, consume)
	return l, ok
}

func (rc *rateCounters) giveBack1(agent, grant string, limits []RateLimit, now time.Time) {
	rc.giveBack([]rateCharge{{agent: agent, grant: grant, limits: limits}}, now)
}
