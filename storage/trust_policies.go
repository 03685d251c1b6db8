package storage

import (
	"context"
	"time"
)

// Trust policy scopes: whose agents a policy applies to.
const (
	TrustPolicyGlobal       = "global"       // every agent (ScopeID empty)
	TrustPolicyOrganization = "organization" // the agents of one organization
	TrustPolicyAgent        = "agent"        // one agent
)

// TrustPolicy is a policy set by a platform team (table
// kavach_trust_policy). Body is JSON owned by package trust; Version
// counts its versions from 1.
type TrustPolicy struct {
	ID        string
	ScopeType string // TrustPolicyGlobal, TrustPolicyOrganization or TrustPolicyAgent
	ScopeID   string
	Body      []byte
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	CreatedBy string
	UpdatedBy string
}

// TrustPolicyRevision is one version of a policy as it was written; the
// last revision of a deleted policy has Deleted set and the body it had.
type TrustPolicyRevision struct {
	PolicyID  string
	Version   int64
	Body      []byte
	Deleted   bool
	ChangedBy string
	ChangedAt time.Time
}

// TrustPolicies stores trust policies. Every change writes a revision and
// increments the epoch in the same transaction, so a node that sees the
// epoch move knows to reload, and no change goes unnoticed.
type TrustPolicies interface {
	// Epoch is the number of changes ever made to the policies.
	Epoch(ctx context.Context) (int64, error)
	// Count returns the number of policies. In a transaction after a
	// change (which locks the epoch first), no concurrent change can move
	// it until the transaction ends.
	Count(ctx context.Context) (int, error)
	// List returns every policy, by CreatedAt, ID.
	List(ctx context.Context) ([]TrustPolicy, error)
	Get(ctx context.Context, id string) (*TrustPolicy, error)
	// Create stores p at version 1 (UpdatedBy and UpdatedAt set from the
	// Created ones); ErrAlreadyExists on a duplicate ID.
	Create(ctx context.Context, p *TrustPolicy) error
	// Update reads the policy under a row lock, lets fn change its Body,
	// UpdatedBy and UpdatedAt (now when fn leaves it), and stores it as
	// the next version, in one transaction. ErrNotFound when there is none; an error from fn
	// writes nothing.
	Update(ctx context.Context, id string, fn func(*TrustPolicy) error) (*TrustPolicy, error)
	// Delete removes the policy, keeping its history with a last revision
	// marked deleted; it returns the removed policy. ErrNotFound when
	// there is none.
	Delete(ctx context.Context, id, by string, at time.Time) (*TrustPolicy, error)
	// Revisions returns the policy's revisions, oldest first (also after
	// it was deleted); none for an unknown ID.
	Revisions(ctx context.Context, id string) ([]TrustPolicyRevision, error)
}
