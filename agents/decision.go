package agents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Reason codes of the decision point, besides those of Evaluate. Like
// those, they are part of the wire contract and the audit log.
const (
	CodeAgentNotFound  = "AGENT_NOT_FOUND"
	CodeAgentSuspended = "AGENT_SUSPENDED"
	CodeAgentRevoked   = "AGENT_REVOKED"
	CodeAgentExpired   = "AGENT_EXPIRED"
	// CodeUnavailable refuses a request that could not be decided or whose
	// decision could not be recorded (the store or the audit log failed).
	// Nothing is allowed without a durable audit record.
	CodeUnavailable = "UNAVAILABLE"
	// CodeTrustTooLow refuses a call that a trust policy reserves for
	// agents of a higher trust level than this one's (or than that of an
	// agent above it).
	CodeTrustTooLow = "TRUST_TOO_LOW"
)

// Audit events of decisions.
const (
	AuditEventAuthorize = "authorize"
	// AuditEventCheckPermission records a dry run: evaluated and recorded,
	// but not a call (no rate-limit use).
	AuditEventCheckPermission = "check_permission"
	// AuditEventRequestApproval records a dry run that opened (or found)
	// the call's approval request ahead of the call (OpenApproval).
	AuditEventRequestApproval = "request_approval"
)

// DecideRequest asks whether an agent may act.
type DecideRequest struct {
	// AgentID names the agent asking; or UserID a user (see users.go).
	AgentID   string
	UserID    string
	Action    string
	Resource  string
	Arguments json.RawMessage
	IP        netip.Addr // the zero Addr when unknown
	UserAgent string
	// TokenID names the credential the agent presented: an access token's
	// jti or an API key's id. The anomaly detectors follow it (one token
	// used from two distant networks). Empty when the agent presented none
	// (a server admin asking for it).
	TokenID string
	// DryRun asks without acting (check_permission): the request is
	// evaluated, and recorded as a check, but uses no rate limit.
	DryRun bool
	// OpenApproval, with DryRun, opens the call's approval request (or
	// finds the pending one) when the call needs a human's approval, so
	// that it can be approved before the call is made. Nothing else is
	// used: no approval is consumed, no rate limit or budget counted.
	OpenApproval bool
	// ActingFor and Chain describe, for the audit record, on whose behalf
	// the agent acts when its credential says so (an access token's sub
	// and act claims): the user (or agent) it acts for, and the chain of
	// principals from that one down to the agent, outermost first. When
	// empty, a delegated agent acts for its owner, and a sub-agent's chain
	// is its delegation chain.
	ActingFor string
	Chain     []string
}

// Decision is the answer, with the id of its audit record.
type Decision struct {
	Allowed bool
	Code    string // CodeAllowed when Allowed; a stable reason code otherwise
	Reason  string // a sentence for people; do not parse it
	// AuditID names the durable audit record of this decision. It is empty
	// only with CodeUnavailable when the record could not be written.
	AuditID string
	// ApprovalRequired is set with CodeApprovalRequired.
	ApprovalRequired bool
	// ApprovalID names the approval request of an APPROVAL_REQUIRED answer
	// (the one opened for the call, or reused), or the approval that let an
	// allowed call through. Empty otherwise, and for a dry run that found
	// no pending request.
	ApprovalID string

	budget *budgetNote  // what budgets did, for the audit record
	trust  *TrustAnswer // the trust policy that refused or held the call
	// probe marks a PERMISSION_DENIED for a resource outside every allow
	// grant's namespace: asking far outside the grants (a trust signal).
	probe bool
}

// Decide answers req and records the answer: one audit record per
// decision, durable before Decide returns, including decisions about
// unknown, suspended, revoked and expired agents. The steps:
//
//  1. The agent, and every agent above it in its delegation chain, must
//     exist and be active (AGENT_NOT_FOUND, AGENT_SUSPENDED,
//     AGENT_REVOKED, AGENT_EXPIRED).
//  2. Its grants are evaluated (GrantSet.Evaluate; see docs/agents.md),
//     and for a sub-agent each ancestor's too (allowedByAncestors).
//  3. If the grants allow the call (or ask for approval), trust
//     policies may refuse it (TRUST_TOO_LOW) or ask for approval
//     (TrustGate), before anything is counted.
//  4. APPROVAL_REQUIRED goes to the approvals (decideApproval): a usable
//     approval of the call lets it through, else a request is opened.
//  5. If allowed, the deciding grant's rate limits count the call
//     (RATE_LIMITED when one is exhausted; a dry run only looks).
//  6. If still allowed, the agent's budgets count the call
//     (BUDGET_EXCEEDED when one has no room; see checkBudget).
//  7. The audit record is written; if that fails, the answer is
//     UNAVAILABLE, never an allow.
func (s *Service) Decide(ctx context.Context, req DecideRequest) Decision {
	start := time.Now()
	now := s.now()
	d, p, chain, grantID := s.decide(ctx, req, now)

	principalType, principalID := "agent", req.AgentID
	if req.UserID != "" {
		principalType, principalID = "user", req.UserID
	}
	rec := storage.AuditRecord{
		ID: id.New("aud"), At: now, Kind: storage.AuditKindDecision, Event: AuditEventAuthorize,
		PrincipalType: principalType, PrincipalID: auditText(principalID, 128), AgentID: auditText(req.AgentID, 128),
		Action: auditText(req.Action, MaxActionBytes), Resource: auditText(req.Resource, MaxResourceBytes),
		ArgsDigest: argsDigest(req.Arguments), Result: storage.AuditDeny, Reason: d.Code,
		UserAgent: auditText(req.UserAgent, 512),
	}
	if req.DryRun {
		rec.Event = AuditEventCheckPermission
		if req.OpenApproval {
			rec.Event = AuditEventRequestApproval
		}
	}
	if d.Allowed {
		rec.Result = storage.AuditAllow
	}
	if req.IP.IsValid() {
		rec.IP = req.IP.String()
	}
	rec.ActingFor = actingFor(req, p)
	switch {
	case len(req.Chain) > 0:
		rec.Chain = make([]string, 0, min(len(req.Chain), HardMaxDelegationDepth+2))
		for _, c := range req.Chain[:min(len(req.Chain), HardMaxDelegationDepth+2)] {
			rec.Chain = append(rec.Chain, auditText(c, 256))
		}
	case len(chain) > 0:
		rec.Chain = make([]string, 0, len(chain)+1)
		for i := len(chain) - 1; i >= 0; i-- {
			rec.Chain = append(rec.Chain, chain[i].agent.ID)
		}
		rec.Chain = append(rec.Chain, p.agent.ID)
	}
	rec.Extra = decisionExtra(grantID, &d)
	// Latency is the time to decide; the audit write that follows is the
	// writer's to measure.
	rec.LatencyMicros = time.Since(start).Microseconds()
	if _, err := s.audit.Record(ctx, rec); err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("agents: audit decision; refusing it", "agent", rec.AgentID, "err", err)
		}
		return Decision{Code: CodeUnavailable, Reason: "the decision could not be recorded; try again"}
	}
	d.AuditID = rec.ID
	if s.cfg.Trust != nil && !req.DryRun && req.UserID == "" && p != nil {
		s.cfg.Trust.Decision(TrustDecision{AgentID: p.agent.ID, Code: d.Code, Probe: d.probe, At: now,
			IP: req.IP, UserAgent: req.UserAgent, Resource: req.Resource, TokenID: req.TokenID})
	}
	return d
}

// decide makes the decision. It returns the agent when it exists, the
// agents above it (nearest first) and the ID of the deciding grant when
// there is one.
func (s *Service) decide(ctx context.Context, req DecideRequest, now time.Time) (Decision, *principal, []*principal, string) {
	switch {
	case req.UserID != "" && req.AgentID != "":
		return Decision{Code: CodeInvalidRequest, Reason: "a decision is for an agent or for a user, not both"}, nil, nil, ""
	case req.UserID != "":
		d, p, grantID := s.decideUser(ctx, req, now)
		return d, p, nil, grantID
	case strings.HasPrefix(req.AgentID, userKeyPrefix):
		// The cache's key space for users: never an agent id.
		return Decision{Code: CodeAgentNotFound, Reason: "no such agent"}, nil, nil, ""
	}
	p, err := s.principal(ctx, req.AgentID, now)
	if errors.Is(err, ErrAgentNotFound) {
		return Decision{Code: CodeAgentNotFound, Reason: "no such agent"}, nil, nil, ""
	}
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("agents: load agent for a decision", "agent", req.AgentID, "err", err)
		}
		return Decision{Code: CodeUnavailable, Reason: "the agent could not be loaded; try again"}, nil, nil, ""
	}
	if d := inactiveDecision(&p.agent, now); d != nil {
		return *d, p, nil, ""
	}
	chain, refused := s.ancestors(ctx, p, now)
	if refused != nil {
		return *refused, p, chain, ""
	}
	bounds := chain
	if !p.isUser {
		var err error
		if bounds, err = s.bounds(ctx, p, chain, now); err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Error("agents: load the owner's grants for a decision", "agent", p.agent.ID, "err", err)
			}
			return Decision{Code: CodeUnavailable, Reason: "the owner's permissions could not be loaded; try again"}, p, chain, ""
		}
	}
	if p.setErr != nil {
		return Decision{Code: CodeInvalidGrant, Reason: "the agent's stored permissions are invalid"}, p, chain, ""
	}
	ereq := Request{Action: req.Action, Resource: req.Resource, Arguments: req.Arguments, IP: req.IP}
	out := p.set.Evaluate(ereq, now)
	d := Decision{Allowed: out.Allowed, Code: out.Code, Reason: out.Reason, ApprovalRequired: out.RequireApproval}
	var grantID string
	if out.Grant != nil {
		grantID = out.Grant.ID
	}
	d.probe = out.Code == CodePermissionDenied && out.Grant == nil && p.set.Outside(req.Resource)
	charges := []rateCharge{{agent: p.agent.ID, grant: grantID, limits: out.RateLimits}}
	if len(bounds) > 0 && (out.Allowed || out.RequireApproval) {
		var above []rateCharge
		d, above = allowedByAncestors(bounds, ereq, now, d)
		charges = append(charges, above...)
	}
	if s.cfg.TrustGate != nil && !p.isUser && (d.Allowed || d.ApprovalRequired) {
		var refused bool
		if d, refused = s.trustGate(ctx, req, p, chain, d); refused {
			return d, p, chain, grantID
		}
	}
	if d.ApprovalRequired {
		note := d.trust // a policy's approval keeps its note for the audit record
		d = s.decideApproval(ctx, req, p, d.Reason, charges, now)
		d.trust = note
	} else if d.Allowed && hasLimits(charges) {
		if ch, l, ok := s.limits.take(charges, now, !req.DryRun); !ok {
			d = rateLimited(ch, l, p.agent.ID)
		}
	}
	d = s.checkBudget(ctx, p, d, now, req.DryRun)
	s.touch(ctx, p, now)
	return d, p, chain, grantID
}

// argsDigest is the hex SHA-256 of the arguments in canonical form —
// object keys sorted by their UTF-8 bytes, no insignificant white space,
// strings escaped as RFC 8785 does, numbers as written — so that two
// encodings of the same arguments have the same digest. Arguments that do
// not parse (see decodeArguments) are digested as the bytes they are.
// Empty arguments have no digest.
func argsDigest(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var sum [sha256.Size]byte
	if v, err := decodeArguments(raw); err == nil {
		sum = sha256.Sum256(appendCanonical(nil, v))
	} else {
		sum = sha256.Sum256(raw)
	}
	return hex.EncodeToString(sum[:])
}

// auditText makes s storable in the audit log (valid UTF-8, no NUL) and at
// most max bytes long. Requests come from clients, and a record the store
// refused would turn the decision into UNAVAILABLE.
func auditText(s string, max int) string {
	if len(s) <= max && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
