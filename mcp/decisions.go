package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// KavachDecisions is a CallGate that asks Kavach's decision point about
// each tool call (POST /api/auth/authorize with the caller's token), as
// the resource server it is: a call of tool T is action "call" on
// resource "mcp:<ServerName>:T", with the call's arguments for argument
// constraints, so grants, approvals, budgets, rate limits and trust
// policies apply and the audit log records each call. The server
// authenticates with a client an operator registered (kavach client
// create --grant client_credentials).
//
// A call that needs approval is refused with APPROVAL_REQUIRED and the
// request's id in the message; the caller calls again once a person has
// approved it (the gateway, unlike the kit, waits).
type KavachDecisions struct {
	// Issuer is Kavach's base URL.
	Issuer string
	// ServerName names this server in permissions.
	ServerName string
	// ClientID and ClientSecret are the server's own credentials.
	ClientID, ClientSecret string
	// HTTPClient reaches Kavach; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// ClientIP gives the caller's address from the request's remote
	// address; default the remote address itself. Behind a proxy, set it
	// to read the proxy's header, or leave the address out by returning "".
	ClientIP func(remoteAddr string) string
}

// decisionAnswer is Kavach's answer to POST /api/auth/authorize.
type decisionAnswer struct {
	Success bool `json:"success"`
	Data    struct {
		Allowed    bool   `json:"allowed"`
		Code       string `json:"code"`
		Reason     string `json:"reason"`
		ApprovalID string `json:"approvalId"`
	} `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Call implements CallGate.
func (d KavachDecisions) Call(ctx context.Context, _ *TokenInfo, tool string, arguments json.RawMessage) (ToolVerdict, error) {
	token, _ := ctx.Value(rawTokenKey{}).(string)
	if token == "" {
		return ToolVerdict{}, errors.New("mcp: KavachDecisions needs the request's bearer token (serve it behind Protect)")
	}
	if d.ServerName == "" || strings.ContainsAny(d.ServerName, ":*") {
		return ToolVerdict{}, fmt.Errorf("mcp: KavachDecisions.ServerName %q must be one resource segment", d.ServerName)
	}
	body := map[string]any{"token": token, "action": "call", "resource": "mcp:" + d.ServerName + ":" + tool}
	if len(arguments) > 0 && string(arguments) != "null" {
		body["arguments"] = arguments
	}
	if c, ok := ctx.Value(callerKey{}).(callerInfo); ok {
		ip := c.remoteAddr
		if d.ClientIP != nil {
			ip = d.ClientIP(c.remoteAddr)
		} else if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		if ip != "" {
			body["ip"] = ip
		}
		if c.userAgent != "" {
			body["userAgent"] = c.userAgent
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return ToolVerdict{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(d.Issuer, "/")+"/api/auth/authorize", bytes.NewReader(raw))
	if err != nil {
		return ToolVerdict{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(url.QueryEscape(d.ClientID), url.QueryEscape(d.ClientSecret)) // RFC 6749 §2.3.1
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return ToolVerdict{}, fmt.Errorf("mcp: ask Kavach about a call: %w", err)
	}
	defer resp.Body.Close()
	var ans decisionAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans); err != nil {
		return ToolVerdict{}, fmt.Errorf("mcp: Kavach's answer (%d) does not parse: %w", resp.StatusCode, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && ans.Success:
	case resp.StatusCode == http.StatusBadRequest && ans.Error != nil && ans.Error.Code == "INVALID_TOKEN":
		// Revoked since the kit checked it, say.
		return ToolVerdict{Code: "INVALID_TOKEN", Message: ans.Error.Message}, nil
	case ans.Error != nil:
		return ToolVerdict{}, fmt.Errorf("mcp: Kavach refused the question (%d %s): %s", resp.StatusCode, ans.Error.Code, ans.Error.Message)
	default:
		return ToolVerdict{}, fmt.Errorf("mcp: Kavach answered %d", resp.StatusCode)
	}
	if ans.Data.Allowed {
		return ToolVerdict{Allowed: true}, nil
	}
	msg := ans.Data.Reason
	if ans.Data.ApprovalID != "" {
		msg += " (approval request " + ans.Data.ApprovalID + "; call again once it is approved)"
	}
	return ToolVerdict{Code: ans.Data.Code, Message: msg}, nil
}
