package agents

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC) // a Friday

func allow(id, resource string, actions ...string) Grant {
	return Grant{ID: id, Resource: resource, Actions: actions}
}

func deny(id, resource string, actions ...string) Grant {
	return Grant{ID: id, Resource: resource, Actions: actions, Effect: EffectDeny}
}

func withConstraints(g Grant, c Constraints) Grant {
	g.Constraints = c
	return g
}

func expiring(g Grant, at time.Time) Grant {
	g.ExpiresAt = &at
	return g
}

func req(action, resource string) Request { return Request{Action: action, Resource: resource} }

func TestEvaluatePrecedence(t *testing.T) {
	approval := Constraints{RequireApproval: true}
	tests := []struct {
		name      string
		grants    []Grant
		req       Request
		wantCode  string
		wantGrant string // ID of Outcome.Grant; "" for none
	}{
		{"no grants", nil, req("read", "mcp:github:issues"), CodePermissionDenied, ""},
		{"exact allow", []Grant{allow("g1", "mcp:github:issues", "read")}, req("read", "mcp:github:issues"), CodeAllowed, "g1"},
		{"action not listed", []Grant{allow("g1", "mcp:github:issues", "read")}, req("write", "mcp:github:issues"), CodePermissionDenied, ""},
		{"actions are case-sensitive", []Grant{allow("g1", "mcp:github:issues", "read")}, req("Read", "mcp:github:issues"), CodePermissionDenied, ""},
		{"any action", []Grant{allow("g1", "mcp:github:*", "*")}, req("delete", "mcp:github:repo"), CodeAllowed, "g1"},
		{"pattern does not match", []Grant{allow("g1", "mcp:github:*", "*")}, req("read", "mcp:gitlab:repo"), CodePermissionDenied, ""},

		{"deny wins over allow", []Grant{
			allow("a", "mcp:*", "*"),
			deny("d", "mcp:github:delete_repo", "*"),
		}, req("call", "mcp:github:delete_repo"), CodePermissionDenied, "d"},
		{"deny wins over a more specific allow", []Grant{
			deny("d", "mcp:*", "delete"),
			allow("a", "mcp:github:repo", "delete"),
		}, req("delete", "mcp:github:repo"), CodePermissionDenied, "d"},
		{"deny for another action does not apply", []Grant{
			deny("d", "mcp:*", "delete"),
			allow("a", "mcp:github:repo", "read"),
		}, req("read", "mcp:github:repo"), CodeAllowed, "a"},
		{"most specific deny is reported", []Grant{
			deny("d1", "*", "delete"),
			deny("d2", "mcp:github:*", "delete"),
		}, req("delete", "mcp:github:repo"), CodePermissionDenied, "d2"},

		{"most specific allow decides: its approval applies", []Grant{
			allow("general", "mcp:*", "*"),
			withConstraints(allow("specific", "mcp:github:*", "*"), approval),
		}, req("call", "mcp:github:create_issue"), CodeApprovalRequired, "specific"},
		{"most specific allow decides: the general approval does not", []Grant{
			withConstraints(allow("general", "mcp:*", "*"), approval),
			allow("specific", "mcp:github:*", "*"),
		}, req("call", "mcp:github:create_issue"), CodeAllowed, "specific"},
		{"less specific grant is not a fallback", []Grant{
			allow("general", "mcp:*", "*"),
			withConstraints(allow("specific", "mcp:github:*", "*"), Constraints{IPAllow: []string{"10.0.0.0/8"}}),
		}, req("call", "mcp:github:create_issue"), CodeIPNotAllowed, "specific"},
		{"more literals beat a longer pattern", []Grant{
			allow("lits", "m:*:c", "*"),
			withConstraints(allow("long", "*:github_enterprise_server:*", "*"), approval),
		}, req("call", "m:github_enterprise_server:c"), CodeAllowed, "lits"},
		{"fewer wildcards beat more", []Grant{
			allow("one", "mcp:github:*", "*"),
			withConstraints(allow("two", "mcp:github:*:*", "*"), approval),
		}, req("call", "mcp:github:issues:create"), CodeAllowed, "one"},
		{"longer pattern breaks a tie", []Grant{
			withConstraints(allow("short", "mcp:*:read", "*"), approval),
			allow("long", "mcp:github:*", "*"),
		}, req("call", "mcp:github:read"), CodeAllowed, "long"},
		{"named action beats '*' on the same pattern", []Grant{
			withConstraints(allow("a", "mcp:github:*", "*"), approval),
			allow("b", "mcp:github:*", "read"),
		}, req("read", "mcp:github:issues"), CodeAllowed, "b"},
		{"smaller ID breaks a full tie", []Grant{
			withConstraints(allow("b", "mcp:github:*", "read"), approval),
			allow("a", "mcp:github:*", "read"),
		}, req("read", "mcp:github:issues"), CodeAllowed, "a"},
		{"IDs compare by bytes", []Grant{
			allow("a", "mcp:github:*", "read"),
			withConstraints(allow("B", "mcp:github:*", "read"), approval),
		}, req("read", "mcp:github:issues"), CodeApprovalRequired, "B"},

		{"expired allow is ignored", []Grant{
			expiring(allow("a", "mcp:*", "*"), testNow.Add(-time.Second)),
		}, req("read", "mcp:x"), CodePermissionDenied, ""},
		{"allow expiring exactly now is ignored", []Grant{
			expiring(allow("a", "mcp:*", "*"), testNow),
		}, req("read", "mcp:x"), CodePermissionDenied, ""},
		{"allow expiring later applies", []Grant{
			expiring(allow("a", "mcp:*", "*"), testNow.Add(time.Nanosecond)),
		}, req("read", "mcp:x"), CodeAllowed, "a"},
		{"expired deny is ignored", []Grant{
			allow("a", "mcp:*", "*"),
			expiring(deny("d", "mcp:*", "*"), testNow.Add(-time.Hour)),
		}, req("read", "mcp:x"), CodeAllowed, "a"},
		{"expired specific allow falls to the general one", []Grant{
			allow("general", "mcp:*", "*"),
			expiring(withConstraints(allow("specific", "mcp:github:*", "*"), approval), testNow),
		}, req("call", "mcp:github:x"), CodeAllowed, "general"},

		{"empty action", []Grant{allow("a", "*", "*")}, req("", "mcp:x"), CodeInvalidRequest, ""},
		{"star action", []Grant{allow("a", "*", "*")}, req("*", "mcp:x"), CodeInvalidRequest, ""},
		{"action with a space", []Grant{allow("a", "*", "*")}, req("re ad", "mcp:x"), CodeInvalidRequest, ""},
		{"empty resource", []Grant{allow("a", "*", "*")}, req("read", ""), CodeInvalidRequest, ""},
		{"wildcard resource", []Grant{allow("a", "*", "*")}, req("read", "mcp:*"), CodeInvalidRequest, ""},
		{"resource with empty segment", []Grant{allow("a", "*", "*")}, req("read", "mcp::x"), CodeInvalidRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Evaluate(tt.grants, tt.req, testNow)
			if out.Code != tt.wantCode {
				t.Fatalf("Code = %q (%s), want %q", out.Code, out.Reason, tt.wantCode)
			}
			if out.Allowed != (tt.wantCode == CodeAllowed) {
				t.Errorf("Allowed = %v with code %q", out.Allowed, out.Code)
			}
			if out.RequireApproval != (tt.wantCode == CodeApprovalRequired) {
				t.Errorf("RequireApproval = %v with code %q", out.RequireApproval, out.Code)
			}
			gotID := ""
			if out.Grant != nil {
				gotID = out.Grant.ID
			}
			if gotID != tt.wantGrant {
				t.Errorf("deciding grant = %q, want %q", gotID, tt.wantGrant)
			}
			if out.Reason == "" && !out.Allowed {
				t.Error("a refusal without a reason")
			}
		})
	}
}

func TestEvaluateConstraintsOfTheDecidingGrant(t *testing.T) {
	grants := []Grant{
		withConstraints(allow("g", "mcp:github:*", "create_issue"), Constraints{
			RateLimits:  []RateLimit{{PerMinute, 5}},
			Arguments:   []ArgumentRule{{Pointer: "/repo", Regex: "kavachos/.+", Required: true}},
			TimeWindows: []TimeWindow{{Start: "08:00", End: "20:00", Zone: "Asia/Kolkata"}},
			IPAllow:     []string{"10.0.0.0/8", "2001:db8::/32"},
		}),
	}
	gs, err := CompileGrants(grants)
	if err != nil {
		t.Fatal(err)
	}
	good := Request{
		Action:    "create_issue",
		Resource:  "mcp:github:issues",
		Arguments: json.RawMessage(`{"repo":"kavachos/kavach","title":"x"}`),
		IP:        netip.MustParseAddr("2001:db8::7"),
	}
	at := time.Date(2026, 3, 6, 6, 0, 0, 0, time.UTC) // 11:30 in Kolkata
	tests := []struct {
		name   string
		change func(*Request, *time.Time)
		want   string
	}{
		{"all hold", func(*Request, *time.Time) {}, CodeAllowed},
		{"outside window", func(_ *Request, now *time.Time) { *now = now.Add(12 * time.Hour) }, CodeOutsideTimeWindow},
		{"IP outside", func(r *Request, _ *time.Time) { r.IP = netip.MustParseAddr("192.0.2.1") }, CodeIPNotAllowed},
		{"IPv4-mapped inside", func(r *Request, _ *time.Time) { r.IP = netip.MustParseAddr("::ffff:10.9.9.9") }, CodeAllowed},
		{"no IP", func(r *Request, _ *time.Time) { r.IP = netip.Addr{} }, CodeIPNotAllowed},
		{"argument refused", func(r *Request, _ *time.Time) { r.Arguments = json.RawMessage(`{"repo":"evil/x"}`) }, CodeArgumentNotAllowed},
		{"argument missing", func(r *Request, _ *time.Time) { r.Arguments = nil }, CodeArgumentNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, now := good, at
			tt.change(&r, &now)
			out := gs.Evaluate(r, now)
			if out.Code != tt.want {
				t.Fatalf("Code = %q (%s), want %q", out.Code, out.Reason, tt.want)
			}
			if out.Grant == nil || out.Grant.ID != "g" {
				t.Errorf("Grant = %+v", out.Grant)
			}
			if !slices.Equal(out.RateLimits, []RateLimit{{PerMinute, 5}}) {
				t.Errorf("RateLimits = %v", out.RateLimits)
			}
		})
	}
	out := gs.Evaluate(Request{Action: "create_issue", Resource: "mcp:github:issues", Arguments: good.Arguments, IP: good.IP}, at)
	if code, reason := out.Code, out.Reason; code != CodeAllowed {
		t.Fatalf("%s %s", code, reason)
	}
}

func TestEvaluateArgumentReasonNamesPointer(t *testing.T) {
	grants := []Grant{withConstraints(allow("g", "fs:*", "write"), Constraints{
		Arguments: []ArgumentRule{{Pointer: "/path", Regex: "/tmp/.*"}},
	})}
	out := Evaluate(grants, Request{Action: "write", Resource: "fs:local", Arguments: json.RawMessage(`{"path":"/etc/passwd"}`)}, testNow)
	if out.Code != CodeArgumentNotAllowed || !strings.Contains(out.Reason, `"/path"`) {
		t.Errorf("Outcome = %q %q", out.Code, out.Reason)
	}
}

func TestEvaluateInvalidGrantsFailClosed(t *testing.T) {
	tests := []struct {
		name   string
		grants []Grant
	}{
		{"bad pattern", []Grant{allow("a", "mcp::x", "*")}},
		{"bad effect", []Grant{{ID: "a", Resource: "*", Actions: []string{"*"}, Effect: "permit"}}},
		{"no actions", []Grant{allow("a", "*")}},
		{"star with other actions", []Grant{allow("a", "*", "read", "*")}},
		{"action with whitespace", []Grant{allow("a", "*", "read all")}},
		{"empty action", []Grant{allow("a", "*", "")}},
		{"action with star", []Grant{allow("a", "*", "read*")}},
		{"deny with constraints", []Grant{withConstraints(deny("d", "*", "*"), Constraints{IPAllow: []string{"10.0.0.0/8"}})}},
		{"bad constraints", []Grant{withConstraints(allow("a", "*", "*"), Constraints{IPAllow: []string{"nope"}})}},
		{"an invalid deny beside a valid allow", []Grant{allow("a", "*", "*"), deny("d", "a b", "*")}},
		{"duplicate IDs", []Grant{allow("a", "x", "*"), allow("a", "y", "*")}},
		{"ID too long", []Grant{allow(strings.Repeat("i", MaxGrantIDBytes+1), "x", "*")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CompileGrants(tt.grants); !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("CompileGrants error = %v, want ErrInvalidGrant", err)
			}
			out := Evaluate(tt.grants, req("read", "x"), testNow)
			if out.Allowed || out.Code != CodeInvalidGrant {
				t.Errorf("Evaluate = %+v", out)
			}
		})
	}
}

func TestCompileGrantsAcceptsExactDuplicates(t *testing.T) {
	exp := testNow.Add(time.Hour)
	a := expiring(deny("d", "mcp:*", "delete"), exp)
	b := expiring(deny("d", "mcp:*", "delete"), exp.In(mustZone(t, "Asia/Kolkata")))
	gs, err := CompileGrants([]Grant{a, b, allow("x", "*", "*")})
	if err != nil {
		t.Fatal(err)
	}
	if gs.Len() != 2 {
		t.Errorf("Len = %d, want 2", gs.Len())
	}
}

func TestCompileGrantsCopies(t *testing.T) {
	g := withConstraints(allow("g", "mcp:*", "read"), Constraints{RequireApproval: true})
	grants := []Grant{g}
	gs, err := CompileGrants(grants)
	if err != nil {
		t.Fatal(err)
	}
	grants[0].Actions[0] = "write"
	grants[0].Resource = "other"
	out := gs.Evaluate(req("read", "mcp:x"), testNow)
	if out.Code != CodeApprovalRequired || out.Grant.Actions[0] != "read" {
		t.Errorf("the set changed with its input: %+v", out)
	}
}

// The decision must not depend on the order storage returns grants in.
func TestEvaluateIgnoresInputOrder(t *testing.T) {
	grants := []Grant{
		allow("a1", "*", "read"),
		withConstraints(allow("a2", "mcp:*", "*"), Constraints{RequireApproval: true}),
		allow("a3", "mcp:github:*", "read"),
		withConstraints(allow("a4", "mcp:github:*", "read"), Constraints{IPAllow: []string{"10.0.0.0/8"}}),
		allow("a5", "mcp:*:read", "*"),
		withConstraints(allow("a6", "mcp:github:issues", "*"), Constraints{RequireApproval: true}),
		deny("d1", "mcp:github:admin:*", "*"),
		deny("d2", "mcp:*:secrets", "read"),
		allow("", "mcp:gitlab:*", "read"),
	}
	requests := []Request{
		req("read", "mcp:github:issues"), req("write", "mcp:github:issues"),
		req("read", "mcp:github:pulls"), req("read", "mcp:gitlab:x"),
		req("read", "mcp:x:secrets"), req("read", "mcp:github:admin:keys"),
		req("read", "other"), req("write", "other"), req("read", "mcp:jira:read"),
	}
	want := make([]Outcome, len(requests))
	for i, r := range requests {
		want[i] = Evaluate(grants, r, testNow)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := slices.Clone(grants)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for i, r := range requests {
			got := Evaluate(shuffled, r, testNow)
			if got.Code != want[i].Code || grantID(got.Grant) != grantID(want[i].Grant) {
				t.Fatalf("%+v: order %v gave %s/%s, want %s/%s", r, ids(shuffled),
					got.Code, grantID(got.Grant), want[i].Code, grantID(want[i].Grant))
			}
		}
	}
}

func grantID(g *Grant) string {
	if g == nil {
		return "<nil>"
	}
	return g.ID
}

func ids(gs []Grant) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func TestGrantJSON(t *testing.T) {
	exp := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	g := Grant{
		ID: "g1", Resource: "mcp:github:*", Actions: []string{"read"}, ExpiresAt: &exp,
		Constraints: Constraints{
			RateLimits:  []RateLimit{{PerHour, 100}},
			Arguments:   []ArgumentRule{{Pointer: "/n", Min: ptr(0.0), Enum: []any{1.0, "x", nil}}},
			TimeWindows: []TimeWindow{{Days: []time.Weekday{time.Monday}, Start: "09:00", End: "17:00", Zone: "Europe/Berlin"}},
		},
	}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"g1","resource":"mcp:github:*","actions":["read"],"constraints":{"rateLimits":[{"window":"hour","max":100}],"arguments":[{"pointer":"/n","enum":[1,"x",null],"min":0}],"timeWindows":[{"days":[1],"start":"09:00","end":"17:00","zone":"Europe/Berlin"}]},"expiresAt":"2026-12-31T00:00:00Z"}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	var back Grant
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	if !sameGrant(g, back) {
		t.Errorf("round trip: %+v", back)
	}
	plain, _ := json.Marshal(allow("", "x", "read"))
	if string(plain) != `{"resource":"x","actions":["read"]}` {
		t.Errorf("grant without constraints: %s", plain)
	}
}

func TestOutside(t *testing.T) {
	gs, err := CompileGrants([]Grant{
		{Resource: "mcp:github:*", Actions: []string{"read"}},
		{Resource: "files:reports:*", Actions: []string{"read"}, Effect: EffectDeny},
	})
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[string]bool{
		"mcp:github:issues": false, "mcp:slack:general": false, // a near miss in a granted namespace
		"files:reports:q3": true, // only a deny names it
		"billing:invoices": true, "": true, ":x": true,
	} {
		if got := gs.Outside(res); got != want {
			t.Errorf("Outside(%q) = %v, want %v", res, got, want)
		}
	}
	all, _ := CompileGrants([]Grant{{Resource: "*", Actions: []string{"read"}}})
	if all.Outside("anything:at:all") {
		t.Error("a * grant covers every namespace")
	}
}
