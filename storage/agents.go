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
	// ParentID is the agent that delegated to this one (a sub-agent);
	// nil for an agent a user created. DelegationDepth is 0 for those and
	// the parent's depth plus one for a sub-agent.
	ParentID        *string
	DelegationDepth int

	// OrganizationID is the organization the agent belongs to, if any; it
	// is set at creation only. The organization's owners and admins manage
	// the agent as its owner does.
	OrganizationID *string
}

// Agents stores agents.
type Agents interface {
	Create(ctx context.Context, a *Agent) error // ErrAlreadyExists on duplicate ID or ClientID
	Get(ctx context.Context, id string) (*Agent, error)
	GetByClientID(ctx context.Context, clientID string) (*Agent, error)
	List(ctx context.Context, limit, offset int) ([]Agent, error) // by CreatedAt, ID
	// ListByOwner returns the user's agents by CreatedAt, ID.
	ListByOwner(ctx context.Context, userID string) ([]Agent, error)
	// ListChildren returns the agents whose ParentID is parentID, by
	// CreatedAt, ID.
	ListChildren(ctx context.Context, parentID string) ([]Agent, error)
	// Lock locks the agent's row until the transaction ends (a no-op
	// outside one), so that checks of its status and its sub-agents made
	// under the lock hold on several nodes; ErrNotFound if no such agent.
	Lock(ctx context.Context, id string) error
	// SetClientID binds an agent that has no client yet to clientID;
	// ErrAlreadyExists if it has one (or the client is another agent's),
	// ErrNotFound if there is no such agent.
	SetClientID(ctx context.Context, id, clientID string, at time.Time) error
	// ListByOrganization returns the organization's agents by CreatedAt, ID.
	ListByOrganization(ctx context.Context, orgID string) ([]Agent, error)
	// Update writes Name, Metadata, ExpiresAt and UpdatedAt (not Status,
	// Type, owner, client or organization); ErrNotFound if no such agent.
	Update(ctx context.Context, a *Agent) error
	// SetStatus changes Status and UpdatedAt; ErrNotFound if no such agent.
	SetStatus(ctx context.Context, id, status string, now time.Time) error
	// Touch sets LastActiveAt (best effort, for activity display).
	Touch(ctx context.Context, id string, at time.Time) error
	Delete(ctx context.Context, id string) error
}

// AgentGrant is one permission of an agent (table kavach_agent_grant).
// Spec is the grant as JSON (resource pattern, actions, effect,
// constraints, expiry), owned and validated by package agents.
type AgentGrant struct {
	ID        string
	AgentID   string
	Spec      []byte
	CreatedAt time.Time
}

// AgentKey is an API key of an agent (table kavach_agent_key). Only the
// SHA-256 of the key is stored; Prefix (the first characters) is kept for
// display. A key works while RevokedAt is nil or in the future (rotation
// with an overlap window sets it ahead) and ExpiresAt is nil or ahead.
type AgentKey struct {
	ID        string
	AgentID   string
	Hash      string // hex SHA-256 of the whole key
	Prefix    string
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time
}

// AgentGrants stores agent permissions.
type AgentGrants interface {
	// Replace sets the agent's grants to exactly grants (in one
	// transaction when called on a transactional Store).
	Replace(ctx context.Context, agentID string, grants []AgentGrant) error
	List(ctx context.Context, agentID string) ([]AgentGrant, error) // by CreatedAt, ID
}

// UserGrants stores users' permissions (table kavach_user_grant), in the
// same records as agents' (AgentID holds the user's id): users go through
// the same decision point, and bound what the agents they own may get.
type UserGrants interface {
	Replace(ctx context.Context, userID string, grants []AgentGrant) error
	List(ctx context.Context, userID string) ([]AgentGrant, error) // by CreatedAt, ID
}

// AgentKeys stores agent API keys.
type AgentKeys interface {
	Create(ctx context.Context, k *AgentKey) error // ErrAlreadyExists on duplicate ID or Hash
	GetByHash(ctx context.Context, hash string) (*AgentKey, error)
	ListByAgent(ctx context.Context, agentID string) ([]AgentKey, error) // by CreatedAt, ID
	// RevokeAgentKeys sets RevokedAt = at on every key of the agent that
	// is not revoked yet or whose revocation is later than at, except
	// keepID; returns how many changed.
	RevokeAgentKeys(ctx context.Context, agentID, keepID string, at time.Time) (int, error)
}
