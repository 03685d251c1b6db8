package agents

import (
	"context"
	"sync"
)

// The token endpoint and resource servers know an agent by its OAuth
// client ID. Which agent a client is never changes once bound (a deleted
// client's agent is revoked, not rebound), so the mapping is cached until
// the map fills up; the agent's state comes from the decision cache.

const clientIndexSize = 100_000

type clientIndex struct {
	mu sync.RWMutex
	m  map[string]string // client ID → agent ID
}

func (ci *clientIndex) get(clientID string) (string, bool) {
	ci.mu.RLock()
	defer ci.mu.RUnlock()
	id, ok := ci.m[clientID]
	return id, ok
}

func (ci *clientIndex) put(clientID, agentID string) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.m == nil || len(ci.m) >= clientIndexSize {
		ci.m = make(map[string]string)
	}
	ci.m[clientID] = agentID
}

// AgentIDForClient returns the ID of the agent an OAuth client is;
// ErrAgentNotFound when none is.
func (s *Service) AgentIDForClient(ctx context.Context, clientID string) (string, error) {
	if id, ok := s.clients.get(clientID); ok {
		return id, nil
	}
	if clientID == "" {
		return "", ErrAgentNotFound
	}
	a, err := s.store.Agents().GetByClientID(ctx, clientID)
	if err != nil {
		return "", agentErr("get agent by client", err)
	}
	s.clients.put(clientID, a.ID)
	return a.ID, nil
}

// ClientAgent is the agent an OAuth client is, as the token endpoint
// needs it.
type ClientAgent struct {
	ID             string
	OwnerUserID    string // "" when nobody owns it
	OrganizationID string // "" when in none
	// Chain is the delegation chain from its root agent down to this one
	// (just ID for an agent a user created).
	Chain []string
}

// ClientAgent returns the agent an OAuth client is if it, and every agent
// above it, may act: else ErrAgentNotFound, ErrAgentSuspended,
// ErrAgentRevoked or ErrAgentExpired. It reads the caches, not the store,
// when they are fresh.
func (s *Service) ClientAgent(ctx context.Context, clientID string) (ClientAgent, error) {
	agentID, err := s.AgentIDForClient(ctx, clientID)
	if err != nil {
		return ClientAgent{}, err
	}
	now := s.now()
	p, chain, err := s.activeChain(ctx, agentID, now)
	if err != nil {
		return ClientAgent{}, err
	}
	out := ClientAgent{ID: agentID, Chain: make([]string, 0, len(chain)+1)}
	for i := len(chain) - 1; i >= 0; i-- {
		out.Chain = append(out.Chain, chain[i].agent.ID)
	}
	out.Chain = append(out.Chain, agentID)
	if p.agent.OwnerUserID != nil {
		out.OwnerUserID = *p.agent.OwnerUserID
	}
	if p.agent.OrganizationID != nil {
		out.OrganizationID = *p.agent.OrganizationID
	}
	return out, nil
}
