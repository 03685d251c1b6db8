package users

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kavachos/kavach/storage"
)

// Validation of what clients send about organizations. Every refusal names
// the field.

func checkOrgName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", &InputError{Field: "name", Message: "name is required"}
	case !validText(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Cf, r) }):
		return "", &InputError{Field: "name", Message: "name must be text without control or invisible formatting characters"}
	case utf8.RuneCountInString(s) > MaxOrgNameRunes:
		return "", &InputError{Field: "name", Message: fmt.Sprintf("name must be at most %d characters", MaxOrgNameRunes)}
	}
	return s, nil
}

// checkSlug accepts 1 to MaxOrgSlugLength lowercase ASCII letters, digits
// and hyphens, starting and ending with a letter or digit (so slugs are
// safe in URLs and subdomains). Upper case is folded.
func checkSlug(raw string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(raw))
	bad := func(msg string) (string, error) { return "", &InputError{Field: "slug", Message: msg} }
	switch {
	case s == "":
		return bad("slug must not be empty")
	case len(s) > MaxOrgSlugLength:
		return bad(fmt.Sprintf("slug must be at most %d characters", MaxOrgSlugLength))
	case s[0] == '-' || s[len(s)-1] == '-':
		return bad("slug must start and end with a letter or digit")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return bad("slug may hold only lowercase letters a-z, digits and hyphens")
		}
	}
	return s, nil
}

// slugFromName makes a valid slug from a (checked) name: ASCII letters and
// digits kept lower-cased, every other run of characters one hyphen.
func slugFromName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 48 {
				break
			}
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "org"
	}
	return b.String()
}

// checkOrgMetadata accepts a JSON object (empty or null means {}) and
// returns it compacted.
func checkOrgMetadata(raw json.RawMessage) ([]byte, error) {
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" || trimmed == "null" {
		return []byte("{}"), nil
	}
	if len(raw) > MaxOrgMetadataBytes {
		return nil, &InputError{Field: "metadata", Message: fmt.Sprintf("metadata must be at most %d bytes", MaxOrgMetadataBytes)}
	}
	var b bytes.Buffer
	if !utf8.Valid(raw) || trimmed[0] != '{' || json.Compact(&b, raw) != nil {
		return nil, &InputError{Field: "metadata", Message: "metadata must be a JSON object"}
	}
	return b.Bytes(), nil
}

func checkRole(role string) error {
	switch role {
	case storage.OrgRoleOwner, storage.OrgRoleAdmin, storage.OrgRoleMember:
		return nil
	}
	msg := "role must be owner, admin or member"
	if strings.HasPrefix(role, "org:") {
		msg += " (without Clerk's org: prefix)"
	}
	return &InputError{Field: "role", Message: msg}
}
