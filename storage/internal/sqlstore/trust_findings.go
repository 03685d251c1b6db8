package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/kavachos/kavach/storage"
)

type trustFindings struct{ s *Store }

const trustFindingColumns = `id, agent_id, kind, at, severity, detail, created_at`

func trustFindingFields(f *storage.TrustFinding) []any {
	return []any{&f.ID, &f.AgentID, &f.Kind, &f.At, &f.Severity, &f.Detail, &f.CreatedAt}
}

func (r trustFindings) Insert(ctx context.Context, f *storage.TrustFinding) error {
	stamp(&f.CreatedAt, now())
	f.At = f.At.UTC().Truncate(time.Millisecond)
	f.CreatedAt = f.CreatedAt.UTC().Truncate(time.Millisecond)
	_, err := r.s.exec(ctx, "trust_findings.insert",
		`INSERT INTO kavach_trust_finding (`+trustFindingColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.AgentID, f.Kind, f.At, f.Severity, f.Detail, f.CreatedAt)
	return err
}

func (r trustFindings) ListByAgent(ctx context.Context, agentID string, limit int) ([]storage.TrustFinding, error) {
	return list(ctx, r.s, "trust_findings.list_by_agent",
		`SELECT `+trustFindingColumns+` FROM kavach_trust_finding WHERE agent_id = ? ORDER BY at DESC, id DESC LIMIT ?`,
		[]any{agentID, limitOrAll(limit)}, trustFindingFields)
}

// latestChunk is how many agents one LatestByAgents query asks about. The
// list is padded to it, so that there is one statement text whatever the
// number of agents (PostgreSQL's rebound statements are cached by text).
const latestChunk = 100

var latestByAgentsQuery = `SELECT ` + trustFindingColumns + ` FROM (
	SELECT ` + trustFindingColumns + `, ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY at DESC, id DESC) AS n
	FROM kavach_trust_finding WHERE agent_id IN (?` + strings.Repeat(", ?", latestChunk-1) + `)
) latest WHERE n <= ? ORDER BY agent_id, at DESC, id DESC`

func (r trustFindings) LatestByAgents(ctx context.Context, agentIDs []string, perAgent int) (map[string][]storage.TrustFinding, error) {
	out := make(map[string][]storage.TrustFinding)
	if perAgent <= 0 {
		return out, nil
	}
	for start := 0; start < len(agentIDs); start += latestChunk {
		chunk := agentIDs[start:min(start+latestChunk, len(agentIDs))]
		args := make([]any, latestChunk+1)
		for i := range latestChunk {
			args[i] = "" // no agent has the empty id
			if i < len(chunk) {
				args[i] = chunk[i]
			}
		}
		args[latestChunk] = perAgent
		rows, err := list(ctx, r.s, "trust_findings.latest_by_agents", latestByAgentsQuery, args, trustFindingFields)
		if err != nil {
			return nil, err
		}
		for _, f := range rows {
			out[f.AgentID] = append(out[f.AgentID], f)
		}
	}
	return out, nil
}

func (r trustFindings) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := r.s.exec(ctx, "trust_findings.delete_before", `DELETE FROM kavach_trust_finding WHERE at < ?`, t.UTC())
	return int(n), err
}
