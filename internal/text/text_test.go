package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"curl/8.5", 512, "curl/8.5"},
		{"a\x00b\nc", 512, "abc"},
		{"\xff\xfeagent", 512, "\uFFFDagent"}, // one replacement per invalid run
		{"ab€", 4, "ab"},                      // € is 3 bytes: not cut in half
		{strings.Repeat("x", 600), 512, strings.Repeat("x", 512)},
	} {
		got := Clean(c.in, c.max)
		if got != c.want || !utf8.ValidString(got) || len(got) > c.max {
			t.Errorf("Clean(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
