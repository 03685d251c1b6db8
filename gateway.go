package kavach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/mcp"
	"github.com/kavachos/kavach/storage"
)

// GatewayOptions configure Kavach's MCP gateway (Gateway; kavach
// gateway), which puts Kavach in front of any Streamable HTTP MCP server.
type GatewayOptions struct {
	// Upstream is the MCP endpoint of the server behind the gateway.
	Upstream string
	// PublicURL is the gateway's MCP URL as clients use it. Tokens are
	// issued for it, so it must be one of Config.OAuth.Resources (on the
	// server that issues them too).
	PublicURL string
	// ServerName names the upstream in permissions: a call of tool T is
	// action "call" on resource "mcp:<ServerName>:T".
	ServerName string
	// UpstreamHeader is sent upstream with every request (its
	// credentials); the client's token never is.
	UpstreamHeader http.Header
	// RequiredScopes every request needs; default ["mcp"]. ToolScopes are
	// the scopes a tools/call of a tool needs besides them; each must be a
	// scope the server knows.
	RequiredScopes []string
	ToolScopes     map[string][]string
	// AllowedOrigins are browser origins allowed besides the gateway's own
	// (see mcp.Protection.AllowedOrigins).
	AllowedOrigins []string
	// ApprovalWait is how long a call that needs a person's approval waits
	// for it before answering APPROVAL_REQUIRED; default 50 s (MCP clients
	// commonly give up on a request after 60 s). 0 uses the default;
	// negative does not wait.
	ApprovalWait time.Duration
}

// DefaultApprovalWait is GatewayOptions.ApprovalWait's default.
const DefaultApprovalWait = 50 * time.Second

// approvalPoll is how often a waiting call looks at its approval.
const approvalPoll = 500 * time.Millisecond

// Gateway returns the MCP gateway's handler: OAuth with this server's
// tokens (the same checks as /mcp, revocation and agent suspension
// included), tools/list filtered to the tools the caller may call, every
// tools/call decided by the decision point first (grants, approvals,
// budgets, rate limits, trust policies, the audit record with the
// arguments' digest), and the rest passed through to Upstream. Mount it
// at the root of the gateway's listener.
func (k *Kavach) Gateway(o GatewayOptions) (http.Handler, error) {
	if !slices.Contains(k.cfg.OAuth.Resources, o.PublicURL) {
		return nil, fmt.Errorf("gateway: public URL %q is not a resource tokens are issued for: add it to KAVACH_OAUTH_RESOURCES", o.PublicURL)
	}
	if o.ServerName == "" || strings.ContainsAny(o.ServerName, ":*") || agents.ValidateResource("mcp:"+o.ServerName+":x") != nil || len(o.ServerName) > 64 {
		return nil, fmt.Errorf("gateway: server name %q must be one resource segment (letters, digits, '_', '-', '.'; no ':')", o.ServerName)
	}
	if len(o.RequiredScopes) == 0 {
		o.RequiredScopes = []string{MCPScope}
	}
	switch {
	case o.ApprovalWait == 0:
		o.ApprovalWait = DefaultApprovalWait
	case o.ApprovalWait < 0:
		o.ApprovalWait = 0
	}
	supported := slices.Clone(o.RequiredScopes)
	for _, scopes := range o.ToolScopes {
		for _, s := range scopes {
			if !slices.Contains(supported, s) {
				supported = append(supported, s)
			}
		}
	}
	h, err := mcp.NewGateway(mcp.GatewayConfig{
		Protection: mcp.Protection{ResourceConfig: mcp.ResourceConfig{
			Resource: o.PublicURL, AuthorizationServers: []string{k.cfg.BaseURL}, ScopesSupported: supported,
			RequiredScopes: o.RequiredScopes, ResourceName: o.ServerName, Verifier: mcpVerifier{k.OAuth, k.Agents}, Logger: k.cfg.Logger,
		}, ToolScopes: o.ToolScopes, AllowedOrigins: o.AllowedOrigins},
		Upstream: o.Upstream, UpstreamHeader: o.UpstreamHeader, Logger: k.cfg.Logger,
		Gate: toolGate{k: k, server: o.ServerName, wait: o.ApprovalWait},
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return k.withCaller(h), nil
}

// toolGate decides a gateway's tool calls with the decision point.
type toolGate struct {
	k      *Kavach
	server string
	wait   time.Duration
}

func (g toolGate) resource(tool string) string { return "mcp:" + g.server + ":" + tool }

func (g toolGate) Visible(ctx context.Context, info *mcp.TokenInfo, tools []string) ([]bool, error) {
	agentID, _, _, err := g.k.tokenPrincipal(ctx, info.Subject, info.ClientID, info.Actors)
	if errors.Is(err, agents.ErrAgentNotFound) {
		return make([]bool, len(tools)), nil
	}
	if err != nil {
		return nil, err
	}
	resources := make([]string, len(tools))
	for i, t := range tools {
		resources[i] = g.resource(t)
	}
	return g.k.Agents.Visible(ctx, agentID, "call", resources)
}

func (g toolGate) Call(ctx context.Context, info *mcp.TokenInfo, tool string, args json.RawMessage) (mcp.ToolVerdict, error) {
	agentID, actingFor, chain, err := g.k.tokenPrincipal(ctx, info.Subject, info.ClientID, info.Actors)
	if errors.Is(err, agents.ErrAgentNotFound) {
		return mcp.ToolVerdict{Code: agents.CodeAgentNotFound, Message: "this token's client is not an agent"}, nil
	}
	if err != nil {
		return mcp.ToolVerdict{}, err
	}
	if string(args) == "null" {
		args = nil
	}
	c, _ := ctx.Value(callerKey{}).(caller)
	req := agents.DecideRequest{AgentID: agentID, Action: "call", Resource: g.resource(tool), Arguments: args,
		IP: c.ip, UserAgent: c.userAgent, TokenID: info.JTI, ActingFor: actingFor, Chain: chain}
	d := g.k.Agents.Decide(ctx, req)
	if d.Code == agents.CodeApprovalRequired && d.ApprovalID != "" && g.wait > 0 {
		d = g.awaitApproval(ctx, req, d)
	}
	if d.Allowed {
		return mcp.ToolVerdict{Allowed: true}, nil
	}
	return mcp.ToolVerdict{Code: d.Code, Message: d.Reason}, nil
}

// awaitApproval holds a call that needs a person's approval until the
// request is decided or the wait is over, then decides the call again
// (which uses the approval).
func (g toolGate) awaitApproval(ctx context.Context, req agents.DecideRequest, d agents.Decision) agents.Decision {
	ctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	t := time.NewTicker(approvalPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.Reason = fmt.Sprintf("waiting for a person to approve (request %s); call again once it is approved", d.ApprovalID)
			return d
		case <-t.C:
		}
		ap, err := g.k.Agents.GetApproval(ctx, d.ApprovalID)
		if err != nil {
			continue // the next tick, or the deadline, decides
		}
		switch ap.Status {
		case storage.ApprovalPending:
			continue
		case storage.ApprovalApproved:
			return g.k.Agents.Decide(context.WithoutCancel(ctx), req)
		default:
			reason := "the approval request was " + ap.Status
			if ap.Reason != "" {
				reason += ": " + ap.Reason
			}
			return agents.Decision{Code: agents.CodeApprovalRequired, Reason: reason, ApprovalID: ap.ID}
		}
	}
}
