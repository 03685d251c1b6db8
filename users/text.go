package users

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/text"
)

// cleanText makes client-supplied free text (a User-Agent) safe to store
// (see text.Clean).
func cleanText(s string, max int) string { return text.Clean(s, max) }

// validText reports whether s is valid UTF-8 without control characters,
// for fields a client chooses (names, URLs).
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// validID reports whether s has the shape of an id made by internal/id with
// this prefix, so that garbage never reaches a query.
func validID(s, prefix string) bool {
	if len(s) != len(prefix)+1+26 || !strings.HasPrefix(s, prefix+"_") {
		return false
	}
	for _, r := range s[len(prefix)+1:] {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}
