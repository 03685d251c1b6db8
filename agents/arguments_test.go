package agents

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

func jsonNumber(s string) json.Number { return json.Number(s) }

func nan() float64 { return math.NaN() }

// manyKeys returns an object with keys k0…k(n-1) (values their index) and,
// if extra is set, one more key extra.
func manyKeys(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, "%q:%d,", fmt.Sprintf("k%d", i), i)
	}
	if extra != "" {
		fmt.Fprintf(&b, "%q:0,", extra)
	}
	return strings.TrimSuffix(b.String(), ",") + "}"
}

func TestCheckArguments(t *testing.T) {
	deep := strings.Repeat("[", maxArgumentDepth+2) + strings.Repeat("]", maxArgumentDepth+2)
	tests := []struct {
		name string
		rule ArgumentRule
		args string // "" means no arguments
		want bool
	}{
		// Pointers.
		{"top-level key", ArgumentRule{Pointer: "/repo", Enum: []any{"kavach"}}, `{"repo":"kavach"}`, true},
		{"nested object", ArgumentRule{Pointer: "/target/repo", Enum: []any{"kavach"}}, `{"target":{"repo":"kavach"}}`, true},
		{"nested array", ArgumentRule{Pointer: "/files/1/path", Regex: "/safe/.*"}, `{"files":[{"path":"/safe/a"},{"path":"/safe/b"}]}`, true},
		{"nested array, refused", ArgumentRule{Pointer: "/files/1/path", Regex: "/safe/.*"}, `{"files":[{"path":"/safe/a"},{"path":"/etc/passwd"}]}`, false},
		{"escaped slash", ArgumentRule{Pointer: "/a~1b", Enum: []any{1}}, `{"a/b":1}`, true},
		{"escaped tilde", ArgumentRule{Pointer: "/a~0b", Enum: []any{1}}, `{"a~b":1}`, true},
		{"~01 is ~1, not /", ArgumentRule{Pointer: "/~01", Enum: []any{1}}, `{"~1":1,"/":2}`, true},
		{"empty key", ArgumentRule{Pointer: "/", Enum: []any{1}}, `{"":1}`, true},
		{"whole document", ArgumentRule{Pointer: "", Enum: []any{"x"}}, `"x"`, true},
		{"whole document null", ArgumentRule{Pointer: "", Enum: []any{nil}}, `null`, true},
		{"through a scalar is missing", ArgumentRule{Pointer: "/a/b", Required: true}, `{"a":"str"}`, false},
		{"array index leading zero is missing", ArgumentRule{Pointer: "/a/01", Required: true}, `{"a":[1,2]}`, false},
		{"array index '-' is missing", ArgumentRule{Pointer: "/a/-", Required: true}, `{"a":[1,2]}`, false},
		{"array index out of range", ArgumentRule{Pointer: "/a/2", Required: true}, `{"a":[1,2]}`, false},
		{"key is case-sensitive", ArgumentRule{Pointer: "/Repo", Required: true}, `{"repo":"x"}`, false},

		// Presence.
		{"missing, optional", ArgumentRule{Pointer: "/a", Regex: "x"}, `{"b":"y"}`, true},
		{"missing, required", ArgumentRule{Pointer: "/a", Regex: "x", Required: true}, `{"b":"y"}`, false},
		{"no arguments, optional", ArgumentRule{Pointer: "/a", Regex: "x"}, ``, true},
		{"no arguments, required", ArgumentRule{Pointer: "/a", Required: true}, ``, false},
		{"no arguments, whole document required", ArgumentRule{Pointer: "", Required: true}, ``, false},
		{"null is present", ArgumentRule{Pointer: "/a", Required: true}, `{"a":null}`, true},

		// Regex: whole-string match.
		{"regex matches whole string", ArgumentRule{Pointer: "/a", Regex: "[a-z]+"}, `{"a":"abc"}`, true},
		{"regex is anchored at the end", ArgumentRule{Pointer: "/a", Regex: "[a-z]+"}, `{"a":"abc1"}`, false},
		{"regex is anchored at the start", ArgumentRule{Pointer: "/a", Regex: "[a-z]+"}, `{"a":"1abc"}`, false},
		{"alternation stays anchored", ArgumentRule{Pointer: "/a", Regex: "a|b"}, `{"a":"ab"}`, false},
		{"multi-line flag cannot unanchor", ArgumentRule{Pointer: "/a", Regex: "(?m)a"}, `{"a":"a\nb"}`, false},
		{"trailing newline is not ignored", ArgumentRule{Pointer: "/a", Regex: "a"}, `{"a":"a\n"}`, false},
		{"explicit anchors are harmless", ArgumentRule{Pointer: "/a", Regex: "^a$"}, `{"a":"a"}`, true},
		{"regex wants a string", ArgumentRule{Pointer: "/a", Regex: "1"}, `{"a":1}`, false},
		{"regex on a unicode string", ArgumentRule{Pointer: "/a", Regex: `\p{Cyrillic}+`}, `{"a":"файл"}`, true},

		// Enum.
		{"enum string", ArgumentRule{Pointer: "/a", Enum: []any{"x", "y"}}, `{"a":"y"}`, true},
		{"enum string refused", ArgumentRule{Pointer: "/a", Enum: []any{"x", "y"}}, `{"a":"z"}`, false},
		{"enum does not coerce", ArgumentRule{Pointer: "/a", Enum: []any{"1"}}, `{"a":1}`, false},
		{"enum number equal as decimal", ArgumentRule{Pointer: "/a", Enum: []any{1}}, `{"a":1.0}`, true},
		{"enum number with exponent", ArgumentRule{Pointer: "/a", Enum: []any{100.0}}, `{"a":1e2}`, true},
		{"enum negative zero", ArgumentRule{Pointer: "/a", Enum: []any{0}}, `{"a":-0.0}`, true},
		{"enum big integer exact", ArgumentRule{Pointer: "/a", Enum: []any{jsonNumber("9007199254740993")}}, `{"a":9007199254740993}`, true},
		{"enum big integer neighbour", ArgumentRule{Pointer: "/a", Enum: []any{jsonNumber("9007199254740992")}}, `{"a":9007199254740993}`, false},
		{"enum bool", ArgumentRule{Pointer: "/a", Enum: []any{true}}, `{"a":true}`, true},
		{"enum bool refused", ArgumentRule{Pointer: "/a", Enum: []any{true}}, `{"a":false}`, false},
		{"enum null", ArgumentRule{Pointer: "/a", Enum: []any{nil}}, `{"a":null}`, true},
		{"enum object refused", ArgumentRule{Pointer: "/a", Enum: []any{"x"}}, `{"a":{"x":1}}`, false},

		// Range.
		{"min inclusive", ArgumentRule{Pointer: "/n", Min: ptr(1.0), Max: ptr(10.0)}, `{"n":1}`, true},
		{"max inclusive", ArgumentRule{Pointer: "/n", Min: ptr(1.0), Max: ptr(10.0)}, `{"n":10}`, true},
		{"below min", ArgumentRule{Pointer: "/n", Min: ptr(1.0), Max: ptr(10.0)}, `{"n":0.999}`, false},
		{"above max", ArgumentRule{Pointer: "/n", Min: ptr(1.0), Max: ptr(10.0)}, `{"n":10.0001}`, false},
		{"fractional bound", ArgumentRule{Pointer: "/n", Max: ptr(0.1)}, `{"n":0.1}`, true},
		{"tiny negative below zero", ArgumentRule{Pointer: "/n", Min: ptr(0.0)}, `{"n":-1e-400}`, false},
		{"huge beyond max", ArgumentRule{Pointer: "/n", Max: ptr(1e308)}, `{"n":1e309}`, false},
		{"absurd exponent refused", ArgumentRule{Pointer: "/n", Min: ptr(0.0)}, `{"n":1e99999999999999999999}`, false},
		{"range wants a number", ArgumentRule{Pointer: "/n", Max: ptr(10.0)}, `{"n":"5"}`, false},
		{"big integer just above max", ArgumentRule{Pointer: "/n", Max: ptr(9007199254740992.0)}, `{"n":9007199254740993}`, false},

		// Documents that parsers disagree on are refused.
		{"invalid JSON", ArgumentRule{Pointer: "/a", Required: true}, `{"a":`, false},
		{"trailing data", ArgumentRule{Pointer: "/a", Required: true}, `{"a":1} {"a":2}`, false},
		{"duplicate key", ArgumentRule{Pointer: "/path", Regex: "/safe/.*"}, `{"path":"/safe/x","path":"/etc/passwd"}`, false},
		{"duplicate key by escape", ArgumentRule{Pointer: "/path", Regex: "/safe/.*"}, `{"path":"/safe/x","p\u0061th":"/etc"}`, false},
		{"keys differing by case", ArgumentRule{Pointer: "/path", Regex: "/safe/.*"}, `{"path":"/safe/x","PATH":"/etc/passwd"}`, false},
		{"keys differing by Kelvin sign", ArgumentRule{Pointer: "/k", Required: true}, `{"k":1,"` + "\u212a" + `":2}`, false},
		{"duplicate key in nested object", ArgumentRule{Pointer: "/a", Required: true}, `{"a":1,"b":{"c":1,"c":2}}`, false},
		{"invalid UTF-8", ArgumentRule{Pointer: "/a", Required: true}, "{\"a\":\"\xff\"}", false},
		{"lone surrogate escape", ArgumentRule{Pointer: "/a", Required: true}, `{"a":"\ud800"}`, false},
		{"low surrogate first", ArgumentRule{Pointer: "/a", Required: true}, `{"a":"\udc00\ud800"}`, false},
		{"surrogate pair", ArgumentRule{Pointer: "/a", Enum: []any{"😀"}}, `{"a":"\ud83d\ude00"}`, true},
		{"escapes", ArgumentRule{Pointer: "/a", Enum: []any{"a/b\n\"c\"\t\\é"}}, `{"a":"a\/b\n\"c\"\t\\\u00e9"}`, true},
		{"escaped key", ArgumentRule{Pointer: "/a~1b", Required: true}, `{"a\/b":1}`, true},
		{"raw control character", ArgumentRule{Pointer: "/a", Required: true}, "{\"a\":\"x\ty\"}", false},
		{"unknown escape", ArgumentRule{Pointer: "/a", Required: true}, `{"a":"\x41"}`, false},
		{"many keys, no duplicate", ArgumentRule{Pointer: "/k40", Enum: []any{40}}, manyKeys(50, ""), true},
		{"many keys, case duplicate late", ArgumentRule{Pointer: "/k1", Required: true}, manyKeys(50, "K45"), false},
		{"many keys, case duplicate early", ArgumentRule{Pointer: "/k1", Required: true}, manyKeys(10, "K5"), false},
		{"leading zero", ArgumentRule{Pointer: "/a", Required: true}, `{"a":01}`, false},
		{"single quotes", ArgumentRule{Pointer: "/a", Required: true}, `{'a':1}`, false},
		{"trailing comma", ArgumentRule{Pointer: "/a", Required: true}, `{"a":1,}`, false},
		{"whitespace everywhere", ArgumentRule{Pointer: "/a/0", Enum: []any{true}}, " \n{ \"a\" :\t[ true , null ] }\r\n", true},
		{"too deep", ArgumentRule{Pointer: "/a", Required: true}, `{"a":1,"b":` + deep + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := compile(t, Constraints{Arguments: []ArgumentRule{tt.rule}})
			var args json.RawMessage
			if tt.args != "" {
				args = json.RawMessage(tt.args)
			}
			code, reason := cc.CheckArguments(args)
			if got := code == ""; got != tt.want {
				t.Fatalf("CheckArguments(%s) = %q %q, want allowed %v", tt.args, code, reason, tt.want)
			}
			if code != "" && code != CodeArgumentNotAllowed {
				t.Errorf("code = %q", code)
			}
		})
	}
}

func TestArgumentReasonNamesPointerNotValue(t *testing.T) {
	cc := compile(t, Constraints{Arguments: []ArgumentRule{{Pointer: "/token", Regex: "public-.*"}}})
	_, reason := cc.CheckArguments(json.RawMessage(`{"token":"sk-secret"}`))
	if !strings.Contains(reason, `"/token"`) || strings.Contains(reason, "sk-secret") {
		t.Errorf("reason = %q, want the pointer and not the value", reason)
	}
}

func TestAllArgumentRulesMustHold(t *testing.T) {
	cc := compile(t, Constraints{Arguments: []ArgumentRule{
		{Pointer: "/owner", Enum: []any{"kavachos"}},
		{Pointer: "/count", Max: ptr(5.0)},
	}})
	if code, _ := cc.CheckArguments(json.RawMessage(`{"owner":"kavachos","count":3}`)); code != "" {
		t.Errorf("both hold: %q", code)
	}
	code, reason := cc.CheckArguments(json.RawMessage(`{"owner":"kavachos","count":6}`))
	if code != CodeArgumentNotAllowed || !strings.Contains(reason, "/count") {
		t.Errorf("second fails: %q %q", code, reason)
	}
}

func TestCheckArgumentValues(t *testing.T) {
	cc := compile(t, Constraints{Arguments: []ArgumentRule{
		{Pointer: "/repo/name", Regex: "[a-z]+"},
		{Pointer: "/limit", Max: ptr(100.0)},
	}})
	tests := []struct {
		name string
		args map[string]any
		want bool
	}{
		{"typed Go values", map[string]any{"repo": map[string]any{"name": "kavach"}, "limit": 50}, true},
		{"int above max", map[string]any{"limit": 101}, false},
		{"nested map of strings", map[string]any{"repo": map[string]string{"name": "Kavach"}}, false},
		{"unencodable value", map[string]any{"limit": math.Inf(1)}, false},
		{"keys differing by case", map[string]any{"limit": 1, "LIMIT": 1000}, false},
		{"nil map", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reason := cc.CheckArgumentValues(tt.args)
			if got := code == ""; got != tt.want {
				t.Errorf("CheckArgumentValues = %q %q, want allowed %v", code, reason, tt.want)
			}
		})
	}
}

func TestArgumentsNotParsedWithoutRules(t *testing.T) {
	cc := compile(t, Constraints{RequireApproval: true})
	if code, _ := cc.CheckArguments(json.RawMessage(`{not json`)); code != "" {
		t.Errorf("CheckArguments without rules = %q", code)
	}
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "-0", 0},
		{"0", "0.000e5", 0},
		{"1", "1.0", 0},
		{"1", "1e0", 0},
		{"100", "1e2", 0},
		{"0.001", "1e-3", 0},
		{"1.5", "15e-1", 0},
		{"123.45", "1.2345E+2", 0},
		{"1", "2", -1},
		{"-1", "1", -1},
		{"-2", "-1", -1},
		{"0.12", "0.123", -1},
		{"0.13", "0.123", 1},
		{"99", "100", -1},
		{"9007199254740993", "9007199254740992", 1},
		{"-1e-400", "0", -1},
		{"1e400", "1e399", 1},
	}
	for _, tt := range tests {
		a, aok := parseDecimal(tt.a)
		b, bok := parseDecimal(tt.b)
		if !aok || !bok {
			t.Fatalf("parseDecimal(%q, %q) failed", tt.a, tt.b)
		}
		if got := a.cmp(b); got != tt.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.cmp(a); got != -tt.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1 ", "NaN", "Infinity", "1e99999999999999"} {
		if _, ok := parseDecimal(bad); ok {
			t.Errorf("parseDecimal(%q) accepted", bad)
		}
	}
}
