// Package mcp is MCP glue: resource-server middleware for MCP servers, and
// Kavach's own MCP server.
//
// It owns what an MCP server needs to be an OAuth 2.1 protected resource:
// RFC 9728 protected resource metadata, the RFC 6750 Bearer challenge
// (WWW-Authenticate with resource_metadata and scope), audience and scope
// checks, and handing the verified token to tool handlers through the
// request context. It also builds Kavach's own MCP server (tools such as
// whoami) on github.com/mark3labs/mcp-go.
//
// It does not verify token signatures or know about keys, storage or
// revocation: a [Verifier] (implemented by package authz) does that. It must
// not import the root kavach package; the root package wires it.
package mcp
