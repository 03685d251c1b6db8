package storage

import (
	"context"
	"time"
)

// Agent types.
const (
	AgentAutonomous = "autonomous" // acts on its own, owned by a user
	AgentDelegated  = "delegated"  // always acts for a user (user-facing OAuth clients)
	AgentService    = "service"    // a machine identity (client_credentials)
)

// Agent statuses.
const (
	AgentActive    = "active"
	AgentSuspended = "suspended"
	AgentRevoked   = "revoked"
	AgentExpired   = "expired"
)

// Agent is a non-human principal (table kavach_agent). Every OAuth client
// is one (ClientID set); agents may also exist without a client.
type Agent struct {
	ID           string
	Type         string
	Name         string
	OwnerUserID  *string // nil for agents nobody owns yet (e.g. dynamically registered clients)
	ClientID     *string // the OAuth client this agent authenticates as, if any
	Status       string
	Metadata     []byte // JSON object, owned by package agents
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastActiveAt *time.Time
	ExpiresAt    *time.Time
}

// Agents stores agents.
type Agents interface {
	Create(ctx context.Context, a *Agent) error // ErrAlreadyExists on duplicate ID or ClientID
	Get(ctx context.Context, id string) (*Agent, error)
	GetByClientID(ctx context.Context, clientID string) (*Agent, error)
	List(ctx context.Context, limit, offset int) ([]Agent, error) // by CreatedAt, ID
	// ListByOwner returns the user's agents by CreatedAt, ID.
	ListByOwner(ctx context.Context, userID string) ([]Agent, error)
	// SetStatus changes Status and UpdatedAt; ErrNotFound if no such agent.
	SetStatus(ctx context.Context, id, status string, now time.Time) error
	// Touch sets LastActiveAt (best effort, for activity display).
	Touch(ctx context.Context, id string, at time.Time) error
	Delete(ctx context.Context, id string) error
}
