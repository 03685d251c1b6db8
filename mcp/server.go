package mcp

import (
	"context"
	"net/http"
	"runtime/debug"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ServerName is the name Kavach's own MCP server reports in initialize.
const ServerName = "kavach"

// NewServer builds Kavach's own MCP server with its tools. Its tool handlers
// read the caller's token with TokenFromContext, so the server must be
// served behind RequireBearer (Handler does that).
func NewServer(name, version string, tools ...server.ServerTool) *server.MCPServer {
	s := server.NewMCPServer(name, version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions("Kavach identity server. Call whoami to see which principal, client, scopes and audience your access token carries."),
	)
	s.AddTool(whoamiTool(), whoami)
	s.AddTools(tools...)
	return s
}

// Handler serves Kavach's own MCP server over Streamable HTTP behind
// RequireBearer, for mounting at the path of cfg.Resource (/mcp). The
// metadata is not served here: mount MetadataHandler(cfg) at
// MetadataPath(cfg.Resource).
//
// The transport is stateless: no Mcp-Session-Id is issued or kept, so any
// node can answer any request and nothing accumulates in memory per client.
// Handler panics if cfg fails Validate. tools are served besides whoami.
func Handler(cfg ResourceConfig, tools ...server.ServerTool) http.Handler {
	streamable := server.NewStreamableHTTPServer(NewServer(ServerName, buildVersion(), tools...),
		// Sessions would be node-local state (and mcp-go keeps each
		// initialized one until DELETE); the tools need none.
		server.WithStateLess(true),
		// mcp-go refuses requests that reach a loopback listener with a
		// non-loopback Host, against DNS rebinding of local servers. Kavach
		// is a remote server, commonly behind a reverse proxy on the same
		// host that keeps the public Host, and every request already needs
		// a bearer token that a rebinding page cannot attach.
		server.WithDisableLocalhostProtection(true),
	)
	return RequireBearer(cfg, streamable)
}

// buildVersion is the kavach module version from the binary's build
// information, "(devel)" for builds from a work tree.
func buildVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// WhoAmI is the result of the whoami tool: what the caller's access token
// says about it.
type WhoAmI struct {
	Principal  string   `json:"principal" jsonschema_description:"Subject of the access token: the user or agent acting"`
	ClientID   string   `json:"client_id" jsonschema_description:"OAuth client the token was issued to"`
	Scopes     []string `json:"scopes" jsonschema_description:"Scopes granted to the token"`
	Audience   []string `json:"audience" jsonschema_description:"Resources the token is valid for"`
	ExpiresAt  string   `json:"expires_at" jsonschema_description:"Expiry of the token (RFC 3339)"`
	IssuedAt   string   `json:"issued_at,omitempty" jsonschema_description:"Issue time of the token (RFC 3339)"`
	AuthTime   string   `json:"auth_time,omitempty" jsonschema_description:"When the human last authenticated (RFC 3339), if known"`
	Actors     []string `json:"actors,omitempty" jsonschema_description:"Clients acting for the principal through token exchange, earliest first (the token's nested act claims)"`
	TrustLevel string   `json:"trust_level,omitempty" jsonschema_description:"Trust level of the client's agent when the token was issued"`
}

func whoamiTool() mcpgo.Tool {
	return mcpgo.NewTool("whoami",
		mcpgo.WithDescription("Describe the caller: principal, OAuth client, scopes, audience and expiry of the access token used for this request."),
		mcpgo.WithTitleAnnotation("Who am I"),
		mcpgo.WithReadOnlyHintAnnotation(true),
		mcpgo.WithIdempotentHintAnnotation(true),
		mcpgo.WithDestructiveHintAnnotation(false),
		mcpgo.WithOpenWorldHintAnnotation(false),
		mcpgo.WithOutputSchema[WhoAmI](),
	)
}

func whoami(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	info, ok := TokenFromContext(ctx)
	if !ok {
		// A tool error rather than a protocol error: the server was mounted
		// without RequireBearer, which the caller cannot fix by retrying.
		return mcpgo.NewToolResultError("no verified access token on this request"), nil
	}
	return mcpgo.NewToolResultStructuredOnly(whoAmIFrom(info)), nil
}

func whoAmIFrom(info *TokenInfo) WhoAmI {
	out := WhoAmI{
		Principal: info.Subject,
		ClientID:  info.ClientID,
		Scopes:    nonNil(info.Scopes),
		Audience:  nonNil(info.Audience),
		ExpiresAt: rfc3339(info.ExpiresAt),
		IssuedAt:  rfc3339(info.IssuedAt),
	}
	if info.AuthTime != nil {
		out.AuthTime = rfc3339(*info.AuthTime)
	}
	out.Actors = info.Actors
	out.TrustLevel = info.TrustLevel
	return out
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// nonNil keeps JSON arrays as [] rather than null, which the output schema
// would refuse.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
