package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Users are principals too: they may hold grants, and then go through the
// same decision point as agents (Decide with UserID), and bound what the
// agents they own may get — as a parent bounds a sub-agent: an agent's
// grants are narrowed by its owner's when they are set, and every decision
// about the agent also asks the owner's grants. A user without grants is
// not restricted by them (and is refused every user decision: no grant
// allows anything).

// userKeyPrefix marks a user's entry in the decision cache.
const userKeyPrefix = "user:"

// CodeUserNotFound refuses a decision about a user that does not exist.
const CodeUserNotFound = "USER_NOT_FOUND"

// EventUserPermissionsChanged is the outbox (and audit) event of a change
// to a user's grants.
const EventUserPermissionsChanged = "user.permissions_changed"

// ErrUserNotFound: no such user.
var ErrUserNotFound = errors.New("user not found")

func (s *Service) loadUserPrincipal(ctx context.Context, userID string, now time.Time) (*principal, error) {
	if _, err := s.store.Users().Get(ctx, userID); err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
			return nil, ErrUserNotFound
		}
		return nil, fmt.Errorf("load user: %w", err)
	}
	rows, err := s.store.UserGrants().List(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("load user grants: %w", err)
	}
	p := &principal{isUser: true, agent: storage.Agent{ID: userID, Status: storage.AgentActive}, loadedAt: now}
	grants, err := decodeGrants(rows)
	if err == nil {
		p.set, err = CompileGrants(grants)
	}
	if err != nil {
		s.cfg.Logger.Error("agents: a user's stored grants do not compile; refusing every request of the user and their agents",
			"user", userID, "err", err)
		p.set, p.setErr = nil, err
	}
	return p, nil
}

// userPrincipal is the user with their compiled grants, from the cache.
func (s *Service) userPrincipal(ctx context.Context, userID string, now time.Time) (*principal, error) {
	if userID == "" {
		return nil, ErrUserNotFound
	}
	return s.principal(ctx, userKeyPrefix+userID, now)
}

// ownerBound returns the owner of the agent root (the top of a delegation
// chain) as a principal to ask, when the owner has grants; nil when the
// agent has no owner or the owner none.
func (s *Service) ownerBound(ctx context.Context, root *principal, now time.Time) (*principal, error) {
	if root.ownerKey == "" {
		return nil, nil
	}
	up, err := s.principal(ctx, root.ownerKey, now)
	if errors.Is(err, ErrUserNotFound) {
		return nil, nil // the owner is being deleted; the agent goes with them
	}
	if err != nil {
		return nil, err
	}
	if up.setErr == nil && up.set.Len() == 0 {
		return nil, nil
	}
	return up, nil
}

// UserGrants returns a user's grants.
func (s *Service) UserGrants(ctx context.Context, userID string) ([]Grant, error) {
	if _, err := s.store.Users().Get(ctx, userID); err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
			return nil, ErrUserNotFound
		}
		return nil, err
	}
	rows, err := s.store.UserGrants().List(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list user grants: %w", err)
	}
	return decodeGrants(rows)
}

// SetUserGrants replaces a user's grants (a grant whose ID names a current
// one keeps it), with an outbox event and an audit record in the same
// transaction. Decisions about the user and their agents see the change
// at once in this process, on other nodes within principalCacheTTL.
// Agents' stored grants are not rewritten: the owner's grants are asked at
// every decision, so narrowing them narrows the agents too.
func (s *Service) SetUserGrants(ctx context.Context, userID string, grants []Grant) ([]Grant, error) {
	now := s.now()
	checked, err := checkGrants(grants)
	if err != nil {
		return nil, err
	}
	var out []Grant
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		if _, err := tx.Users().Get(ctx, userID); err != nil {
			if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
				return ErrUserNotFound
			}
			return err
		}
		current, err := tx.UserGrants().List(ctx, userID)
		if err != nil {
			return err
		}
		var rows []storage.AgentGrant
		if out, rows, err = grantRows(userID, checked, current, now); err != nil {
			return err
		}
		if err := tx.UserGrants().Replace(ctx, userID, rows); err != nil {
			return fmt.Errorf("replace user grants: %w", err)
		}
		info := map[string]any{"userId": userID, "grants": len(out)}
		if err := emit(ctx, tx, EventUserPermissionsChanged, userID, info, now); err != nil {
			return err
		}
		r := storage.AuditRecord{
			ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: EventUserPermissionsChanged,
			Action: EventUserPermissionsChanged, Resource: "user:" + userID, Result: storage.AuditOK,
		}
		if act, ok := ctx.Value(actorKey{}).(actor); ok {
			r.PrincipalType, r.PrincipalID = act.principalType, act.principalID
		}
		r.Extra, _ = json.Marshal(info) // strings and numbers always encode
		return appendSecurity(ctx, tx, r)
	})
	if err != nil {
		return nil, fmt.Errorf("set user grants: %w", err)
	}
	s.cache.invalidate(userKeyPrefix + userID)
	return out, nil
}

// boundByOwner narrows the grants requested for an agent the user owns
// (not a sub-agent) by the user's grants, when the user has any; else it
// returns them as they are.
func (s *Service) boundByOwner(ctx context.Context, st storage.Store, ownerID string, requested []Grant, now time.Time) ([]Grant, error) {
	rows, err := st.UserGrants().List(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("load owner grants: %w", err)
	}
	if len(rows) == 0 {
		return requested, nil
	}
	owner, err := decodeGrants(rows)
	if err != nil {
		return nil, err
	}
	return narrow(owner, requested, now)
}

// decideUser decides for a user: the user must exist; their grants are
// evaluated and the deciding grant's rate limits count the call. Approval
// requests and budgets are for agents: a user grant that requires
// approval answers APPROVAL_REQUIRED and opens no request.
func (s *Service) decideUser(ctx context.Context, req DecideRequest, now time.Time) (Decision, *principal, string) {
	p, err := s.userPrincipal(ctx, req.UserID, now)
	if errors.Is(err, ErrUserNotFound) {
		return Decision{Code: CodeUserNotFound, Reason: "no such user"}, nil, ""
	}
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("agents: load user for a decision", "user", req.UserID, "err", err)
		}
		return Decision{Code: CodeUnavailable, Reason: "the user could not be loaded; try again"}, nil, ""
	}
	if p.setErr != nil {
		return Decision{Code: CodeInvalidGrant, Reason: "the user's stored permissions are invalid"}, p, ""
	}
	out := p.set.Evaluate(Request{Action: req.Action, Resource: req.Resource, Arguments: req.Arguments, IP: req.IP}, now)
	d := Decision{Allowed: out.Allowed, Code: out.Code, Reason: out.Reason, ApprovalRequired: out.RequireApproval}
	var grantID string
	if out.Grant != nil {
		grantID = out.Grant.ID
	}
	if d.Allowed && len(out.RateLimits) > 0 {
		charges := []rateCharge{{agent: p.agent.ID, grant: grantID, limits: out.RateLimits}}
		if ch, l, ok := s.limits.take(charges, now, !req.DryRun); !ok {
			d = rateLimited(ch, l, p.agent.ID)
		}
	}
	return d, p, grantID
}
