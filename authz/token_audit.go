package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/text"
	"github.com/kavachos/kavach/storage"
)

// Every access token Kavach hands out has a durable audit record
// ("token.issued") written before the response, and a token request from a
// known client that is refused leaves one too ("token.refused", with the
// OAuth error code as the reason) — the trail trust scoring and incident
// review need. Requests that name no known client are not recorded: they
// say nothing about any principal, and anyone can send them.

// Recorder writes an audit record and returns once it is durable
// (AuditWriter does).
type Recorder interface {
	Record(ctx context.Context, r storage.AuditRecord) (int64, error)
}

// Audit events of the token endpoint.
const (
	AuditEventTokenIssued  = "token.issued"
	AuditEventTokenRefused = "token.refused"
)

// grantAction names a grant type in the audit log.
func grantAction(grant string) string {
	switch grant {
	case GrantTokenExchange:
		return "token_exchange"
	case GrantJWTBearer:
		return "jwt_bearer"
	}
	return grant
}

// tokenRecord is the common part of a token endpoint audit record.
func (s *Server) tokenRecord(ctx context.Context, r *http.Request, event, grant, clientID string) storage.AuditRecord {
	rec := storage.AuditRecord{
		ID: id.New("aud"), At: s.cfg.Now().UTC().Truncate(time.Millisecond), Kind: storage.AuditKindSecurity, Event: event, Action: grantAction(grant),
		PrincipalType: "agent", PrincipalID: clientID, UserAgent: text.Clean(r.UserAgent(), 512),
	}
	if s.cfg.ClientIP != nil {
		if ip := s.cfg.ClientIP(r); ip.IsValid() {
			rec.IP = ip.String()
		}
	}
	if a, err := s.agentID(ctx, clientID); err == nil {
		rec.AgentID, rec.PrincipalID = a, a
	}
	return rec
}

// agentID is the agent a client is, through the directory's cache.
func (s *Server) agentID(ctx context.Context, clientID string) (string, error) {
	if s.cfg.Agents == nil {
		return "", fosite.ErrNotFound
	}
	return s.cfg.Agents.AgentIDForClient(ctx, clientID)
}

// tokenRequest is what one token request knows across fosite's calls:
// the grant and the caller (for audit records), the act claim the
// exchange handler prepared, and the claims of the access token issued.
type tokenRequest struct {
	grant, ip, userAgent string
	// agent is the client's agent, once the token endpoint has checked it
	// may act (zero before, or without an agent directory).
	agent  agents.ClientAgent
	act    *Actor
	issued *AccessClaims
	// withheld are the scopes trust policies kept out of the token.
	withheld []string
	// reusedRefreshOf is the client of a refresh token presented after it
	// was rotated or revoked (set by the store when it finds the token
	// inactive), for the refusal's audit record.
	reusedRefreshOf string
}

func (s *Server) withTokenRequest(ctx context.Context, r *http.Request, grant string) context.Context {
	st := &tokenRequest{grant: grant, userAgent: text.Clean(r.UserAgent(), 512)}
	if s.cfg.ClientIP != nil {
		if ip := s.cfg.ClientIP(r); ip.IsValid() {
			st.ip = ip.String()
		}
	}
	return context.WithValue(ctx, ctxTokenRequest, st)
}

func tokenRequestOf(ctx context.Context) *tokenRequest {
	st, _ := ctx.Value(ctxTokenRequest).(*tokenRequest)
	return st
}

// issuedRecord is the audit record of the access token just generated in
// this request, stored in the same transaction as the token's row; nil
// outside a token request.
func (s *Server) issuedRecord(ctx context.Context, req fosite.Requester) *storage.AuditRecord {
	st := tokenRequestOf(ctx)
	if st == nil || st.issued == nil {
		return nil
	}
	c := st.issued
	clientID := req.GetClient().GetID()
	rec := storage.AuditRecord{
		ID: id.New("aud"), At: s.cfg.Now().UTC(), Kind: storage.AuditKindSecurity, Event: AuditEventTokenIssued,
		Action: grantAction(st.grant), PrincipalType: "agent", PrincipalID: clientID, IP: st.ip, UserAgent: st.userAgent,
		Resource: strings.Join(c.Audience, " "), Result: storage.AuditOK,
	}
	if st.agent.ID != "" {
		rec.AgentID, rec.PrincipalID = st.agent.ID, st.agent.ID
	}
	if c.Subject != clientID {
		// The token acts for someone else: a user, or (token exchange) the
		// agent whose token was traded.
		rec.ActingFor = c.Subject
		if a, err := s.agentID(ctx, c.Subject); err == nil {
			rec.ActingFor = a
		}
		rec.Chain = append(rec.Chain, rec.ActingFor)
		for _, actor := range c.Act.Chain() {
			if a, err := s.agentID(ctx, actor); err == nil {
				actor = a
			}
			rec.Chain = append(rec.Chain, actor)
		}
		if c.Act == nil {
			rec.Chain = append(rec.Chain, rec.PrincipalID)
		}
	}
	x := map[string]string{"clientId": clientID, "scope": c.Scope, "jti": c.JTI}
	if len(st.withheld) > 0 {
		x["scopeWithheld"] = strings.Join(st.withheld, " ")
	}
	rec.Extra, _ = json.Marshal(x)
	return &rec
}

// auditRefused records a refused token request of a known client.
func (s *Server) auditRefused(ctx context.Context, r *http.Request, grant string, ar fosite.AccessRequester, refusal error) {
	if s.cfg.Audit == nil {
		return
	}
	clientID := ""
	if ar != nil && ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
	}
	if clientID == "" {
		if id, _, ok := r.BasicAuth(); ok {
			clientID = id
		} else {
			clientID = r.PostForm.Get("client_id")
		}
	}
	if clientID == "" || len(clientID) > 2048 {
		return
	}
	rec := s.tokenRecord(ctx, r, AuditEventTokenRefused, grant, clientID)
	if rec.AgentID == "" {
		return // not a client we know
	}
	rec.Result, rec.Reason = storage.AuditFail, fosite.ErrorToRFC6749Error(refusal).ErrorField
	authenticated := ar != nil && ar.GetClient() != nil && rec.Reason != fosite.ErrInvalidClient.ErrorField
	// Reuse counts when the client presented its own refresh token: one
	// of another client's says nothing about this one's tokens (fosite
	// revokes that grant all the same).
	st := tokenRequestOf(ctx)
	reuse := authenticated && st != nil && st.reusedRefreshOf == clientID
	switch {
	case !authenticated:
		// The client did not authenticate: anyone may have sent this in
		// its name. Trust scoring must not take it as the agent's doing.
		rec.Extra = []byte(`{"authenticated":false}`)
	case reuse:
		rec.Extra = []byte(`{"refreshTokenReuse":true}`)
	}
	if _, err := s.cfg.Audit.Record(ctx, rec); err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("audit a refused token request", "err", err)
		}
		return
	}
	if rec.Reason == fosite.ErrInvalidClient.ErrorField && s.cfg.OnInvalidClient != nil {
		s.cfg.OnInvalidClient(rec.AgentID, rec.At)
	}
	if reuse && s.cfg.OnRefreshTokenReuse != nil {
		s.cfg.OnRefreshTokenReuse(rec.AgentID, rec.At)
	}
}

// clientIPFunc resolves a request's client address (behind trusted
// proxies).
type clientIPFunc = func(*http.Request) netip.Addr
