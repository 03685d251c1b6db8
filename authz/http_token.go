package authz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// handleToken is the token endpoint: authorization_code, refresh_token,
// client_credentials and, with trusted issuers, jwt-bearer. RFC 8707
// "resource" replaces fosite's non-standard "audience" parameter.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	session := newSession()
	if err := r.ParseForm(); err != nil {
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(session), fosite.ErrInvalidRequest.WithHint("The request body is malformed or too large."))
		return
	}
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
	case GrantTokenExchange:
		if s.cfg.Agents == nil {
			s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(session), fosite.ErrUnsupportedGrantType)
			return
		}
	case GrantJWTBearer:
		if len(s.cfg.TrustedIssuers) == 0 {
			s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(session), fosite.ErrUnsupportedGrantType)
			return
		}
	case "":
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(session), fosite.ErrInvalidRequest.WithHint("The grant_type parameter is missing."))
		return
	default:
		// OAuth 2.1 has no password or implicit grant.
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(session), fosite.ErrUnsupportedGrantType)
		return
	}
	requested := r.PostForm["resource"]
	if grant == GrantTokenExchange {
		// RFC 8693 §2.1 audience: Kavach knows its targets by resource URI,
		// so each audience must be one (invalid_target otherwise), within
		// the subject token's, like resource.
		requested = append(slices.Clone(requested), r.PostForm["audience"]...)
	}
	r.PostForm.Del("audience")
	var audience []string
	// Grants without a prior authorization get the resources they name
	// now, or the default one.
	unattended := grant == GrantClientCredentials || grant == GrantJWTBearer
	if unattended {
		var err error
		if audience, err = s.resolveResources(requested); err != nil {
			s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(session), err)
			return
		}
		for _, a := range audience {
			r.PostForm.Add("audience", a)
		}
	} else if len(requested) > 0 {
		var err error
		if audience, err = s.resolveResources(requested); err != nil {
			s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(session), err)
			return
		}
	}
	if a := r.PostForm.Get("client_assertion"); a != "" {
		ctx = context.WithValue(ctx, ctxAssertionClient, unverifiedSubject(a))
	}
	ctx = s.withTokenRequest(ctx, r, grant)
	claim, err := s.redeem(ctx, grant, r.PostForm)
	if err != nil {
		s.logServerError("token claim", err)
		s.refuse(ctx, w, r, grant, fosite.NewAccessRequest(session), err)
		return
	}
	ar, err := s.provider.NewAccessRequest(ctx, r, session)
	if err != nil {
		claim.release(ctx)
		s.logServerError("token request", err)
		s.refuse(ctx, w, r, grant, ar, assertionError(r, err))
		return
	}
	if st := tokenRequestOf(ctx); s.cfg.Agents != nil && st.agent.ID == "" {
		// Every client is an agent; a suspended, revoked or expired one
		// (or one below such an agent) gets no token by any grant. (Token
		// exchange checked it already.) The agent is kept for the token's
		// claims and audit record.
		a, err := s.cfg.Agents.ClientAgent(ctx, ar.GetClient().GetID())
		if err != nil {
			claim.release(ctx)
			s.logServerError("token request", agentRefusal(err))
			s.refuse(ctx, w, r, grant, ar, agentRefusal(err))
			return
		}
		st.agent = a
	}
	if unattended {
		for _, sc := range ar.GetRequestedScopes() {
			ar.GrantScope(sc)
		}
		for _, a := range audience {
			ar.GrantAudience(a)
		}
	} else if len(audience) > 0 {
		// The resources named at the token endpoint must be among those
		// the grant covers (RFC 8707 §2.2): never widened. For a code the
		// authorized audience is still "requested" here (fosite grants it
		// when it builds the response); for a refresh it is granted.
		authorized := ar.GetGrantedAudience()
		if len(authorized) == 0 {
			authorized = ar.GetRequestedAudience()
		}
		for _, a := range audience {
			if !authorized.Has(a) {
				claim.release(ctx)
				s.refuse(ctx, w, r, grant, ar, errInvalidTarget)
				return
			}
		}
		// The access token is for exactly the resources named here (so a
		// token meant for one MCP server is not accepted by another); the
		// grant keeps them all for later refreshes.
		ctx = context.WithValue(ctx, ctxAccessAudience, audience)
	}
	if err := s.withholdScopes(ctx, ar); err != nil {
		claim.release(ctx)
		s.logServerError("token request", err)
		s.refuse(ctx, w, r, grant, ar, err)
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		claim.release(ctx)
		s.logServerError("token response", err)
		s.refuse(ctx, w, r, grant, ar, err)
		return
	}
	if claim.contested(ctx) {
		s.refuse(ctx, w, r, grant, ar, errRedeemedTwice)
		return
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// refuse answers a token request with an OAuth error, and records the
// refusal when the client is known.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, r *http.Request, grant string, ar fosite.AccessRequester, err error) {
	s.auditRefused(ctx, r, grant, ar, err)
	s.provider.WriteAccessError(ctx, w, ar, err)
}

// assertionError reports a client assertion signed with a key the client
// did not register as invalid_client (RFC 6749 §5.2: client authentication
// failed); fosite calls it invalid_request.
func assertionError(r *http.Request, err error) error {
	if r.PostForm.Get("client_assertion") == "" {
		return err
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.ErrorField == fosite.ErrInvalidRequest.ErrorField &&
		strings.Contains(rfc.HintField+" "+rfc.DebugField, "JSON Web Token") {
		return fosite.ErrInvalidClient.WithHint("The client assertion could not be verified with the client's registered keys.")
	}
	return err
}

// unverifiedSubject reads "sub" from a JWT without checking it; fosite
// verifies the assertion right after.
func unverifiedSubject(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || len(parts[1]) > 8192 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Sub
}

// handleIntrospect is RFC 7662. The caller must authenticate as a client,
// with any method the token endpoint accepts (fosite's own handler only
// reads HTTP Basic, and would also take any bearer token as credentials).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body is malformed or too large.")
		return
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
		w.Header().Set("WWW-Authenticate", `Basic realm="kavach"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Introspection needs client authentication, not a bearer token.")
		return
	}
	if a := r.PostForm.Get("client_assertion"); a != "" {
		ctx = context.WithValue(ctx, ctxAssertionClient, unverifiedSubject(a))
	}
	client, err := s.provider.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil || client.IsPublic() {
		w.Header().Set("WWW-Authenticate", `Basic realm="kavach"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The token parameter is missing.")
		return
	}
	use, ar, err := s.provider.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), newSession())
	if err == nil && !s.mayIntrospect(ctx, client, ar, use) {
		err = fosite.ErrInactiveToken // others' tokens look inactive: no oracle
	}
	if err == nil && !s.agentMayAct(ctx, ar.GetClient().GetID()) {
		err = fosite.ErrInactiveToken // its agent (or one above it) is suspended, revoked or expired
	}
	resp := &fosite.IntrospectionResponse{Active: err == nil, AccessRequester: ar, TokenUse: use}
	if use == fosite.AccessToken {
		resp.AccessTokenType = "Bearer"
	}
	s.provider.WriteIntrospectionResponse(ctx, w, resp)
}

// mayIntrospect: a client may introspect its own tokens; operator-registered
// clients (resource servers; see operatorClient) may also introspect
// others' access tokens. Nobody learns about another client's refresh
// tokens, and an agent's own client is no resource server.
func (s *Server) mayIntrospect(ctx context.Context, caller fosite.Client, ar fosite.AccessRequester, use fosite.TokenUse) bool {
	if ar == nil || ar.GetClient() == nil {
		return false
	}
	if ar.GetClient().GetID() == caller.GetID() {
		return true
	}
	c, ok := caller.(*Client)
	return ok && use == fosite.AccessToken && s.operatorClient(ctx, c)
}

// handleRevoke is RFC 7009. Revoking a refresh token also revokes the
// access tokens of its grant.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body is malformed or too large.")
		return
	}
	if a := r.PostForm.Get("client_assertion"); a != "" {
		ctx = context.WithValue(ctx, ctxAssertionClient, unverifiedSubject(a))
	}
	err := s.provider.NewRevocationRequest(ctx, r)
	if err != nil {
		s.logServerError("revocation", err)
	}
	s.provider.WriteRevocationResponse(ctx, w, err)
}

// agentMayAct reports whether the client's agent, and every agent above
// it, may act now (true without an agent directory). A failure to find
// out counts as no.
func (s *Server) agentMayAct(ctx context.Context, clientID string) bool {
	if s.cfg.Agents == nil {
		return true
	}
	_, err := s.cfg.Agents.ClientAgent(ctx, clientID)
	return err == nil
}

// logServerError logs what fosite reports as a server error (its cause is
// never sent to clients).
func (s *Server) logServerError(what string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		s.cfg.Logger.Error(what+" failed", "err", err, "debug", rfc.DebugField, "cause", rfc.Unwrap())
	}
}

// withholdScopes applies the trust policies on scopes (Config.TrustScopes)
// to an agent's token: the scopes its level does not reach are left out,
// and a request left with none of its scopes is refused.
func (s *Server) withholdScopes(ctx context.Context, ar fosite.AccessRequester) error {
	st := tokenRequestOf(ctx)
	if s.cfg.TrustScopes == nil || st == nil || st.agent.ID == "" {
		return nil
	}
	granted := ar.GetGrantedScopes()
	code := len(granted) == 0 && ar.GetGrantTypes().ExactOne(GrantAuthorizationCode)
	if code {
		// fosite grants a code's scopes only while it builds the response,
		// from the stored code (where fositeStore.GetAuthorizeCodeSession
		// leaves out what is withheld here). The code was granted what it
		// asked for, which fosite has copied into the requested scopes.
		granted = ar.GetRequestedScopes()
	}
	if len(granted) == 0 {
		return nil
	}
	withheld, why, err := s.cfg.TrustScopes(ctx, st.agent, granted)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if len(withheld) == 0 {
		return nil
	}
	if len(withheld) >= len(granted) {
		return fosite.ErrInvalidScope.WithHint(why)
	}
	st.withheld = withheld
	if code {
		return nil
	}
	req, ok := ar.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebug("the access request cannot be narrowed")
	}
	kept := make(fosite.Arguments, 0, len(granted)-len(withheld))
	for _, sc := range granted {
		if !slices.Contains(withheld, sc) {
			kept = append(kept, sc)
		}
	}
	req.GrantedScope = kept
	return nil
}
