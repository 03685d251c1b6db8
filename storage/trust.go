package storage

import (
	"context"
	"time"
)

// TrustState is an agent's persisted trust state (table kavach_trust_state).
// State and Baseline are JSON owned by package trust; Score and Level are
// the score as of UpdatedAt, kept for sorting and listing.
type TrustState struct {
	AgentID   string
	State     []byte
	Baseline  []byte // nil until anomaly detection has observed the agent
	Score     float64
	Level     string
	UpdatedAt time.Time
}

// TrustStates stores trust states.
type TrustStates interface {
	// Get returns the agent's state; ErrNotFound when it has none yet.
	Get(ctx context.Context, agentID string) (*TrustState, error)
	// Update reads the agent's state under a row lock (a zero one, with
	// only AgentID set, when it has none), lets fn change it, and writes
	// it back, in one transaction: concurrent updates on several nodes
	// apply one after the other. An error from fn writes nothing.
	// ErrNotFound (wrapped) when the agent does not exist.
	Update(ctx context.Context, agentID string, fn func(*TrustState) error) error
	// List returns up to limit states, lowest score first (ties by agent).
	List(ctx context.Context, limit int) ([]TrustState, error)
}
