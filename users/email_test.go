package users

import "testing"

func TestNormalizeEmail(t *testing.T) {
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "alice@example.com", "alice@example.com", true},
		{"case and spaces", "  Alice@Example.COM ", "alice@example.com", true},
		{"plus tag", "a+tag@example.co.uk", "a+tag@example.co.uk", true},
		{"empty", "", "", false},
		{"no at", "alice.example.com", "", false},
		{"display name", "Alice <alice@example.com>", "", false},
		{"no dot in domain", "alice@localhost", "", false},
		{"trailing dot", "alice@example.", "", false},
		{"two addresses", "a@example.com,b@example.com", "", false},
		{"newline", "a@example.com\nBcc: x@y.z", "", false},
		{"NUL", "a\x00@example.com", "", false},
		{"invalid utf-8", "a\xff@example.com", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := NormalizeEmail(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Fatalf("NormalizeEmail(%q) = %q, %v", c.in, got, err)
			}
		})
	}
}
