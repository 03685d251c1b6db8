package users

import (
	"net/mail"
	"strings"
)

// maxEmailLength is RFC 5321's limit on a forward path.
const maxEmailLength = 254

// NormalizeEmail trims and lower-cases an address and checks that it is a
// bare addr-spec with a dotted domain. Lower-casing the local part is not
// strictly RFC-correct, but every mainstream provider treats it that way and
// it is what prevents two accounts for one inbox.
func NormalizeEmail(raw string) (string, error) {
	// Check before lower-casing: ToLower turns invalid bytes into U+FFFD.
	if !validText(raw) {
		return "", &InputError{Field: "email", Message: "email is not a valid address"}
	}
	e := strings.ToLower(strings.TrimSpace(raw))
	if e == "" {
		return "", &InputError{Field: "email", Message: "email is required"}
	}
	if len(e) > maxEmailLength {
		return "", &InputError{Field: "email", Message: "email is too long"}
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", &InputError{Field: "email", Message: "email is not a valid address"}
	}
	at := strings.LastIndexByte(e, '@')
	domain := e[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", &InputError{Field: "email", Message: "email is not a valid address"}
	}
	return e, nil
}
