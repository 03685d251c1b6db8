package users

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/id"
)

func TestCleanText(t *testing.T) {
	cases := []struct {
		name, in, want string
		max            int
	}{
		{"plain", "curl/8.0", "curl/8.0", 512},
		{"invalid utf-8", "bad\xff", "bad\uFFFD", 512},
		{"control characters", "a\x00b\nc", "abc", 512},
		{"cut on a rune boundary", strings.Repeat("a", 511) + "é", strings.Repeat("a", 511), 512},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := cleanText(c.in, c.max)
			if got != c.want || !utf8.ValidString(got) || len(got) > c.max {
				t.Fatalf("cleanText(%q) = %q", c.in, got)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	if !validID(id.New("ses"), "ses") {
		t.Fatal("a real id is invalid")
	}
	for _, bad := range []string{"", "ses_", "usr_" + strings.Repeat("a", 26), "ses_" + strings.Repeat("a", 25) + "\x00", "ses_" + strings.Repeat("A", 26)} {
		if validID(bad, "ses") {
			t.Fatalf("validID(%q) = true", bad)
		}
	}
}
