package text

// ScopeToken reports whether s is an OAuth scope-token (RFC 6749 §3.3):
// one or more of %x21 / %x23-5B / %x5D-7E: no spaces, quotes or
// backslashes, so it can go in a space-separated list and a quoted header
// parameter as is.
func ScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
