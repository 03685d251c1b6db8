package agents

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// refMatch is a second, deliberately naive statement of the matching rules
// for valid patterns and resources, to check Pattern.Match against.
func refMatch(pattern, resource string) bool {
	ps, rs := strings.Split(pattern, ":"), strings.Split(resource, ":")
	var match func(i, j int) bool
	match = func(i, j int) bool {
		switch {
		case i == len(ps):
			return j == len(rs)
		case j == len(rs):
			return false
		case ps[i] == "*" && i == len(ps)-1:
			return true // a trailing '*' takes the one or more segments left
		case ps[i] == "*" || ps[i] == rs[j]:
			return match(i+1, j+1)
		}
		return false
	}
	return match(0, 0)
}

// witness returns a resource p matches, filling wildcards from fill.
func witness(p Pattern, fill string) string {
	segs := slices.Clone(p.segs)
	for i, s := range segs {
		if s == "*" {
			segs[i] = fill
		}
	}
	if p.open {
		segs = append(segs, fill)
	}
	return strings.Join(segs, ":")
}

func FuzzParsePattern(f *testing.F) {
	seeds := [][3]string{
		{"mcp:github:*", "mcp:github:issues:*", "mcp:github:issues"},
		{"*", "a", "a:b:c"},
		{"mcp:*:read", "mcp:github:read", "mcp:github:write:read"},
		{"a::b", "a:", ":"},
		{"*:*", "*:x:*", "x:y"},
		{"a\u200bb", "a b", "a\xff"},
		{"", "*", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, resource string) {
		p, err := ParsePattern(a)
		if err != nil {
			if p.Match(resource) {
				t.Fatalf("the zero Pattern from a failed parse matched %q", resource)
			}
			return
		}
		if p.String() != a {
			t.Fatalf("String() = %q, want %q", p.String(), a)
		}
		valid := ValidateResource(resource) == nil
		if got, want := p.Match(resource), valid && refMatch(a, resource); got != want {
			t.Fatalf("%q.Match(%q) = %v, reference says %v", a, resource, got, want)
		}
		if !p.Contains(p) || !p.Overlaps(p) {
			t.Fatalf("%q does not contain or overlap itself", a)
		}
		if w := witness(p, "w"); ValidateResource(w) == nil && !p.Match(w) {
			t.Fatalf("%q does not match its own witness %q", a, w)
		}
		q, err := ParsePattern(b)
		if err != nil {
			return
		}
		if p.Overlaps(q) != q.Overlaps(p) {
			t.Fatalf("Overlaps(%q, %q) is not symmetric", a, b)
		}
		if p.Match(resource) && q.Match(resource) && !p.Overlaps(q) {
			t.Fatalf("%q and %q both match %q but do not overlap", a, b, resource)
		}
		if p.Contains(q) {
			if q.Match(resource) && !p.Match(resource) {
				t.Fatalf("%q contains %q, which matches %q, but %q does not", a, b, resource, a)
			}
			for _, fill := range []string{"w", "x", firstSegment(resource)} {
				if w := witness(q, fill); ValidateResource(w) == nil && !p.Match(w) {
					t.Fatalf("%q contains %q but does not match its witness %q", a, b, w)
				}
			}
			if !p.Overlaps(q) {
				t.Fatalf("%q contains %q but does not overlap it", a, b)
			}
		}
	})
}

func firstSegment(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

var knownCodes = []string{
	CodeAllowed, CodePermissionDenied, CodeOutsideTimeWindow, CodeIPNotAllowed,
	CodeArgumentNotAllowed, CodeApprovalRequired, CodeInvalidRequest, CodeInvalidGrant,
}

func FuzzEvaluate(f *testing.F) {
	f.Add("mcp:github:*", "read,write", false, "mcp:*", "read", "mcp:github:issues", []byte(`{"repo":"kavachos/x"}`), []byte{10, 0, 0, 1}, int64(29_000_000), uint8(0))
	f.Add("*", "*", true, "mcp:*:read", "read", "mcp:x:read", []byte(`{"repo":1}`), []byte{}, int64(0), uint8(7))
	f.Add("a:*:c", "x", false, "a:b:*", "x", "a:b:c", []byte(`{"repo":"a","REPO":"b"}`), make([]byte, 16), int64(-5), uint8(3))
	f.Fuzz(func(t *testing.T, p1, actions string, denyFirst bool, p2, action, resource string, args, ipBytes []byte, minutes int64, flags uint8) {
		g1 := Grant{ID: "g1", Resource: p1, Actions: strings.Split(actions, ",")}
		if denyFirst {
			g1.Effect = EffectDeny
		}
		g2 := Grant{ID: "g2", Resource: p2, Actions: []string{action}}
		if flags&1 != 0 {
			g2.Constraints.TimeWindows = []TimeWindow{{Start: "22:00", End: "06:00", Zone: "Asia/Kolkata"}}
		}
		if flags&2 != 0 {
			g2.Constraints.IPAllow = []string{"10.0.0.0/8", "2001:db8::/32"}
		}
		if flags&4 != 0 {
			g2.Constraints.Arguments = []ArgumentRule{{Pointer: "/repo", Regex: "kavachos/.*", Required: true}}
		}
		if flags&8 != 0 {
			g2.Constraints.RequireApproval = true
		}
		now := time.Unix(0, 0).Add(time.Duration(minutes%(1<<40)) * time.Minute)
		if flags&16 != 0 {
			exp := now.Add(time.Duration(flags>>5) * time.Minute)
			g2.ExpiresAt = &exp
		}
		ip, _ := netip.AddrFromSlice(ipBytes)
		r := Request{Action: action, Resource: resource, Arguments: json.RawMessage(args), IP: ip}
		grants := []Grant{g1, g2}

		out := Evaluate(grants, r, now)
		if !slices.Contains(knownCodes, out.Code) {
			t.Fatalf("unknown code %q", out.Code)
		}
		if out.Allowed != (out.Code == CodeAllowed) || out.RequireApproval != (out.Code == CodeApprovalRequired) {
			t.Fatalf("inconsistent outcome %+v", out)
		}
		if out.Reason == "" && !out.Allowed {
			t.Fatalf("refusal without a reason: %+v", out)
		}
		if g := out.Grant; g != nil {
			p := MustParsePattern(g.Resource)
			if !p.Match(r.Resource) || g.expiredAt(now) || !(slices.Contains(g.Actions, r.Action) || slices.Contains(g.Actions, AnyAction)) {
				t.Fatalf("deciding grant %+v does not apply to %+v", g, r)
			}
			if g.IsDeny() != (out.Code == CodePermissionDenied) {
				t.Fatalf("grant effect %q with code %q", g.Effect, out.Code)
			}
		} else if out.Code != CodePermissionDenied && out.Code != CodeInvalidRequest && out.Code != CodeInvalidGrant {
			t.Fatalf("code %q without a grant", out.Code)
		}
		gs, err := CompileGrants(grants)
		if err != nil {
			if out.Code != CodeInvalidGrant {
				t.Fatalf("CompileGrants failed (%v) but Evaluate said %q", err, out.Code)
			}
			return
		}
		if again := gs.Evaluate(r, now); again.Code != out.Code || again.Reason != out.Reason {
			t.Fatalf("GrantSet.Evaluate %+v differs from Evaluate %+v", again, out)
		}
	})
}

// FuzzDecodeArguments checks the hand-written argument decoder against
// encoding/json: whatever it accepts, encoding/json reads the same way, and
// whatever valid JSON it refuses, it refuses for one of its documented
// reasons.
func FuzzDecodeArguments(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2.5e-3,-0,"x\u00e9\ud83d\ude00",true,false,null,{}],"b":{"c":""}}`,
		`{"a":1,"A":2}`, `{"a":1,"a":2}`, `"\ud800"`, `[[[[]]]]`, `01`, `1 2`, " \t\n1\r", `{"\u212a":1,"k":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeArguments(data)
		if err != nil {
			if json.Valid(data) && utf8.Valid(data) && err.Error() == errSyntax.Error() {
				t.Fatalf("refused valid JSON %q as a syntax error", data)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil || dec.More() {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %q as %#v, encoding/json as %#v", data, got, want)
		}
	})
}
