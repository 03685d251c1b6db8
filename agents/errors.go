package agents

import (
	"errors"
	"fmt"
)

// Domain errors of the Service. The HTTP edge maps each to a status and a
// stable code; none carries internal details.
var (
	ErrAgentNotFound = errors.New("agent not found")
	// ErrAgentSuspended, ErrAgentRevoked and ErrAgentExpired refuse an
	// agent that exists but may not act. AuthenticateKey returns the agent
	// with them, so that a caller can still record a decision about it.
	ErrAgentSuspended = errors.New("agent is suspended")
	ErrAgentRevoked   = errors.New("agent is revoked")
	ErrAgentExpired   = errors.New("agent has expired")
	// ErrInvalidKey covers malformed, unknown, revoked and expired API keys
	// alike, so a caller cannot tell which.
	ErrInvalidKey = errors.New("invalid API key")
	// ErrQuotaExceeded refuses a new agent for an owner who already has
	// Config.MaxAgentsPerOwner agents that are not revoked.
	ErrQuotaExceeded = errors.New("agent quota exceeded")
)

// ValidationError is a client mistake in one field of the input. Err, when
// set, is the underlying error (ErrInvalidGrant for a permission).
type ValidationError struct {
	Field   string // e.g. "name", "permissions[2]"
	Message string
	Err     error
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// MayNotAct reports an error saying the agent (or one above it) may not
// act, or does not exist: what a token endpoint or resource server
// refuses as the client's fault rather than the server's.
func MayNotAct(err error) bool {
	return errors.Is(err, ErrAgentNotFound) || errors.Is(err, ErrAgentSuspended) ||
		errors.Is(err, ErrAgentRevoked) || errors.Is(err, ErrAgentExpired)
}
