package users

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPasswordPolicyCheck(t *testing.T) {
	const alice = "alice@example.com"
	tests := []struct {
		name     string
		policy   PasswordPolicy
		password string
		email    string
		want     string // reason, "" for accepted
	}{
		{name: "passphrase", password: "correct horse battery staple", email: alice},
		{name: "exactly the minimum", password: "vX9#kq2!", email: alice},
		{name: "one below the minimum", password: "vX9#kq2", email: alice, want: "too_short"},
		{name: "empty", password: "", email: alice, want: "too_short"},
		{name: "length counts code points, not bytes", password: "日本語のパスワ", email: alice, want: "too_short"},
		{name: "multibyte at the minimum", password: "日本語のパスワード", email: alice},
		{name: "exactly the maximum", password: strings.Repeat("xy", 64), email: alice},
		{name: "one above the maximum", password: strings.Repeat("xy", 64) + "z", email: alice, want: "too_long"},
		{name: "custom minimum", policy: PasswordPolicy{MinLength: 12}, password: "tr0ub4dor&3", email: alice, want: "too_short"},
		{name: "custom maximum", policy: PasswordPolicy{MaxLength: 16}, password: "correct horse battery", email: alice, want: "too_long"},
		{name: "byte cap beats a generous maximum", policy: PasswordPolicy{MaxLength: 5000}, password: strings.Repeat("é", 600), email: alice, want: "too_long"},
		{name: "common", password: "password123", email: alice, want: "common"},
		{name: "common ignores case", password: "SunShine", email: alice, want: "common"},
		{name: "common at the minimum", password: "iloveyou", email: alice, want: "common"},
		{name: "common with no email", password: "trustno1", want: "common"},
		{name: "the email itself", password: alice, email: alice, want: "similar_to_email"},
		{name: "local part plus digits", password: "alice1234", email: alice, want: "similar_to_email"},
		{name: "local part capitalised", password: "Alice2024!", email: alice, want: "similar_to_email"},
		{name: "email compared case-insensitively", password: "alice1234", email: "ALICE@Example.com", want: "similar_to_email"},
		{name: "password inside a long local part", password: "veryverylong", email: "averyveryverylongname@example.com", want: "similar_to_email"},
		{name: "few edits from the local part", password: "j0nathan!", email: "jonathan@example.org", want: "similar_to_email"},
		{name: "shares more than half with the email", password: "chris2024", email: "christopher@example.com", want: "similar_to_email"},
		{name: "contains a whole email with a short local part", password: "al@x.io-secret", email: "al@x.io", want: "similar_to_email"},
		{name: "short local part is not matched on its own", password: "bobby-tables-2024", email: "bob@example.com"},
		{name: "unrelated password", password: "Glacier-Tuba-Orbit", email: alice},
		{name: "no email skips the rule", password: "alice1234"},
		{name: "email without an at sign", password: "Glacier-Tuba-Orbit", email: "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, tt.email)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check(%q, %q) = %v, want nil", tt.password, tt.email, err)
				}
				return
			}
			var pe *PasswordPolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check(%q, %q) = %v, want a *PasswordPolicyError", tt.password, tt.email, err)
			}
			if pe.Reason != tt.want {
				t.Errorf("Reason = %q, want %q", pe.Reason, tt.want)
			}
			if !errors.Is(err, ErrPasswordPolicy) {
				t.Errorf("errors.Is(err, ErrPasswordPolicy) = false")
			}
			if !strings.HasPrefix(pe.Message, "Password ") || !strings.HasSuffix(pe.Message, ".") {
				t.Errorf("Message %q is not a sentence about the password", pe.Message)
			}
		})
	}
}

func TestPasswordPolicyMessages(t *testing.T) {
	err := PasswordPolicy{}.Check("short", "")
	var pe *PasswordPolicyError
	if !errors.As(err, &pe) || pe.Message != "Password must be at least 8 characters." {
		t.Fatalf("too short message = %v", err)
	}
	if err.Error() != "password does not meet the policy (too_short)" {
		t.Errorf("Error() = %q", err.Error())
	}
	if errors.Is(err, errors.New("password does not meet the policy")) {
		t.Errorf("Is matches an unrelated error with the same text")
	}
}

func TestIsCommonPassword(t *testing.T) {
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"top of the list", "password", true},
		{"upper case", "PASSWORD", true},
		{"digits", "12345678", true},
		{"keyboard walk", "qwertyuiop", true},
		{"passphrase", "correct horse battery staple", false},
		{"empty", "", false},
		// The policy rejects these for length first, so the list does not store them.
		{"shorter than the minimum is not stored", "123456", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsCommonPassword(tt.password); got != tt.want {
				t.Errorf("IsCommonPassword(%q) = %v, want %v", tt.password, got, tt.want)
			}
		})
	}
}

// TestCommonPasswordsFile guards the generated file against hand edits and a broken
// generator.
func TestCommonPasswordsFile(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(commonPasswordsFile, "\n"), "\n")
	if len(lines) < 10_000 {
		t.Fatalf("only %d common passwords embedded", len(lines))
	}
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n < defaultMinPasswordLength || n > defaultMaxPasswordLength {
			t.Errorf("line %d %q: %d code points, outside the policy's range", i+1, l, n)
		}
		if l != strings.ToLower(l) {
			t.Errorf("line %d %q is not lowercase", i+1, l)
		}
		if seen[l] {
			t.Errorf("line %d %q is a duplicate", i+1, l)
		}
		seen[l] = true
	}
	if len(commonPasswords()) != len(lines) {
		t.Errorf("map holds %d entries, file has %d lines", len(commonPasswords()), len(lines))
	}
}

func TestLevenshtein(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"kitten", "sitting", 3},
		{"jonathan", "j0nathan!", 2},
		{"日本語", "日本", 1},
	}
	for _, tt := range tests {
		if got := levenshtein([]rune(tt.a), []rune(tt.b)); got != tt.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestLongestCommonSubstring(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "abc", 0},
		{"abc", "xyz", 0},
		{"chris2024", "christopher@example.com", 5},
		{"correct horse battery staple", "alice@example.com", 3},
		{"日本語テキスト", "テキスト", 4},
	}
	for _, tt := range tests {
		if got := longestCommonSubstring([]rune(tt.a), []rune(tt.b)); got != tt.want {
			t.Errorf("longestCommonSubstring(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func BenchmarkPolicyCheck(b *testing.B) {
	var p PasswordPolicy
	IsCommonPassword("") // load the list outside the measurement
	for b.Loop() {
		if err := p.Check("correct horse battery staple", "alice.liddell@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
