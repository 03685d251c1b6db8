package trust

import (
	"encoding/json"

	"github.com/kavachos/kavach/storage"
)

// The audit log holds every input of the score: decisions with their
// reason code and probe flag, and the security records of refused token
// requests (failed client authentication, refresh-token reuse), denied
// approvals and anomaly findings. EventFromAudit reads one record back into
// the event it stands for, so a score can be rebuilt from the log.

// Audit events and codes this file reads (written by packages agents and
// authz; strings here, so that trust does not depend on them).
const (
	auditAuthorize      = "authorize"
	auditTokenRefused   = "token.refused"
	auditApprovalDenied = "approval.denied"
)

// EventFromAudit returns the agent and the trust event an audit record
// stands for; ok is false for records that move no score (dry runs, user
// decisions, lifecycle changes, …).
func EventFromAudit(r storage.AuditRecord) (agentID string, e Event, ok bool) {
	if r.AgentID == "" || r.At.IsZero() {
		return "", Event{}, false
	}
	var sig Signal
	switch {
	case r.Kind == storage.AuditKindDecision && r.Event == auditAuthorize && r.PrincipalType == "agent":
		var x struct {
			Probe bool `json:"probe"`
		}
		if len(r.Extra) > 0 {
			_ = json.Unmarshal(r.Extra, &x) // an unreadable extra is no probe
		}
		sig = SignalForDecision(r.Reason, x.Probe)
	case r.Kind == storage.AuditKindSecurity && r.Event == auditTokenRefused && r.Reason == "invalid_client":
		sig = SignalInvalidClientAuth
	case r.Kind == storage.AuditKindSecurity && r.Event == auditTokenRefused:
		var x struct {
			RefreshTokenReuse bool `json:"refreshTokenReuse"`
		}
		if len(r.Extra) > 0 {
			_ = json.Unmarshal(r.Extra, &x) // an unreadable extra is no reuse
		}
		if x.RefreshTokenReuse {
			sig = SignalRefreshTokenReuse
		}
	case r.Kind == storage.AuditKindSecurity && r.Event == auditApprovalDenied:
		sig = SignalApprovalDenied
	case r.Kind == storage.AuditKindSecurity && r.Event == EventFinding:
		var f findingRecord
		if json.Unmarshal(r.Extra, &f) != nil {
			return "", Event{}, false
		}
		return r.AgentID, Event{At: r.At, Signal: SignalAnomaly, Severity: f.Severity}, true
	}
	if sig == "" {
		return "", Event{}, false
	}
	return r.AgentID, Event{At: r.At, Signal: sig}, true
}
