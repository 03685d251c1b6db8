package kavach

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/mcp"
)

// Kavach's MCP tools for agents about themselves: what they may do
// (list_my_permissions, check_permission), asking a person ahead of a call
// (request_approval, approval_status), and handing part of their grants to
// a sub-agent (delegate). Each speaks for the agent whose client the
// access token belongs to, and for no other.

// toolCaller is the agent a tool call speaks for.
type toolCaller struct {
	agentID, actingFor string
	chain              []string
	jti                string
	caller
}

// toolAgent resolves the calling agent from the verified token; errResult
// is the tool's answer when there is none.
func (k *Kavach) toolAgent(ctx context.Context) (c toolCaller, errResult *mcpgo.CallToolResult, err error) {
	info, ok := mcp.TokenFromContext(ctx)
	if !ok {
		return c, mcpgo.NewToolResultError("no verified access token on this request"), nil
	}
	c.agentID, c.actingFor, c.chain, err = k.tokenPrincipal(ctx, info.Subject, info.ClientID, info.Actors)
	if errors.Is(err, agents.ErrAgentNotFound) {
		return c, mcpgo.NewToolResultError("this token's client is not an agent"), nil
	}
	c.jti = info.JTI
	c.caller, _ = ctx.Value(callerKey{}).(caller)
	return c, nil, err
}

// callArguments reads the action, resource and optional arguments object
// every decision tool takes; errResult names the field that is wrong.
func callArguments(req mcpgo.CallToolRequest) (action, resource string, args json.RawMessage, errResult *mcpgo.CallToolResult) {
	action, err := req.RequireString("action")
	if err != nil || action == "" {
		return "", "", nil, mcpgo.NewToolResultError("action: a non-empty string is required")
	}
	resource, err = req.RequireString("resource")
	if err != nil || resource == "" {
		return "", "", nil, mcpgo.NewToolResultError("resource: a non-empty string is required")
	}
	if raw, ok := req.GetArguments()["arguments"]; ok && raw != nil {
		if _, isObject := raw.(map[string]any); !isObject {
			return "", "", nil, mcpgo.NewToolResultError("arguments: must be an object")
		}
		if args, err = json.Marshal(raw); err != nil {
			return "", "", nil, mcpgo.NewToolResultError("arguments: cannot be encoded as JSON")
		}
	}
	return action, resource, args, nil
}

// decideTool makes the decision a decision tool asks for.
func (k *Kavach) decideTool(ctx context.Context, req mcpgo.CallToolRequest, dryRun, openApproval bool) (*mcpgo.CallToolResult, error) {
	action, resource, args, bad := callArguments(req)
	if bad != nil {
		return bad, nil
	}
	c, bad, err := k.toolAgent(ctx)
	if bad != nil || err != nil {
		return bad, err
	}
	d := k.Agents.Decide(ctx, agents.DecideRequest{AgentID: c.agentID, Action: action, Resource: resource, Arguments: args,
		IP: c.ip, UserAgent: c.userAgent, TokenID: c.jti, ActingFor: c.actingFor, Chain: c.chain,
		DryRun: dryRun, OpenApproval: openApproval})
	out := authorizeToolResult{Allowed: d.Allowed, Code: d.Code, AuditID: d.AuditID, ApprovalID: d.ApprovalID}
	if !d.Allowed || dryRun {
		out.Reason = d.Reason
	}
	return mcpgo.NewToolResultStructuredOnly(out), nil
}

func (k *Kavach) mcpAuthorize(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	return k.decideTool(ctx, req, false, false)
}

func (k *Kavach) mcpCheckPermission(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	return k.decideTool(ctx, req, true, false)
}

func (k *Kavach) mcpRequestApproval(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	return k.decideTool(ctx, req, true, true)
}

type permissionsToolResult struct {
	AgentID     string         `json:"agentId" jsonschema_description:"The agent the token belongs to"`
	ParentID    *string        `json:"parentId,omitempty" jsonschema_description:"The agent that delegated to this one, whose grants also bound it"`
	Status      string         `json:"status" jsonschema_description:"active, suspended or revoked"`
	ExpiresAt   *time.Time     `json:"expiresAt,omitempty" jsonschema_description:"When you expire, if ever"`
	Permissions []agents.Grant `json:"permissions" jsonschema_description:"Your grants: resource patterns, actions, effect and constraints"`
}

func (k *Kavach) mcpListMyPermissions(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	c, bad, err := k.toolAgent(ctx)
	if bad != nil || err != nil {
		return bad, err
	}
	a, grants, err := k.Agents.Get(ctx, c.agentID)
	if err != nil {
		return nil, err
	}
	if grants == nil {
		grants = []agents.Grant{}
	}
	return mcpgo.NewToolResultStructuredOnly(permissionsToolResult{AgentID: a.ID, ParentID: a.ParentID,
		Status: a.Status, ExpiresAt: a.ExpiresAt, Permissions: grants}), nil
}

type approvalToolResult struct {
	ApprovalID    string     `json:"approvalId" jsonschema_description:"The approval request"`
	Status        string     `json:"status" jsonschema_description:"pending, approved, denied, expired or consumed"`
	Mode          string     `json:"mode,omitempty" jsonschema_description:"once or window, when approved"`
	Action        string     `json:"action"`
	Resource      string     `json:"resource"`
	ExpiresAt     time.Time  `json:"expiresAt" jsonschema_description:"When a pending request lapses"`
	ApprovedUntil *time.Time `json:"approvedUntil,omitempty" jsonschema_description:"End of a window approval"`
	Reason        string     `json:"reason,omitempty" jsonschema_description:"What the person who decided said"`
}

func (k *Kavach) mcpApprovalStatus(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	approvalID, err := req.RequireString("approvalId")
	if err != nil || approvalID == "" {
		return mcpgo.NewToolResultError("approvalId: a non-empty string is required"), nil
	}
	c, bad, err := k.toolAgent(ctx)
	if bad != nil || err != nil {
		return bad, err
	}
	a, err := k.Agents.GetApproval(ctx, approvalID)
	if errors.Is(err, agents.ErrApprovalNotFound) || err == nil && a.AgentID != c.agentID {
		return mcpgo.NewToolResultError("approvalId: no such approval request of yours"), nil
	}
	if err != nil {
		return nil, err
	}
	v := toApprovalView(a)
	st := v.Status
	if v.ConsumedAt != nil {
		st = "consumed" // a once approval its call has used
	}
	return mcpgo.NewToolResultStructuredOnly(approvalToolResult{ApprovalID: v.ID, Status: st, Mode: v.Mode, Action: v.Action,
		Resource: v.Resource, ExpiresAt: v.ExpiresAt, ApprovedUntil: v.ApprovedUntil, Reason: v.Reason}), nil
}

type delegateToolResult struct {
	AgentID     string         `json:"agentId" jsonschema_description:"The new sub-agent"`
	APIKey      string         `json:"apiKey" jsonschema_description:"The sub-agent's API key, shown once: store it now"`
	ExpiresAt   *time.Time     `json:"expiresAt,omitempty" jsonschema_description:"When the sub-agent expires (never later than you)"`
	Permissions []agents.Grant `json:"permissions" jsonschema_description:"What the sub-agent may do: a subset of your grants"`
}

// maxDelegateTTL bounds expiresInSeconds (the parent's own expiry bounds
// it further).
const maxDelegateTTL = 365 * 24 * time.Hour

func (k *Kavach) mcpDelegate(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	name, err := req.RequireString("name")
	if err != nil || name == "" {
		return mcpgo.NewToolResultError("name: a non-empty string is required"), nil
	}
	raw, ok := req.GetArguments()["permissions"]
	if _, isList := raw.([]any); !ok || !isList {
		return mcpgo.NewToolResultError("permissions: a list of grants is required, e.g. [{\"resource\":\"mcp:github:issues\",\"actions\":[\"read\"]}]"), nil
	}
	var grants []agents.Grant
	b, err := json.Marshal(raw)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(&grants)
	}
	if err != nil {
		return mcpgo.NewToolResultError("permissions: " + err.Error()), nil
	}
	var expires *time.Time
	if v, ok := req.GetArguments()["expiresInSeconds"]; ok && v != nil {
		secs, isNum := v.(float64)
		if !isNum || secs < 1 || secs > maxDelegateTTL.Seconds() || secs != float64(int64(secs)) {
			return mcpgo.NewToolResultError(fmt.Sprintf("expiresInSeconds: a whole number from 1 to %d", int64(maxDelegateTTL.Seconds()))), nil
		}
		t := k.cfg.Now().Add(time.Duration(secs) * time.Second)
		expires = &t
	}
	c, bad, err := k.toolAgent(ctx)
	if bad != nil || err != nil {
		return bad, err
	}
	// Delegate checks the whole chain's status; its refusals are tool
	// errors below.
	child, granted, key, err := k.Agents.Delegate(agents.WithActor(ctx, "agent", c.agentID), c.agentID,
		agents.DelegateInput{Name: name, Permissions: grants, ExpiresAt: expires})
	if err != nil {
		if status, code, msg := errorResponse(err); status < 500 {
			return mcpgo.NewToolResultError(code + ": " + msg), nil
		}
		return nil, err
	}
	return mcpgo.NewToolResultStructuredOnly(delegateToolResult{AgentID: child.ID, APIKey: key, ExpiresAt: child.ExpiresAt,
		Permissions: granted}), nil
}

// agentTools are the tools above, with their schemas.
func (k *Kavach) agentTools() []server.ServerTool {
	decisionParams := func(what string) []mcpgo.ToolOption {
		return []mcpgo.ToolOption{
			mcpgo.WithString("action", mcpgo.Required(), mcpgo.Description("The action, e.g. read or create_issue")),
			mcpgo.WithString("resource", mcpgo.Required(), mcpgo.Description("The concrete resource "+what+", ':'-separated, e.g. mcp:github:issues")),
			mcpgo.WithObject("arguments", mcpgo.Description("The call's arguments, for argument constraints")),
			mcpgo.WithOutputSchema[authorizeToolResult](),
		}
	}
	readOnly := []mcpgo.ToolOption{mcpgo.WithReadOnlyHintAnnotation(true), mcpgo.WithIdempotentHintAnnotation(true),
		mcpgo.WithDestructiveHintAnnotation(false), mcpgo.WithOpenWorldHintAnnotation(false)}
	tool := func(name, title, description string, opts ...mcpgo.ToolOption) mcpgo.Tool {
		return mcpgo.NewTool(name, append([]mcpgo.ToolOption{mcpgo.WithDescription(description), mcpgo.WithTitleAnnotation(title)}, opts...)...)
	}
	check := tool("check_permission", "Check a permission",
		"Would you (the agent this token belongs to) be allowed to perform an action on a resource now? A dry run: "+
			"it uses no rate limit, budget or approval, moves no trust score, and is recorded as a check, not as a call.",
		append(append([]mcpgo.ToolOption{}, readOnly...), decisionParams("you would act on")...)...)
	request := tool("request_approval", "Request approval ahead of a call",
		"Ask a person (your owner, or an admin) to approve an action you will need, before you make the call. "+
			"Answers APPROVAL_REQUIRED with the request to poll with approval_status, ALLOWED when no approval is needed "+
			"(or one already applies), or why the call would be refused anyway. Nothing is consumed.",
		append([]mcpgo.ToolOption{mcpgo.WithReadOnlyHintAnnotation(false), mcpgo.WithIdempotentHintAnnotation(true),
			mcpgo.WithDestructiveHintAnnotation(false), mcpgo.WithOpenWorldHintAnnotation(false)}, decisionParams("you will act on")...)...)
	status := tool("approval_status", "Approval status",
		"The state of one of your approval requests: pending, approved (once or for a window), denied, expired or consumed.",
		append(append([]mcpgo.ToolOption{}, readOnly...),
			mcpgo.WithString("approvalId", mcpgo.Required(), mcpgo.Description("The request's id, as APPROVAL_REQUIRED answers gave it")),
			mcpgo.WithOutputSchema[approvalToolResult]())...)
	perms := tool("list_my_permissions", "My permissions",
		"Your grants (resource patterns, actions, constraints) and, for a sub-agent, the agent above you whose grants also bound you.",
		append(append([]mcpgo.ToolOption{}, readOnly...), mcpgo.WithOutputSchema[permissionsToolResult]())...)
	delegate := tool("delegate", "Delegate to a sub-agent",
		"Create a sub-agent with a subset of your grants. It gets its own API key (shown once), expires no later than you, "+
			"and every call it makes is also checked against your grants.",
		mcpgo.WithReadOnlyHintAnnotation(false), mcpgo.WithIdempotentHintAnnotation(false),
		mcpgo.WithDestructiveHintAnnotation(false), mcpgo.WithOpenWorldHintAnnotation(false),
		mcpgo.WithString("name", mcpgo.Required(), mcpgo.Description("The sub-agent's name")),
		mcpgo.WithArray("permissions", mcpgo.Required(), mcpgo.Description(
			`Grants to hand down, each covered by yours: [{"resource":"mcp:github:issues","actions":["read"]}]`),
			mcpgo.Items(map[string]any{"type": "object"})),
		mcpgo.WithNumber("expiresInSeconds", mcpgo.Description("Lifetime in seconds (default: yours)")),
		mcpgo.WithOutputSchema[delegateToolResult](),
	)
	return []server.ServerTool{
		{Tool: check, Handler: k.mcpCheckPermission},
		{Tool: request, Handler: k.mcpRequestApproval},
		{Tool: status, Handler: k.mcpApprovalStatus},
		{Tool: perms, Handler: k.mcpListMyPermissions},
		{Tool: delegate, Handler: k.mcpDelegate},
	}
}
