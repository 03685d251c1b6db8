package agents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// consumeAttempts bounds how often decideApproval looks for another usable
// approval after a concurrent call used the one it found.
const consumeAttempts = 3

// decideApproval answers a request whose deciding grant asks a human first
// (out.RequireApproval: every other constraint held):
//
//  1. A usable approval of the same call — agent, action, resource and
//     arguments digest — lets it through: a window approval as it is, a
//     once approval by consuming it, a conditional update of which exactly
//     one of any number of concurrent calls wins. The grant's rate limits
//     count the call as for any allowed one (RATE_LIMITED refuses it
//     without using the approval).
//  2. Otherwise the call's pending request is reused, or a new one is
//     opened with its approval.requested event, and the answer is
//     APPROVAL_REQUIRED with the request's id.
//
// A dry run consumes, counts and opens nothing: it answers ALLOWED with the
// approval that would apply, or APPROVAL_REQUIRED with the pending
// request's id if there is one; with OpenApproval it opens the request
// (or finds the pending one) as a real call would.
func (s *Service) decideApproval(ctx context.Context, req DecideRequest, p *principal, reason string, charges []rateCharge, now time.Time) Decision {
	key := storage.ApprovalKey{AgentID: p.agent.ID, Action: req.Action, Resource: req.Resource, ArgsDigest: argsDigest(req.Arguments)}
	for range consumeAttempts {
		ap, err := s.store.Approvals().FindUsable(ctx, key, now)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return s.approvalUnavailable(ctx, key, err)
		}
		if d, lost := s.useApproval(ctx, req, p, charges, ap, now); !lost {
			return d
		}
	}
	return s.requestApproval(ctx, req, p, reason, key, now)
}

// useApproval lets the call through on ap. lost reports that a concurrent
// call used ap first; then nothing was counted.
func (s *Service) useApproval(ctx context.Context, req DecideRequest, p *principal, charges []rateCharge,
	ap *storage.Approval, now time.Time) (d Decision, lost bool) {
	counted := false
	if hasLimits(charges) {
		ch, l, ok := s.limits.take(charges, now, !req.DryRun)
		if !ok {
			return rateLimited(ch, l, p.agent.ID), false
		}
		counted = !req.DryRun
	}
	if req.DryRun {
		return Decision{Allowed: true, Code: CodeAllowed, ApprovalID: ap.ID,
			Reason: fmt.Sprintf("approval %s (%s) would allow this call", ap.ID, ap.Mode)}, false
	}
	if ap.Mode == storage.ApprovalOnce {
		if err := s.store.Approvals().Consume(ctx, ap.ID, now); err != nil {
			if counted {
				s.limits.giveBack(charges, now)
			}
			if errors.Is(err, storage.ErrNotFound) {
				return Decision{}, true
			}
			return s.approvalUnavailable(ctx, storage.ApprovalKey{AgentID: p.agent.ID}, err), false
		}
	}
	return Decision{Allowed: true, Code: CodeAllowed, ApprovalID: ap.ID,
		Reason: fmt.Sprintf("approved by a human (%s approval %s)", ap.Mode, ap.ID)}, false
}

// requestApproval answers APPROVAL_REQUIRED with the call's pending
// request, opening one unless this is a dry run.
func (s *Service) requestApproval(ctx context.Context, req DecideRequest, p *principal, reason string, key storage.ApprovalKey, now time.Time) Decision {
	d := Decision{Code: CodeApprovalRequired, Reason: reason, ApprovalRequired: true}
	if req.DryRun && !req.OpenApproval {
		ap, err := s.store.Approvals().FindPending(ctx, key, now)
		switch {
		case err == nil:
			d.ApprovalID = ap.ID
		case !errors.Is(err, storage.ErrNotFound):
			return s.approvalUnavailable(ctx, key, err)
		}
		return d
	}
	ap, err := s.openApproval(ctx, req, p, key, now)
	if err != nil {
		return s.approvalUnavailable(ctx, key, err)
	}
	d.ApprovalID = ap.ID
	d.Reason = fmt.Sprintf("this action requires a human's approval: request %s is pending until %s",
		ap.ID, ap.ExpiresAt.Format(time.RFC3339))
	return d
}

// openApproval returns the call's pending request, or stores a new one
// with its approval.requested event in one transaction. Concurrent calls
// for one call end up with one request (see storage.Approvals.CreatePending).
func (s *Service) openApproval(ctx context.Context, req DecideRequest, p *principal, key storage.ApprovalKey, now time.Time) (storage.Approval, error) {
	var out storage.Approval
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		ap, err := tx.Approvals().FindPending(ctx, key, now)
		if err == nil {
			out = *ap
			return nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		args, cut := approvalArguments(req.Arguments)
		a := storage.Approval{
			ID: id.New("apr"), AgentID: key.AgentID, ActingFor: actingFor(req, p), Action: key.Action, Resource: key.Resource,
			ArgsDigest: key.ArgsDigest, Arguments: args, ArgumentsTruncated: cut,
			RequestedAt: now, ExpiresAt: now.Add(s.cfg.ApprovalTTL).Truncate(time.Millisecond),
		}
		if p.agent.OwnerUserID != nil {
			owner := *p.agent.OwnerUserID // the cached agent is shared: do not alias it
			a.OwnerUserID = &owner
		}
		created, err := tx.Approvals().CreatePending(ctx, &a)
		if err != nil {
			return err
		}
		if !created { // a concurrent call opened it first
			ap, err := tx.Approvals().FindPending(ctx, key, now)
			if err != nil {
				return err
			}
			out = *ap
			return nil
		}
		out = a
		// The arguments stay out of the event (webhooks leave the server);
		// the approver reads them through the API.
		return emit(ctx, tx, EventApprovalRequested, a.ID, map[string]any{
			"approvalId": a.ID, "agentId": a.AgentID, "ownerUserId": a.OwnerUserID, "actingFor": a.ActingFor,
			"action": a.Action, "resource": a.Resource, "argsDigest": a.ArgsDigest,
			"requestedAt": a.RequestedAt, "expiresAt": a.ExpiresAt,
		}, now)
	})
	if err != nil {
		return storage.Approval{}, fmt.Errorf("open approval request: %w", err)
	}
	return out, nil
}

// approvalUnavailable refuses a call whose approval could not be looked up
// or stored: nothing passes on a guess.
func (s *Service) approvalUnavailable(ctx context.Context, key storage.ApprovalKey, err error) Decision {
	if ctx.Err() == nil {
		s.cfg.Logger.Error("agents: approval for a decision", "agent", key.AgentID, "err", err)
	}
	return Decision{Code: CodeUnavailable, Reason: "the approval could not be checked; try again"}
}

// actingFor is the user a decision of p acts for: a delegated agent always
// acts for its owner.
func actingFor(req DecideRequest, p *principal) string {
	if req.ActingFor != "" {
		return auditText(req.ActingFor, 128)
	}
	if p != nil && p.agent.Type == storage.AgentDelegated && p.agent.OwnerUserID != nil {
		return *p.agent.OwnerUserID
	}
	return ""
}
