package users

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrPasswordPolicy matches every *PasswordPolicyError with errors.Is.
var ErrPasswordPolicy = errors.New("password does not meet the policy")

// Reasons a password is refused; PasswordPolicyError.Reason holds one of them.
const (
	reasonTooShort       = "too_short"
	reasonTooLong        = "too_long"
	reasonCommon         = "common"
	reasonSimilarToEmail = "similar_to_email"
)

// PasswordPolicyError says why a password was refused.
type PasswordPolicyError struct {
	// Reason is a stable code: "too_short", "too_long", "common" or "similar_to_email".
	Reason string
	// Message is a sentence that can be shown to the user.
	Message string
}

func (e *PasswordPolicyError) Error() string {
	return ErrPasswordPolicy.Error() + " (" + e.Reason + ")"
}

// Is makes errors.Is(err, ErrPasswordPolicy) true.
func (e *PasswordPolicyError) Is(target error) bool { return target == ErrPasswordPolicy }

// PasswordPolicy is the rule set for new passwords, after NIST SP 800-63B: a length
// range, no passwords from breach lists, and nothing derived from the email address.
// It deliberately has no composition rules (digits, symbols, cases).
type PasswordPolicy struct {
	// MinLength and MaxLength count Unicode code points; zero means 8 and 128.
	//
	// The common-password list only holds entries of 8 or more code points, so
	// with MinLength below 8 shorter common passwords are not caught.
	MinLength, MaxLength int
}

const (
	defaultMinPasswordLength = 8
	defaultMaxPasswordLength = 128
)

// Check returns nil when password is acceptable for the account with this email, or
// a *PasswordPolicyError naming the first rule it breaks. email may be empty.
func (p PasswordPolicy) Check(password, email string) error {
	minLen, maxLen := p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = defaultMinPasswordLength
	}
	if maxLen <= 0 {
		maxLen = defaultMaxPasswordLength
	}
	n := utf8.RuneCountInString(password)
	switch {
	case n < minLen:
		return &PasswordPolicyError{Reason: reasonTooShort,
			Message: fmt.Sprintf("Password must be at least %d characters.", minLen)}
	case n > maxLen || len(password) > MaxPasswordBytes:
		return &PasswordPolicyError{Reason: reasonTooLong,
			Message: fmt.Sprintf("Password must be at most %d characters.", maxLen)}
	case IsCommonPassword(password):
		return &PasswordPolicyError{Reason: reasonCommon,
			Message: "Password is too common. Choose one that is harder to guess."}
	case similarToEmail(password, email):
		return &PasswordPolicyError{Reason: reasonSimilarToEmail,
			Message: "Password must not be similar to your email address."}
	}
	return nil
}

// common_passwords.txt is zxcvbn's ranked list of leaked passwords, lowercased and
// cut to 8–128 code points, one a line, most common first. It is generated so the
// server does not link zxcvbn's word and name lists; regenerate it with
// `go generate ./users/` (see internal/gencommon).
//
//go:generate go run ./internal/gencommon -o common_passwords.txt
//go:embed common_passwords.txt
var commonPasswordsFile string

// commonPasswords is built on first use: a process that never checks a password
// never pays for the map.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, strings.Count(commonPasswordsFile, "\n"))
	for line := range strings.Lines(commonPasswordsFile) {
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			set[line] = struct{}{}
		}
	}
	return set
})

// IsCommonPassword reports whether password, ignoring case, is on the common-password
// list.
func IsCommonPassword(password string) bool {
	_, found := commonPasswords()[strings.ToLower(password)]
	return found
}

const (
	// minLocalPartForContains keeps short local parts ("al", "bob") from rejecting
	// every password that happens to contain them.
	minLocalPartForContains = 4
	// minEmailEditDistance: a password fewer edits than this away from the local
	// part or the email is a variation of it ("j0nathan!" for jonathan@…).
	minEmailEditDistance = 5
	// maxEmailRunes bounds the quadratic comparisons; no valid address is longer.
	maxEmailRunes = 320
)

// similarToEmail is Kratos's identifier-similarity rule adapted to emails: the
// password must not contain the local part (or be contained in it), must not be a few
// edits away from the local part or the whole address, and must not share a substring
// longer than half of itself with the address.
func similarToEmail(password, email string) bool {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || password == "" {
		return false
	}
	if r := []rune(email); len(r) > maxEmailRunes {
		email = string(r[:maxEmailRunes])
	}
	pw := strings.ToLower(password)
	local := email
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		local = email[:i]
	}

	if strings.Contains(pw, email) {
		return true
	}
	if utf8.RuneCountInString(local) >= minLocalPartForContains &&
		(strings.Contains(pw, local) || strings.Contains(local, pw)) {
		return true
	}
	p := []rune(pw)
	for _, s := range []string{local, email} {
		r := []rune(s)
		// The edit distance is at least the length difference, so strings of very
		// different lengths are never within it and need no computing.
		d := len(p) - len(r)
		if len(r) > 0 && d > -minEmailEditDistance && d < minEmailEditDistance && levenshtein(p, r) < minEmailEditDistance {
			return true
		}
	}
	return 2*longestCommonSubstring(p, []rune(email)) > len(p)
}

// levenshtein returns the edit distance (insertions, deletions, substitutions)
// between a and b, in code points.
func levenshtein(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// longestCommonSubstring returns the length, in code points, of the longest run that
// a and b share.
func longestCommonSubstring(a, b []rune) int {
	// prev[j] is the length of the common run ending at a[i-1], b[j-1].
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	best := 0
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			if a[i-1] == b[j-1] {
				cur[j] = prev[j-1] + 1
				best = max(best, cur[j])
			} else {
				cur[j] = 0
			}
		}
		prev, cur = cur, prev
	}
	return best
}
