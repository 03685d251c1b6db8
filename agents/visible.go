package agents

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Covers reports whether the grants would decide action on resource by an
// allow grant: no deny grant matches, and an allow grant does, whatever
// its constraints (time windows, IP allowlist, argument rules, approval)
// would say about a particular call. It is what a list of tools shows: the
// tools a call could be allowed for.
func (gs *GrantSet) Covers(action, resource string, now time.Time) bool {
	if checkAction(action) != nil {
		return false
	}
	var buf [MaxResourceSegments]string
	n, err := splitSegments(resource, &buf, false)
	if err != nil {
		return false
	}
	res := buf[:n]
	for i := range gs.denies {
		if gs.denies[i].matches(action, res, now) {
			return false
		}
	}
	for i := range gs.allows {
		if gs.allows[i].matches(action, res, now) {
			return true
		}
	}
	return false
}

// bounds are the principals whose grants bound agent p besides its own:
// the agents above it (chain, nearest first) and, when the owner's grants
// are set, the owner, like an ancestor.
func (s *Service) bounds(ctx context.Context, p *principal, chain []*principal, now time.Time) ([]*principal, error) {
	root := p
	if len(chain) > 0 {
		root = chain[len(chain)-1]
	}
	owner, err := s.ownerBound(ctx, root, now)
	if err != nil || owner == nil {
		return chain, err
	}
	return append(slices.Clip(chain), owner), nil
}

// Visible reports, for each resource, whether the agent may see action on
// it in a list (a gateway's tools/list): it and every agent above it are
// active, and its grants, its ancestors' and its owner's (when set) all
// cover the call (Covers). The chain is loaded once for the whole list.
// Nothing is counted, consumed or recorded: a list is not a call, and
// each call is decided on its own when it is made.
func (s *Service) Visible(ctx context.Context, agentID, action string, resources []string) ([]bool, error) {
	out := make([]bool, len(resources))
	now := s.now()
	p, chain, err := s.activeChain(ctx, agentID, now)
	switch {
	case errors.Is(err, ErrAgentNotFound) || MayNotAct(err):
		return out, nil
	case err != nil:
		return nil, err
	}
	bounds, err := s.bounds(ctx, p, chain, now)
	if err != nil {
		return nil, err
	}
	all := append([]*principal{p}, bounds...)
	for i, res := range resources {
		out[i] = !slices.ContainsFunc(all, func(q *principal) bool { return q.setErr != nil || !q.set.Covers(action, res, now) })
	}
	return out, nil
}
