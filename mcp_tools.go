package kavach

import (
	"context"
	"net/http"
	"net/netip"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/kavachos/kavach/trust"
)

// Kavach's MCP tools that need the agents service; whoami lives in package
// mcp. Every one that acts goes through Decide, like POST /api/auth/authorize.

type callerKey struct{}

type caller struct {
	ip        netip.Addr
	userAgent string
}

// withCaller notes the client's address (through the trusted-proxy
// resolver) and user agent for the tools, which see only a context.
func (k *Kavach) withCaller(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := caller{ip: k.limits.ip.ClientIP(r), userAgent: r.UserAgent()}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// tokenPrincipal is who a verified access token speaks for: the agent its
// client is, the principal that agent acts for (the token's subject when
// that is not the client itself), and the chain from that principal down
// to the agent, outermost first; actors are the token's act chain, earliest
// first. Client IDs in the chain are given as
// agent IDs, as in the rest of the audit log.
func (k *Kavach) tokenPrincipal(ctx context.Context, sub, clientID string, actors []string) (agentID, actingFor string, chain []string, err error) {
	agentID, err = k.Agents.AgentIDForClient(ctx, clientID)
	if err != nil {
		return "", "", nil, err
	}
	if sub == clientID {
		return agentID, "", nil, nil // the agent for itself: its delegation chain applies
	}
	asAgent := func(id string) string {
		if a, err := k.Agents.AgentIDForClient(ctx, id); err == nil {
			return a
		}
		return id // a user
	}
	actingFor = asAgent(sub)
	chain = []string{actingFor}
	if len(actors) == 0 {
		return agentID, actingFor, append(chain, agentID), nil
	}
	for _, c := range actors {
		chain = append(chain, asAgent(c))
	}
	return agentID, actingFor, chain, nil
}

type authorizeToolResult struct {
	Allowed    bool   `json:"allowed" jsonschema_description:"Whether the action is allowed now"`
	Code       string `json:"code" jsonschema_description:"Stable reason code, ALLOWED when allowed"`
	Reason     string `json:"reason,omitempty" jsonschema_description:"Explanation for people"`
	AuditID    string `json:"auditId,omitempty" jsonschema_description:"Id of the audit record of this decision"`
	ApprovalID string `json:"approvalId,omitempty" jsonschema_description:"Approval request to poll when code is APPROVAL_REQUIRED"`
}

// mcpTools are the tools /mcp serves besides whoami: authorize, my_trust
// and the agent tools of mcp_agent_tools.go.
func (k *Kavach) mcpTools() []server.ServerTool {
	authorize := mcpgo.NewTool("authorize",
		mcpgo.WithDescription("Ask Kavach whether you (the agent this token belongs to) may perform an action on a resource now. "+
			"This is a real decision: it counts against rate limits, may consume an approval, and is recorded in the audit log."),
		mcpgo.WithTitleAnnotation("Authorize an action"),
		mcpgo.WithReadOnlyHintAnnotation(false),
		mcpgo.WithIdempotentHintAnnotation(false),
		mcpgo.WithDestructiveHintAnnotation(false),
		mcpgo.WithOpenWorldHintAnnotation(false),
		mcpgo.WithString("action", mcpgo.Required(), mcpgo.Description("The action, e.g. read or create_issue")),
		mcpgo.WithString("resource", mcpgo.Required(), mcpgo.Description("The concrete resource, ':'-separated, e.g. mcp:github:issues")),
		mcpgo.WithObject("arguments", mcpgo.Description("The call's arguments, for argument constraints")),
		mcpgo.WithOutputSchema[authorizeToolResult](),
	)
	myTrust := mcpgo.NewTool("my_trust",
		mcpgo.WithDescription("Your trust score (0-100) and level as Kavach sees them now, with what each signal contributed: "+
			"allowed and denied decisions, probes, constraint violations, rate limits and more, decayed over time; "+
			"and your newest anomaly findings."),
		mcpgo.WithTitleAnnotation("My trust score"),
		mcpgo.WithReadOnlyHintAnnotation(true),
		mcpgo.WithIdempotentHintAnnotation(true),
		mcpgo.WithDestructiveHintAnnotation(false),
		mcpgo.WithOpenWorldHintAnnotation(false),
		mcpgo.WithOutputSchema[myTrustResult](),
	)
	return append([]server.ServerTool{{Tool: authorize, Handler: k.mcpAuthorize}, {Tool: myTrust, Handler: k.mcpMyTrust}}, k.agentTools()...)
}

type myTrustResult struct {
	AgentID       string               `json:"agentId" jsonschema_description:"The agent the token belongs to"`
	Score         float64              `json:"score" jsonschema_description:"Trust score, 0 to 100"`
	Level         string               `json:"level" jsonschema_description:"untrusted, limited, standard, trusted or elevated"`
	Contributions []trust.Contribution `json:"contributions" jsonschema_description:"What each signal contributed"`
	// The findings make the anomaly contribution explainable to the agent
	// itself: which of its calls looked unlike it.
	LatestFindings []findingView `json:"latestFindings" jsonschema_description:"Your newest anomaly findings (unusual calls), newest first"`
}

func (k *Kavach) mcpMyTrust(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	c, bad, err := k.toolAgent(ctx)
	if bad != nil || err != nil {
		return bad, err
	}
	agentID := c.agentID
	b, _, err := k.Trust.Explain(ctx, agentID)
	if err != nil {
		return nil, err
	}
	fs, err := k.Store.TrustFindings().ListByAgent(ctx, agentID, latestFindings)
	if err != nil {
		return nil, err
	}
	return mcpgo.NewToolResultStructuredOnly(myTrustResult{AgentID: agentID, Score: b.Score, Level: string(b.Level),
		Contributions: b.Contributions[:], LatestFindings: toFindingViews(fs)}), nil
}
