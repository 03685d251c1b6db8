package sms

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Message is one text message to one phone number.
type Message struct {
	To   string // E.164: "+" and 8 to 15 digits
	Text string
}

// Sender delivers a Message. Implementations honour ctx cancellation and
// deadline.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrInvalidMessage is returned, wrapped, for a Message that must not be
// sent: a number that is not E.164, or no text.
var ErrInvalidMessage = errors.New("sms: invalid message")

func (m Message) check() error {
	if !IsE164(m.To) {
		return fmt.Errorf("%w: recipient is not an E.164 number", ErrInvalidMessage)
	}
	if strings.TrimSpace(m.Text) == "" {
		return fmt.Errorf("%w: text is empty", ErrInvalidMessage)
	}
	return nil
}

// IsE164 reports whether s is "+" followed by 8 to 15 digits, the first
// not 0.
func IsE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Normalize turns a number as people type it ("+1 (415) 555-0100",
// "+44 20 7946 0958") into E.164: it drops spaces, dashes, dots and
// parentheses and checks what is left. A trunk prefix written "(0)" (
// "+44 (0)20 7946 0958") is dropped: it is not dialled after the country
// code, and keeping it would make a second spelling of one number.
// Numbers without the leading "+" and country code are refused: there is
// no country to assume.
func Normalize(raw string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ReplaceAll(strings.TrimSpace(raw), "(0)", "") {
		switch {
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '\u00a0':
		case r == '+' || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	s := b.String()
	return s, IsE164(s)
}
