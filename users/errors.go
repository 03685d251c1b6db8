package users

import (
	"errors"
	"fmt"
	"time"
)

// Domain errors. The HTTP edge maps each to a status and a stable code.
var (
	// ErrInvalidCredentials covers unknown email, wrong password and
	// accounts without a password alike, so callers cannot tell them apart.
	ErrInvalidCredentials = errors.New("invalid email or password")
	ErrUserExists         = errors.New("a user with this email already exists")
	ErrUserNotFound       = errors.New("user not found")
	ErrInvalidToken       = errors.New("the link is invalid, expired or already used")
	ErrUnauthenticated    = errors.New("no valid session")
	ErrSessionNotFound    = errors.New("session not found")
	ErrEmailNotVerified   = errors.New("email address is not verified")
	// ErrTooManyAttempts is returned while an account (or an unknown email
	// under attack) is locked after repeated failures.
	ErrTooManyAttempts = errors.New("too many failed attempts")
)

// InputError is a client mistake in one field (bad email, empty name, ...).
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// LockedError carries when a locked account opens again. It matches
// ErrTooManyAttempts with errors.Is.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string        { return ErrTooManyAttempts.Error() }
func (e *LockedError) Is(target error) bool { return target == ErrTooManyAttempts }
