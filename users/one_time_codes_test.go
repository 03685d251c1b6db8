package users

import (
	"testing"
	"time"
)

func TestNewCodeIsSixDigits(t *testing.T) {
	seen := map[string]bool{}
	leadingZero := false
	for range 2000 {
		c := newCode()
		if _, ok := normalizeCode(c); !ok {
			t.Fatalf("code %q is not 6 digits", c)
		}
		leadingZero = leadingZero || c[0] == '0'
		seen[c] = true
	}
	// 2000 draws from a million: a repeat or two is possible, hundreds
	// are not; and codes below 100000 keep their leading zeros (about 200
	// of 2000 start with 0).
	if len(seen) < 1990 || !leadingZero {
		t.Fatalf("%d distinct codes of 2000, leading zero seen: %v", len(seen), leadingZero)
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"123456", "123456", true},
		{" 123 456 ", "123456", true},
		{"123-456", "123456", true},
		{"012345", "012345", true},
		{"12345", "", false},
		{"1234567", "", false},
		{"12345a", "", false},
		{"١٢٣٤٥٦", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := normalizeCode(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("normalizeCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMinutes(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute:  "5 minutes",
		10 * time.Minute: "10 minutes",
		time.Minute:      "1 minute",
		90 * time.Second: "2 minutes",
		30 * time.Second: "30s",
	} {
		if got := minutes(d); got != want {
			t.Errorf("minutes(%v) = %q, want %q", d, got, want)
		}
	}
}
