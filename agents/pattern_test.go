package agents

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	maxSegments := strings.Repeat("a:", MaxResourceSegments-1) + "a"
	tests := []struct {
		name    string
		pattern string
		wantErr bool
	}{
		{"single literal", "mcp", false},
		{"literals", "mcp:github:create_issue", false},
		{"bare star", "*", false},
		{"trailing star", "mcp:github:*", false},
		{"middle star", "mcp:*:read", false},
		{"only stars", "*:*:*", false},
		{"unicode literal", "файл:отчёт", false},
		{"punctuation", "https://api.example.com/v1", false}, // ':' splits: "https", "//api.example.com/v1"
		{"exactly the byte limit", strings.Repeat("a", MaxResourceBytes), false},
		{"exactly the segment limit", maxSegments, false},

		{"empty", "", true},
		{"lone separator", ":", true},
		{"leading separator", ":a", true},
		{"trailing separator", "a:", true},
		{"empty middle segment", "a::b", true},
		{"star inside a segment", "file*", true},
		{"star prefix", "*file", true},
		{"double star", "a:**", true},
		{"space", "a b", true},
		{"leading space", " a", true},
		{"tab", "a\tb", true},
		{"newline", "a\nb", true},
		{"NUL", "a\x00b", true},
		{"DEL", "a\x7fb", true},
		{"no-break space", "a\u00a0b", true},
		{"line separator", "a\u2028b", true},
		{"zero-width space", "a\u200bb", true},
		{"bidi override", "a\u202eb", true},
		{"C1 control", "a\u0085b", true},
		{"invalid UTF-8", "a\xffb", true},
		{"over the byte limit", strings.Repeat("a", MaxResourceBytes+1), true},
		{"over the segment limit", maxSegments + ":a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePattern(tt.pattern)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParsePattern(%q) error = %v, want error %v", tt.pattern, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidPattern) {
					t.Errorf("error %v does not wrap ErrInvalidPattern", err)
				}
				return
			}
			if p.String() != tt.pattern {
				t.Errorf("String() = %q, want %q", p.String(), tt.pattern)
			}
		})
	}
}

func TestValidateResource(t *testing.T) {
	for _, ok := range []string{"mcp:github:create_issue", "a", "файл"} {
		if err := ValidateResource(ok); err != nil {
			t.Errorf("ValidateResource(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "mcp:*", "a::b", "a b", "a*b", "a\x00"} {
		if err := ValidateResource(bad); !errors.Is(err, ErrInvalidResource) {
			t.Errorf("ValidateResource(%q) = %v, want ErrInvalidResource", bad, err)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name     string
		pattern  string
		resource string
		want     bool
	}{
		{"exact", "mcp:github:create_issue", "mcp:github:create_issue", true},
		{"exact is case-sensitive", "mcp:github:create_issue", "mcp:GitHub:create_issue", false},
		{"exact single segment", "mcp", "mcp", true},
		{"literal does not match a prefix", "mcp:git", "mcp:github", false},
		{"shorter resource", "mcp:github:create_issue", "mcp:github", false},
		{"longer resource", "mcp:github", "mcp:github:create_issue", false},

		{"bare star matches one segment", "*", "mcp", true},
		{"bare star matches many segments", "*", "mcp:github:create_issue", true},

		{"trailing star matches one segment", "mcp:github:*", "mcp:github:create_issue", true},
		{"trailing star matches deeper", "mcp:github:*", "mcp:github:issues:42", true},
		// KavachOS matches here (its '*' also matches zero segments).
		{"trailing star needs a segment", "mcp:github:*", "mcp:github", false},
		{"trailing star keeps the prefix exact", "mcp:github:*", "mcp:githubx:create_issue", false},
		{"trailing star does not match other prefixes", "mcp:github:*", "mcp:gitlab:create_issue", false},

		{"middle star matches one segment", "mcp:*:read", "mcp:github:read", true},
		{"middle star checks what follows", "mcp:*:read", "mcp:github:write", false},
		// KavachOS matches both of these: its '*' ends the comparison.
		{"middle star matches exactly one segment", "mcp:*:read", "mcp:github:issues:read", false},
		{"middle star is not optional", "mcp:*:read", "mcp:read", false},
		{"middle star does not swallow the rest", "mcp:*:read", "mcp:github:write:all", false},
		{"two stars", "mcp:*:*", "mcp:github:read", true},
		{"two stars need two segments", "mcp:*:*", "mcp:github", false},
		{"middle then trailing star, deep", "mcp:*:*", "mcp:github:issues:read", true},
		{"leading star", "*:read", "github:read", true},
		{"leading star, last literal", "*:read", "github:write", false},

		{"empty resource", "*", "", false},
		{"resource with an empty segment", "*", "a::b", false},
		{"resource with a trailing separator", "a:*", "a:", false},
		{"resource that is a pattern", "mcp:*", "mcp:*", false},
		{"resource with whitespace", "*", "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MustParsePattern(tt.pattern)
			if got := p.Match(tt.resource); got != tt.want {
				t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.resource, got, tt.want)
			}
		})
	}
}

func TestZeroPatternMatchesNothing(t *testing.T) {
	var p Pattern
	if p.Match("a") || p.Contains(MustParsePattern("a")) || p.Overlaps(MustParsePattern("*")) {
		t.Error("the zero Pattern matched something")
	}
}

func TestPatternContains(t *testing.T) {
	tests := []struct {
		name          string
		parent, child string
		want          bool
	}{
		{"equal literals", "a:b", "a:b", true},
		{"equal open patterns", "a:*", "a:*", true},
		{"star contains everything", "*", "a:b:*", true},
		{"star contains a literal", "*", "a", true},
		{"open contains deeper literal", "a:*", "a:b:c", true},
		{"open contains deeper open", "a:*", "a:b:*", true},
		{"open contains middle star", "a:*", "a:*:c", true},
		{"middle star contains literal", "a:*:c", "a:b:c", true},
		{"middle star contains middle star", "a:*:c", "a:*:c", true},
		{"two stars contain one deeper", "a:*:*", "a:b:c:d", true},

		{"literal does not contain open", "a:b", "a:*", false},
		{"open does not contain its prefix", "a:b:*", "a:b", false},
		{"open does not contain a shorter open", "a:b:*", "a:*", false},
		{"closed does not contain open of same length", "a:*:c", "a:*:*", false},
		{"closed does not contain other length", "a:*:c", "a:b:c:d", false},
		{"literal does not contain star", "a:b:c", "a:*:c", false},
		{"different literal", "a:b", "a:c", false},
		{"middle star does not contain trailing star", "a:*:c", "a:*", false},
		{"deeper open does not contain wider", "a:*:*", "a:*", false},
		{"narrow does not contain star", "a", "*", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := MustParsePattern(tt.parent), MustParsePattern(tt.child)
			if got := p.Contains(c); got != tt.want {
				t.Errorf("%q.Contains(%q) = %v, want %v", tt.parent, tt.child, got, tt.want)
			}
		})
	}
}

func TestPatternOverlaps(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"equal", "a:b", "a:b", true},
		{"star and anything", "*", "x:y:z", true},
		{"open and deeper literal", "a:*", "a:b:c", true},
		{"open and open", "a:b:*", "a:*", true},
		{"middle stars cross", "a:*:c", "a:b:*", true},
		{"literal and middle star", "a:b:c", "*:b:*", true},

		{"different literal", "a:b", "a:c", false},
		{"lengths differ, both closed", "a:b", "a:b:c", false},
		{"open longer than closed", "a:b:*", "a:b", false},
		{"literal conflict before star", "a:*", "b:*", false},
		{"literal conflict after middle star", "a:*:c", "a:*:d", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustParsePattern(tt.a), MustParsePattern(tt.b)
			if got := a.Overlaps(b); got != tt.want {
				t.Errorf("%q.Overlaps(%q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := b.Overlaps(a); got != tt.want {
				t.Errorf("%q.Overlaps(%q) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestSpecificityOrder(t *testing.T) {
	// Most specific first: literal count, then fewer wildcards, then length.
	want := []string{
		"mcp:github:issues:create", // 4 literals
		"mcp:github:issues",        // 3 literals, no wildcard
		"mcp:github:issues:*",      // 3 literals, 1 wildcard, longer than the next
		"mcp:github:*:new",         // 3 literals, 1 wildcard
		"mcp:github:*",             // 2 literals, 1 wildcard, longer than the next
		"mcp:*:read",               // 2 literals, 1 wildcard
		"mcp:*:*",                  // 1 literal, 2 wildcards
		"*",                        // 0 literals
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortStableFunc(got, func(a, b string) int {
		pa, pb := MustParsePattern(a), MustParsePattern(b)
		return pa.compareSpecificity(&pb)
	})
	if !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
}
