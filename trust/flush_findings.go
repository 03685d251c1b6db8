package trust

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/outbox"
	"github.com/kavachos/kavach/storage"
)

// EventFinding names an anomaly finding in the audit log (a security
// record) and in the outbox (an event for hooks and webhooks).
const EventFinding = "trust.finding"

// FindingRetention is how long finding rows are kept (the server's expiry
// sweep deletes older ones). After 90 days, about 13 half-lives, a
// finding weighs nothing in the score; its audit record stays as long as
// the audit log's retention keeps it.
const FindingRetention = 90 * 24 * time.Hour

// findingRecord is a finding as the audit record's extra and the outbox
// event's payload carry it. EventFromAudit reads the severity back.
type findingRecord struct {
	FindingID string      `json:"findingId"`
	AgentID   string      `json:"agentId"`
	Kind      FindingKind `json:"kind"`
	Severity  float64     `json:"severity"`
	Detail    string      `json:"detail"`
	At        time.Time   `json:"at"`
}

// detect observes obs in time order into the baseline of ts, and applies
// the findings' events to st, which the caller then encodes once. The findings' times are at the
// millisecond, as the audit log keeps them, so that a state rebuilt from
// the log agrees. Flush runs it in the transaction that merges the
// agent's delta, and writes the findings (storeFindings) in the same
// transaction; with no observations it changes nothing.
func (s *Service) detect(ts *storage.TrustState, st *State, obs []Observation, now time.Time) ([]Finding, error) {
	if len(obs) == 0 {
		return nil, nil
	}
	b, err := decodeBaseline(ts.Baseline)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(obs, func(x, y Observation) int { return x.At.Compare(y.At) })
	var found []Finding
	for _, o := range obs {
		for _, f := range b.Observe(o, now, s.detectors) {
			f.At = f.At.Truncate(time.Millisecond)
			found = append(found, f)
			st.Apply(f.Event(), s.model)
		}
	}
	if ts.Baseline, err = json.Marshal(b); err != nil {
		return nil, fmt.Errorf("trust: encode baseline: %w", err)
	}
	return found, nil
}

func decodeBaseline(raw []byte) (Baseline, error) {
	var b Baseline
	if len(raw) == 0 {
		return b, nil
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return Baseline{}, fmt.Errorf("trust: stored baseline does not decode: %w", err)
	}
	return b, nil
}

// storeFindings writes each finding's row, outbox event and audit record
// in tx. The audit records go last: appending locks the log's head until
// the transaction ends.
func storeFindings(ctx context.Context, tx storage.Store, agentID string, found []Finding, now time.Time) error {
	if len(found) == 0 {
		return nil
	}
	recs := make([]storage.AuditRecord, 0, len(found))
	for _, f := range found {
		row := storage.TrustFinding{ID: id.New("fnd"), AgentID: agentID, Kind: string(f.Kind), At: f.At,
			Severity: f.Severity, Detail: storable(f.Detail), CreatedAt: now}
		if err := tx.TrustFindings().Insert(ctx, &row); err != nil {
			return fmt.Errorf("trust: store finding: %w", err)
		}
		fr := findingRecord{FindingID: row.ID, AgentID: agentID, Kind: f.Kind, Severity: f.Severity, Detail: row.Detail, At: row.At}
		if err := outbox.Emit(ctx, tx, EventFinding, agentID, fr, now); err != nil {
			return err
		}
		extra, err := json.Marshal(fr)
		if err != nil {
			return fmt.Errorf("trust: encode finding: %w", err)
		}
		recs = append(recs, storage.AuditRecord{
			ID: id.New("aud"), At: row.At, Kind: storage.AuditKindSecurity, Event: EventFinding,
			PrincipalType: "agent", PrincipalID: agentID, AgentID: agentID,
			Action: EventFinding, Resource: "agent:" + agentID, Result: storage.AuditOK, Reason: string(f.Kind),
			Extra: extra,
		})
	}
	if err := tx.Audit().Append(ctx, recs); err != nil {
		return fmt.Errorf("trust: audit findings: %w", err)
	}
	return nil
}

// storable makes a detail sentence storable by both drivers (valid UTF-8,
// no NUL). Details quote what clients sent, so they are already; a
// refused row would block the agent's flushes for good.
func storable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
