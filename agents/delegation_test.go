package agents

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIntersectCoverage(t *testing.T) {
	tests := []struct {
		name          string
		parent, child Grant
		want          bool
	}{
		{"same grant", allow("p", "mcp:github:*", "read"), allow("c", "mcp:github:*", "read"), true},
		{"narrower pattern", allow("p", "mcp:*", "read"), allow("c", "mcp:github:issues", "read"), true},
		{"fewer actions", allow("p", "mcp:*", "read", "write"), allow("c", "mcp:x", "write"), true},
		{"any action covers named", allow("p", "mcp:*", "*"), allow("c", "mcp:x", "read", "write"), true},
		{"any action covers any", allow("p", "*", "*"), allow("c", "*", "*"), true},

		{"wider pattern", allow("p", "mcp:github:*", "read"), allow("c", "mcp:*", "read"), false},
		{"parent prefix itself", allow("p", "mcp:github:*", "read"), allow("c", "mcp:github", "read"), false},
		{"sibling pattern", allow("p", "mcp:github:*", "read"), allow("c", "mcp:gitlab:*", "read"), false},
		{"wildcard where parent has a literal", allow("p", "mcp:github:read", "read"), allow("c", "mcp:*:read", "read"), false},
		{"extra action", allow("p", "mcp:*", "read"), allow("c", "mcp:x", "read", "write"), false},
		{"any action under named", allow("p", "mcp:*", "read", "write"), allow("c", "mcp:x", "*"), false},
		{"parent deny covers nothing", deny("p", "*", "*"), allow("c", "mcp:x", "read"), false},
		{"invalid parent", allow("p", "a::b", "*"), allow("c", "a", "read"), false},
		{"invalid child", allow("p", "*", "*"), allow("c", "a b", "read"), false},
		{"child deny is always fine", allow("p", "mcp:github:*", "read"), deny("c", "*", "*"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, ok := Intersect(tt.parent, tt.child)
			if ok != tt.want {
				t.Fatalf("Intersect ok = %v, want %v", ok, tt.want)
			}
			if ok && (g.ID != tt.child.ID || g.Resource != tt.child.Resource || !slices.Equal(g.Actions, tt.child.Actions)) {
				t.Errorf("Intersect changed the child's identity: %+v", g)
			}
		})
	}
}

func TestIntersectConstraints(t *testing.T) {
	early := testNow.Add(time.Hour)
	late := testNow.Add(48 * time.Hour)
	office := []TimeWindow{{Start: "09:00", End: "17:00", Zone: "Europe/Berlin"}}
	nights := []TimeWindow{{Start: "22:00", End: "06:00", Zone: "America/New_York"}}
	tests := []struct {
		name          string
		parent, child Grant
		want          Grant
	}{
		{"nothing to carry", allow("p", "*", "*"), allow("c", "x", "read"), allow("c", "x", "read")},
		{
			"rate limits: smaller per window, both windows kept",
			withConstraints(allow("p", "*", "*"), Constraints{RateLimits: []RateLimit{{PerHour, 100}, {PerMinute, 10}}}),
			withConstraints(allow("c", "x", "read"), Constraints{RateLimits: []RateLimit{{PerHour, 500}, {PerDay, 1000}}}),
			withConstraints(allow("c", "x", "read"), Constraints{RateLimits: []RateLimit{{PerMinute, 10}, {PerHour, 100}, {PerDay, 1000}}}),
		},
		{
			"argument rules: union without duplicates",
			withConstraints(allow("p", "*", "*"), Constraints{Arguments: []ArgumentRule{
				{Pointer: "/repo", Regex: "kavachos/.*"}, {Pointer: "/n", Max: ptr(10.0)},
			}}),
			withConstraints(allow("c", "x", "read"), Constraints{Arguments: []ArgumentRule{
				{Pointer: "/n", Max: ptr(10.0)}, {Pointer: "/n", Min: ptr(1.0)},
			}}),
			withConstraints(allow("c", "x", "read"), Constraints{Arguments: []ArgumentRule{
				{Pointer: "/n", Max: ptr(10.0)}, {Pointer: "/n", Min: ptr(1.0)}, {Pointer: "/repo", Regex: "kavachos/.*"},
			}}),
		},
		{
			"approval: either side",
			withConstraints(allow("p", "*", "*"), Constraints{RequireApproval: true}),
			allow("c", "x", "read"),
			withConstraints(allow("c", "x", "read"), Constraints{RequireApproval: true}),
		},
		{
			"expiry: the earlier, parent side",
			expiring(allow("p", "*", "*"), early),
			expiring(allow("c", "x", "read"), late),
			expiring(allow("c", "x", "read"), early),
		},
		{
			"expiry: the earlier, child side",
			expiring(allow("p", "*", "*"), late),
			expiring(allow("c", "x", "read"), early),
			expiring(allow("c", "x", "read"), early),
		},
		{
			"expiry: only the parent has one",
			expiring(allow("p", "*", "*"), early),
			allow("c", "x", "read"),
			expiring(allow("c", "x", "read"), early),
		},
		{
			"time windows: child without takes the parent's",
			withConstraints(allow("p", "*", "*"), Constraints{TimeWindows: office}),
			allow("c", "x", "read"),
			withConstraints(allow("c", "x", "read"), Constraints{TimeWindows: office}),
		},
		{
			"time windows: equal ones are not repeated",
			withConstraints(allow("p", "*", "*"), Constraints{TimeWindows: office}),
			withConstraints(allow("c", "x", "read"), Constraints{TimeWindows: office}),
			withConstraints(allow("c", "x", "read"), Constraints{TimeWindows: office}),
		},
		{
			"time windows: different ones must both hold",
			withConstraints(allow("p", "*", "*"), Constraints{TimeWindows: office}),
			withConstraints(allow("c", "x", "read"), Constraints{TimeWindows: nights}),
			withConstraints(allow("c", "x", "read"), Constraints{TimeWindows: nights, Inherited: []Condition{{TimeWindows: office}}}),
		},
		{
			"IP allowlists: child without takes the parent's",
			withConstraints(allow("p", "*", "*"), Constraints{IPAllow: []string{"10.0.0.0/8"}}),
			allow("c", "x", "read"),
			withConstraints(allow("c", "x", "read"), Constraints{IPAllow: []string{"10.0.0.0/8"}}),
		},
		{
			"IP allowlists: different ones must both hold",
			withConstraints(allow("p", "*", "*"), Constraints{IPAllow: []string{"10.0.0.0/8"}}),
			withConstraints(allow("c", "x", "read"), Constraints{IPAllow: []string{"10.1.0.0/16", "2001:db8::/32"}}),
			withConstraints(allow("c", "x", "read"), Constraints{
				IPAllow:   []string{"10.1.0.0/16", "2001:db8::/32"},
				Inherited: []Condition{{IPAllow: []string{"10.0.0.0/8"}}},
			}),
		},
		{
			"inherited conditions: union without duplicates",
			withConstraints(allow("p", "*", "*"), Constraints{Inherited: []Condition{
				{IPAllow: []string{"10.0.0.0/8"}}, {TimeWindows: office},
			}}),
			withConstraints(allow("c", "x", "read"), Constraints{Inherited: []Condition{{IPAllow: []string{"10.0.0.0/8"}}}}),
			withConstraints(allow("c", "x", "read"), Constraints{Inherited: []Condition{
				{IPAllow: []string{"10.0.0.0/8"}}, {TimeWindows: office},
			}}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Intersect(tt.parent, tt.child)
			if !ok {
				t.Fatal("Intersect refused")
			}
			if !sameGrant(got, tt.want) {
				t.Errorf("Intersect =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestIntersectDoesNotAlias(t *testing.T) {
	parent := withConstraints(allow("p", "*", "*"), Constraints{IPAllow: []string{"10.0.0.0/8"}, Arguments: []ArgumentRule{{Pointer: "/a", Max: ptr(1.0)}}})
	child := allow("c", "x", "read")
	got, _ := Intersect(parent, child)
	parent.Constraints.IPAllow[0] = "0.0.0.0/0"
	*parent.Constraints.Arguments[0].Max = 1e9
	if got.Constraints.IPAllow[0] != "10.0.0.0/8" || *got.Constraints.Arguments[0].Max != 1 {
		t.Errorf("the result shares memory with the parent: %+v", got.Constraints)
	}
}

func TestIntersectNeverWidens(t *testing.T) {
	// Whatever the child may do after Intersect, both parent and child
	// alone would have allowed.
	parent := withConstraints(allow("p", "mcp:*", "*"), Constraints{
		TimeWindows: []TimeWindow{{Start: "09:00", End: "17:00", Zone: "Asia/Kolkata"}},
		IPAllow:     []string{"10.0.0.0/8"},
		Arguments:   []ArgumentRule{{Pointer: "/n", Max: ptr(10.0)}},
	})
	child := withConstraints(allow("c", "mcp:github:*", "read"), Constraints{
		TimeWindows: []TimeWindow{{Start: "22:00", End: "12:00", Zone: "America/New_York"}},
		IPAllow:     []string{"10.1.0.0/16", "192.0.2.0/24"},
		Arguments:   []ArgumentRule{{Pointer: "/n", Min: ptr(2.0)}},
	})
	narrowed, ok := Intersect(parent, child)
	if !ok {
		t.Fatal("refused")
	}
	ips := []string{"10.1.2.3", "10.2.0.1", "192.0.2.1", "::ffff:10.1.0.9"}
	args := []string{`{"n":1}`, `{"n":5}`, `{"n":11}`, `{}`}
	for h := range 48 {
		now := testNow.Add(time.Duration(h) * 30 * time.Minute)
		for _, ip := range ips {
			for _, a := range args {
				r := Request{Action: "read", Resource: "mcp:github:x", Arguments: []byte(a), IP: netip.MustParseAddr(ip)}
				got := Evaluate([]Grant{narrowed}, r, now)
				p := Evaluate([]Grant{parent}, r, now)
				c := Evaluate([]Grant{child}, r, now)
				if got.Allowed != (p.Allowed && c.Allowed) {
					t.Fatalf("%v %s %s: narrowed %s, parent %s, child %s", now, ip, a, got.Code, p.Code, c.Code)
				}
			}
		}
	}
}

func TestSubset(t *testing.T) {
	parent := []Grant{
		allow("p1", "mcp:github:*", "read", "write"),
		allow("p2", "mcp:jira:*", "*"),
		deny("p3", "mcp:github:admin:*", "*"),
		expiring(allow("p4", "fs:*", "read"), testNow.Add(time.Hour)),
	}
	tests := []struct {
		name    string
		child   []Grant
		wantErr string // fragment; "" for no error
	}{
		{"empty", nil, ""},
		{"one covered", []Grant{allow("c1", "mcp:github:issues", "read")}, ""},
		{"covered by different parents", []Grant{allow("c1", "mcp:github:*", "write"), allow("c2", "mcp:jira:x:y", "delete")}, ""},
		{"deny is always fine", []Grant{deny("c1", "*", "*")}, ""},
		{"partly denied is fine", []Grant{allow("c1", "mcp:github:*", "read")}, ""},
		{"not covered", []Grant{allow("c1", "mcp:slack:*", "read")}, `grant "c1"`},
		{"action not covered", []Grant{allow("c1", "mcp:github:x", "delete")}, "not covered"},
		{"any action not covered", []Grant{allow("c1", "mcp:github:x", "*")}, "not covered"},
		{"wholly denied", []Grant{allow("c1", "mcp:github:admin:keys", "read")}, `wholly denied by grant "p3"`},
		{"every offender is named", []Grant{allow("c1", "a", "read"), allow("c2", "mcp:github:x", "read"), allow("c3", "b", "read")}, `"c3"`},
		{"invalid child", []Grant{allow("c1", "a b", "read")}, "invalid grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Subset(tt.child, parent)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Subset = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Subset = %v, want an error containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrNotSubset) && !errors.Is(err, ErrInvalidGrant) {
				t.Errorf("error wraps neither ErrNotSubset nor ErrInvalidGrant: %v", err)
			}
		})
	}
	if err := Subset([]Grant{allow("c", "x", "read")}, []Grant{allow("p", "a::b", "*")}); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("invalid parent grants: %v", err)
	}
}

func TestDelegatedGrants(t *testing.T) {
	approval := Constraints{RequireApproval: true}
	parent := []Grant{
		allow("p-mcp", "mcp:*", "*"),
		withConstraints(allow("p-github", "mcp:github:*", "*"), approval),
		withConstraints(allow("p-issues", "mcp:github:issues", "read"), Constraints{IPAllow: []string{"10.0.0.0/8"}}),
		deny("p-admin", "mcp:github:admin:*", "*"),
		deny("p-fs", "fs:*", "*"),
	}
	got, err := DelegatedGrants(parent, []Grant{allow("c-mcp", "mcp:*", "read"), deny("c-no-jira", "mcp:jira:*", "write")})
	if err != nil {
		t.Fatal(err)
	}
	// c-mcp is covered by p-mcp, but p-github and p-issues decide parts of
	// it for the parent, so their constraints come along; p-admin overlaps
	// and is copied; p-fs does not overlap and is not.
	want := []Grant{
		withConstraints(allow("c-mcp", "mcp:*", "read"), Constraints{RequireApproval: true, IPAllow: []string{"10.0.0.0/8"}}),
		deny("c-no-jira", "mcp:jira:*", "write"),
		deny("p-admin", "mcp:github:admin:*", "*"),
	}
	if len(got) != len(want) {
		t.Fatalf("DelegatedGrants = %+v", got)
	}
	for i := range want {
		if !sameGrant(got[i], want[i]) {
			t.Errorf("grant %d =\n %+v\nwant\n %+v", i, got[i], want[i])
		}
	}

	// A narrower request does not pick up constraints it cannot reach.
	got, err = DelegatedGrants(parent, []Grant{allow("c-slack", "mcp:slack:*", "read")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Constraints.IsZero() {
		t.Errorf("mcp:slack:* picked up constraints: %+v", got)
	}

	if _, err := DelegatedGrants(parent, []Grant{allow("c", "fs:x", "read")}); !errors.Is(err, ErrNotSubset) {
		t.Errorf("uncovered request: %v", err)
	}
}

// Whatever a child may do with its delegated grants, its parent may do:
// the child's allow implies the parent's, with every constraint the
// parent's deciding grant has.
func TestDelegatedGrantsNeverWiden(t *testing.T) {
	parent := []Grant{
		allow("p1", "mcp:*", "*"),
		withConstraints(allow("p2", "mcp:github:*", "*"), Constraints{RequireApproval: true}),
		withConstraints(allow("p3", "mcp:github:issues:*", "read"), Constraints{
			TimeWindows: []TimeWindow{{Start: "09:00", End: "17:00", Zone: "Asia/Kolkata"}},
		}),
		withConstraints(allow("p4", "mcp:*:read", "read"), Constraints{IPAllow: []string{"10.0.0.0/8"}}),
		allow("p5", "mcp:*:*:*", "read"),
		deny("p6", "mcp:github:issues:secret", "*"),
		deny("p7", "mcp:*:*", "delete"),
	}
	requests := [][]Grant{
		{allow("c", "mcp:*", "read")},
		{allow("c", "mcp:*", "*")},
		{allow("c", "mcp:github:*", "read", "write")},
		{allow("c", "mcp:*:read", "read")},
		{allow("c", "mcp:github:issues:*", "read"), allow("d", "mcp:jira:*", "write")},
	}
	resources := []string{
		"mcp:x", "mcp:github:x", "mcp:github:read", "mcp:github:issues:1", "mcp:github:issues:secret",
		"mcp:jira:read", "mcp:jira:x:y", "mcp:a:b:c:d", "mcp:github:issues:1:comments",
	}
	actions := []string{"read", "write", "delete"}
	ips := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.1")}
	for _, requested := range requests {
		child, err := DelegatedGrants(parent, requested)
		if err != nil {
			t.Fatalf("%v: %v", ids(requested), err)
		}
		for h := range 24 {
			now := testNow.Add(time.Duration(h) * time.Hour)
			for _, res := range resources {
				for _, act := range actions {
					for _, ip := range ips {
						r := Request{Action: act, Resource: res, IP: ip}
						c := Evaluate(child, r, now)
						p := Evaluate(parent, r, now)
						if c.Allowed && !p.Allowed {
							t.Fatalf("requested %v: child may %s %s at %v from %v (grant %s) but parent may not: %s",
								ids(requested), act, res, now, ip, c.Grant.ID, p.Code)
						}
						if c.Code == CodeApprovalRequired && !p.Allowed && p.Code != CodeApprovalRequired {
							t.Fatalf("requested %v: child may ask approval for %s %s but parent is refused: %s",
								ids(requested), act, res, p.Code)
						}
					}
				}
			}
		}
	}
}

func TestIntersectRateLimits(t *testing.T) {
	got := intersectRateLimits([]RateLimit{{PerDay, 5}, {PerMinute, 1}}, []RateLimit{{PerDay, 3}})
	want := []RateLimit{{PerMinute, 1}, {PerDay, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("intersectRateLimits = %v, want %v", got, want)
	}
	if got := intersectRateLimits(nil, nil); got != nil {
		t.Errorf("no limits: %v", got)
	}
}
