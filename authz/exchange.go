package authz

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/kavachos/kavach/agents"
)

// RFC 8693 token exchange: an agent trades a token it was handed — a
// user's, or its parent agent's — for a token of its own that is no wider
// than the one it traded, and that says who acts for whom in nested "act"
// claims.
const (
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is the only subject, actor and issued token
	// type: Kavach exchanges its own access tokens.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// maxActDepth bounds the nesting of "act" claims: a delegation chain at
// its deepest, the user it started from, and one more hop.
const maxActDepth = agents.HardMaxDelegationDepth + 2

// Actor is an "act" or "may_act" claim (RFC 8693 §4.1, §4.4): the party
// acting, and in Act the one that acted before it.
type Actor struct {
	Subject string `json:"sub"`
	Act     *Actor `json:"act,omitempty"`
}

// Depth is the number of actors in the chain.
func (a *Actor) Depth() int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// Chain lists the actors from the earliest to the current one.
func (a *Actor) Chain() []string {
	var out []string
	for ; a != nil; a = a.Act {
		out = append(out, a.Subject)
	}
	slices.Reverse(out)
	return out
}

// AgentDirectory is what the token endpoint needs to know about agents:
// *agents.Service provides it.
type AgentDirectory interface {
	// ClientAgent returns the agent an OAuth client is, or an error when
	// it, or an agent above it, may not act.
	ClientAgent(ctx context.Context, clientID string) (agents.ClientAgent, error)
	// AgentIDForClient is the agent a client is, whatever its state.
	AgentIDForClient(ctx context.Context, clientID string) (string, error)
}

// exchangeAct is the "act" claim the exchange handler prepared for the
// token being issued in this request, if any.
func exchangeAct(ctx context.Context) *Actor {
	if st := tokenRequestOf(ctx); st != nil {
		return st.act
	}
	return nil
}

// exchangeHandler is the fosite token endpoint handler of the grant.
type exchangeHandler struct {
	*oauth2.HandleHelper
	s *Server
}

var _ fosite.TokenEndpointHandler = (*exchangeHandler)(nil)

func (h *exchangeHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *exchangeHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantTokenExchange)
}

func exchangeRefused(hint string) error { return fosite.ErrInvalidRequest.WithHint(hint) }

// HandleTokenEndpointRequest checks the exchange (RFC 8693 §2.1) and
// prepares the session of the new token:
//
//   - The client authenticated (fosite did) and is confidential, and has
//     the grant type.
//   - subject_token is an active access token Kavach issued; actor_token,
//     if sent, is one of the client's own (the authenticated client is
//     the actor either way).
//   - The client's agent, and every agent above it, is active, and it may
//     act for the subject token: it is the token's holder (its current
//     actor, or its client), or a sub-agent below the holder, or an agent
//     the token's user created (not a sub-agent: it acts only within its
//     parent's chain). If the subject token carries
//     may_act, it must name the client.
//   - Scopes are those requested (each held by both the subject token and
//     the client) or, when none are, the subject token's that the client
//     has; the audience is the resources named (each in the subject
//     token's audience) or the subject token's.
//   - The new token's sub is the subject token's; its act names the client
//     with the subject token's actors nested inside; it expires no later
//     than the subject token. No refresh token is issued.
func (h *exchangeHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	client := r.GetClient()
	if client.IsPublic() {
		return fosite.ErrUnauthorizedClient.WithHint("A public client cannot exchange tokens.")
	}
	if !client.GetGrantTypes().Has(GrantTokenExchange) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use token exchange.")
	}
	form := r.GetRequestForm()
	if t := form.Get("requested_token_type"); t != "" && t != TokenTypeAccessToken {
		return exchangeRefused("Only access tokens are issued (requested_token_type).")
	}
	subjectToken, subjectType := form.Get("subject_token"), form.Get("subject_token_type")
	if subjectToken == "" || subjectType == "" {
		return exchangeRefused("subject_token and subject_token_type are required.")
	}
	if subjectType != TokenTypeAccessToken {
		return exchangeRefused("subject_token_type must be " + TokenTypeAccessToken + ".")
	}
	subject, err := h.s.VerifyAccessToken(ctx, subjectToken)
	if err != nil {
		if !errors.Is(err, ErrTokenInvalid) {
			return fosite.ErrServerError.WithWrap(err)
		}
		return exchangeRefused("The subject token is invalid, expired or revoked.")
	}
	if actorToken := form.Get("actor_token"); actorToken != "" || form.Get("actor_token_type") != "" {
		if form.Get("actor_token_type") != TokenTypeAccessToken || actorToken == "" {
			return exchangeRefused("actor_token and actor_token_type go together, and the type must be " + TokenTypeAccessToken + ".")
		}
		actor, err := h.s.VerifyAccessToken(ctx, actorToken)
		if err != nil && !errors.Is(err, ErrTokenInvalid) {
			return fosite.ErrServerError.WithWrap(err)
		}
		if err != nil || actor.ClientID != client.GetID() || actor.Act != nil {
			return exchangeRefused("The actor token must be an active access token of the authenticating client.")
		}
	}
	if subject.Act.Depth() >= maxActDepth {
		return exchangeRefused("The subject token's delegation chain is too long.")
	}
	if err := h.s.mayActFor(ctx, client.GetID(), subject); err != nil {
		return err
	}

	// Scopes: never wider than the subject token or the client.
	held := fosite.Arguments(strings.Fields(subject.Scope))
	requested := r.GetRequestedScopes()
	if len(requested) == 0 {
		for _, sc := range held {
			if slices.Contains(client.GetScopes(), sc) {
				r.GrantScope(sc)
			}
		}
		if len(held) > 0 && len(r.GetGrantedScopes()) == 0 {
			return fosite.ErrInvalidScope.WithHint("The client holds none of the subject token's scopes.")
		}
	} else {
		for _, sc := range requested {
			if !held.Has(sc) || !slices.Contains(client.GetScopes(), sc) {
				return fosite.ErrInvalidScope.WithHintf("Scope %q is not held by both the subject token and the client.", sc)
			}
			r.GrantScope(sc)
		}
	}
	// Audience: the resources the token request names (handleToken checks
	// them against what is granted here) or the subject token's.
	for _, a := range subject.Audience {
		r.GrantAudience(a)
	}

	now := h.s.cfg.Now().UTC()
	exp := now.Add(h.s.cfg.AccessTokenTTL)
	if subjectExp := time.Unix(subject.ExpiresAt, 0).UTC(); subjectExp.Before(exp) {
		exp = subjectExp
	}
	sess := r.GetSession()
	sess.SetExpiresAt(fosite.AccessToken, exp.Truncate(time.Second))
	if ds, ok := sess.(interface{ SetSubject(string) }); ok {
		ds.SetSubject(subject.Subject)
	}
	st := tokenRequestOf(ctx)
	if st == nil {
		return fosite.ErrServerError.WithDebug("token exchange outside a token request")
	}
	st.act = nextActor(client.GetID(), subject)
	return nil
}

// nextActor is the act claim of a token clientID gets for subject: the
// client, with the actors of the subject token nested inside. Narrowing a
// token one already holds adds no level.
func nextActor(clientID string, subject *AccessClaims) *Actor {
	switch {
	case subject.Act != nil && subject.Act.Subject == clientID:
		return subject.Act // its own exchanged token: the same chain
	case subject.Act != nil:
		return &Actor{Subject: clientID, Act: subject.Act}
	case subject.ClientID == clientID:
		if subject.Subject == clientID {
			return nil // its own token for itself
		}
		return &Actor{Subject: clientID} // its own token for a user: it acts for the user
	case subject.Subject != subject.ClientID:
		// The subject token was held by a client acting for its subject
		// (say, a user's token issued to an app): that client acted
		// before this one.
		return &Actor{Subject: clientID, Act: &Actor{Subject: subject.ClientID}}
	default:
		return &Actor{Subject: clientID} // another agent's token for itself
	}
}

func (h *exchangeHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if _, err := h.IssueAccessToken(ctx, h.s.cfg.AccessTokenTTL, r, resp); err != nil {
		return err
	}
	resp.SetExtra("issued_token_type", TokenTypeAccessToken)
	return nil
}

// mayActFor applies the exchange policy: see HandleTokenEndpointRequest.
func (s *Server) mayActFor(ctx context.Context, clientID string, subject *AccessClaims) error {
	if s.cfg.Agents == nil {
		return fosite.ErrServerError.WithDebug("token exchange needs an agent directory")
	}
	if subject.MayAct != nil && subject.MayAct.Subject != clientID {
		return exchangeRefused("The subject token's may_act does not name this client.")
	}
	me, err := s.cfg.Agents.ClientAgent(ctx, clientID)
	if err != nil {
		return agentRefusal(err)
	}
	if st := tokenRequestOf(ctx); st != nil {
		st.agent = me // the token endpoint's own check reuses it
	}
	holder := subject.ClientID
	if subject.Act != nil {
		holder = subject.Act.Subject
	}
	if holder == clientID {
		return nil
	}
	if h, err := s.cfg.Agents.ClientAgent(ctx, holder); err == nil {
		if slices.Contains(me.Chain[:len(me.Chain)-1], h.ID) {
			return nil // a sub-agent below the holder
		}
	} else if !errors.Is(err, agents.ErrAgentNotFound) {
		if agents.MayNotAct(err) {
			return exchangeRefused("The agent holding the subject token may not act.")
		}
		return fosite.ErrServerError.WithWrap(err)
	}
	if len(me.Chain) == 1 && me.OwnerUserID != "" && me.OwnerUserID == subject.Subject {
		// The user's own agent, acting for the user. Only an agent the
		// user created: a sub-agent acts within its parent's grant, and
		// may take a token only from its parent's chain.
		return nil
	}
	return exchangeRefused("This client may not act for the subject token: it is neither its holder, a sub-agent of its holder, nor an agent of its user.")
}

// agentRefusal is the token endpoint's answer to a client whose agent may
// not act (or that is no agent at all).
func agentRefusal(err error) error {
	if agents.MayNotAct(err) {
		return fosite.ErrUnauthorizedClient.WithHint("The client's agent is suspended, revoked or expired.")
	}
	return fosite.ErrServerError.WithWrap(err)
}
