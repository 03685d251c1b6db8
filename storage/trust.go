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

// TrustFinding is an anomaly the detectors found in an agent's behaviour
// (table kavach_trust_finding). Kind, Severity and Detail are those of
// package trust's Finding.
type TrustFinding struct {
	ID        string
	AgentID   string
	Kind      string
	At        time.Time // when the behaviour happened
	Severity  float64
	Detail    string
	CreatedAt time.Time // when the finding was stored
}

// TrustFindings stores anomaly findings.
type TrustFindings interface {
	// Insert stores a finding of an existing agent; CreatedAt is now when
	// zero. ErrAlreadyExists on a duplicate ID.
	Insert(ctx context.Context, f *TrustFinding) error
	// ListByAgent returns up to limit of the agent's findings (all when
	// limit <= 0), newest first: by At, then ID, descending.
	ListByAgent(ctx context.Context, agentID string, limit int) ([]TrustFinding, error)
	// LatestByAgents returns, for each of agentIDs that has findings, its
	// newest perAgent findings in the order of ListByAgent. Agents without
	// findings have no key.
	LatestByAgents(ctx context.Context, agentIDs []string, perAgent int) (map[string][]TrustFinding, error)
	// DeleteBefore deletes the findings whose At is before t and returns
	// how many it deleted.
	DeleteBefore(ctx context.Context, t time.Time) (int, error)
}
