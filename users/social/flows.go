package social

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Fixed endpoints of the built-ins.
const (
	githubAuthURL   = "https://github.com/login/oauth/authorize"
	githubTokenURL  = "https://github.com/login/oauth/access_token"
	githubUserURL   = "https://api.github.com/user"
	githubEmailsURL = "https://api.github.com/user/emails"

	discordAuthURL  = "https://discord.com/oauth2/authorize"
	discordTokenURL = "https://discord.com/api/oauth2/token"
	discordUserURL  = "https://discord.com/api/users/@me"

	googleIssuer = "https://accounts.google.com"
	appleIssuer  = "https://appleid.apple.com"
	gitlabIssuer = "https://gitlab.com"
	msLogin      = "https://login.microsoftonline.com"
	// msConsumersTenant is the tenant of personal Microsoft accounts.
	msConsumersTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
)

var defaultScopes = map[string][]string{
	TypeGitHub:    {"read:user", "user:email"},
	TypeDiscord:   {"identify", "email"},
	TypeGoogle:    {oidc.ScopeOpenID, "email", "profile"},
	TypeMicrosoft: {oidc.ScopeOpenID, "email", "profile"},
	TypeApple:     {"name", "email"},
	TypeGitLab:    {oidc.ScopeOpenID, "email", "profile"},
	TypeOIDC:      {oidc.ScopeOpenID, "email", "profile"},
}

func (p *provider) scopes() []string {
	if len(p.cfg.Scopes) > 0 {
		s := append([]string(nil), p.cfg.Scopes...)
		if p.oidc() && !contains(s, oidc.ScopeOpenID) {
			s = append([]string{oidc.ScopeOpenID}, s...)
		}
		return s
	}
	s := defaultScopes[p.typ]
	if p.typ == TypeApple {
		// Apple wants openid too, but only ever sends the name and email
		// scopes' data in the ID token.
		s = append([]string{oidc.ScopeOpenID}, s...)
	}
	return s
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// issuer is where discovery starts for an OIDC provider.
func (p *provider) issuer() string {
	if p.cfg.Issuer != "" {
		return strings.TrimRight(p.cfg.Issuer, "/")
	}
	switch p.typ {
	case TypeGoogle:
		return googleIssuer
	case TypeApple:
		return appleIssuer
	case TypeGitLab:
		return gitlabIssuer
	case TypeMicrosoft:
		return msLogin + "/" + p.tenant() + "/v2.0"
	}
	return ""
}

func (p *provider) tenant() string {
	if p.cfg.Tenant == "" {
		return "common"
	}
	return p.cfg.Tenant
}

// discovered is an OIDC provider's metadata and ID token verifier.
type discovered struct {
	prov     *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// issuer is the discovery document's issuer. Microsoft's multi-tenant
	// documents name "{tenantid}" in it, filled from the token's tid.
	issuer string
}

func (p *provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.reg.client)
}

// discover fetches the OIDC metadata once; a failure is retried at the
// next use.
func (p *provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	dctx := p.ctx(ctx)
	if p.typ == TypeMicrosoft {
		// Microsoft's documents for common, organizations and consumers
		// name the issuer "https://login.microsoftonline.com/{tenantid}/v2.0":
		// it differs from the discovery URL, and from token to token. The
		// issuer is checked per token instead (checkMicrosoftIssuer).
		dctx = oidc.InsecureIssuerURLContext(dctx, p.issuer())
	}
	prov, err := oidc.NewProvider(dctx, p.issuer())
	if err != nil {
		return nil, providerError("discovery at "+p.issuer(), err)
	}
	var meta struct {
		Issuer string `json:"issuer"`
	}
	if err := prov.Claims(&meta); err != nil {
		return nil, providerError("discovery document", err)
	}
	if prov.Endpoint().AuthURL == "" || prov.Endpoint().TokenURL == "" {
		return nil, providerError("discovery document without endpoints", nil)
	}
	vcfg := &oidc.Config{ClientID: p.cfg.ClientID, Now: p.reg.now, SkipIssuerCheck: p.typ == TypeMicrosoft}
	d := &discovered{
		prov:     prov,
		verifier: prov.VerifierContext(p.ctx(context.Background()), vcfg),
		issuer:   meta.Issuer,
	}
	p.disc = d
	return d, nil
}

func (p *provider) endpoint(ctx context.Context) (oauth2.Endpoint, error) {
	if p.oidc() {
		d, err := p.discover(ctx)
		if err != nil {
			return oauth2.Endpoint{}, err
		}
		ep := d.prov.Endpoint()
		if p.typ == TypeApple {
			ep.AuthStyle = oauth2.AuthStyleInParams
		}
		return ep, nil
	}
	ep := oauth2.Endpoint{AuthURL: p.cfg.AuthURL, TokenURL: p.cfg.TokenURL}
	switch p.typ {
	case TypeGitHub:
		ep.AuthURL, ep.TokenURL = or(ep.AuthURL, githubAuthURL), or(ep.TokenURL, githubTokenURL)
		ep.AuthStyle = oauth2.AuthStyleInParams
	case TypeDiscord:
		ep.AuthURL, ep.TokenURL = or(ep.AuthURL, discordAuthURL), or(ep.TokenURL, discordTokenURL)
		ep.AuthStyle = oauth2.AuthStyleInHeader
	}
	return ep, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (p *provider) oauth2Config(ctx context.Context, redirectURI string) (*oauth2.Config, error) {
	ep, err := p.endpoint(ctx)
	if err != nil {
		return nil, err
	}
	return &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: ep,
		RedirectURL: redirectURI, Scopes: p.scopes(),
	}, nil
}

func (p *provider) authCodeURL(ctx context.Context, req Request) (string, error) {
	c, err := p.oauth2Config(ctx, req.RedirectURI)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(req.Verifier)}
	if p.oidc() && req.Nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", req.Nonce))
	}
	if p.typ == TypeApple {
		// Apple sends the name and email scopes' answer only by POST.
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "form_post"))
	}
	return c.AuthCodeURL(req.State, opts...), nil
}

func (p *provider) exchange(ctx context.Context, code string, req Request, appleUser string) (Identity, Tokens, error) {
	if code == "" || len(code) > 4096 {
		return Identity{}, Tokens{}, providerError("no authorization code", nil)
	}
	c, err := p.oauth2Config(ctx, req.RedirectURI)
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	if p.typ == TypeApple && p.appleKey != nil {
		secret, err := AppleClientSecret(p.appleKey, p.cfg.TeamID, p.cfg.KeyID, p.cfg.ClientID, p.reg.now())
		if err != nil {
			return Identity{}, Tokens{}, err
		}
		c.ClientSecret = secret
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tok, err := c.Exchange(p.ctx(ctx), code, oauth2.VerifierOption(req.Verifier))
	if err != nil {
		return Identity{}, Tokens{}, providerError("code exchange", tokenErr(err))
	}
	toks := Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if s, ok := tok.Extra("scope").(string); ok {
		toks.Scope = s
	} else {
		toks.Scope = trimScope(p.scopes())
	}
	var id Identity
	switch p.typ {
	case TypeGitHub:
		id, err = p.github(ctx, tok)
	case TypeDiscord:
		id, err = p.discord(ctx, tok)
	default:
		raw, _ := tok.Extra("id_token").(string)
		toks.IDToken = raw
		id, err = p.idToken(ctx, raw, req.Nonce, tok, appleUser)
	}
	if err != nil {
		return Identity{}, Tokens{}, err
	}
	if id.Subject == "" || len(id.Subject) > 255 {
		return Identity{}, Tokens{}, providerError("no account id", nil)
	}
	return id, toks, nil
}

// tokenErr keeps the token endpoint's error code and drops its body.
func tokenErr(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("status %d, error %q", re.Response.StatusCode, re.ErrorCode)
	}
	return err
}

// flexBool reads true, "true" (Apple) and 1.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	v, err := strconv.ParseBool(s)
	if err != nil {
		*b = false
		return nil
	}
	*b = flexBool(v)
	return nil
}

type oidcClaims struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified flexBool `json:"email_verified"`
	Name          string   `json:"name"`
	GivenName     string   `json:"given_name"`
	FamilyName    string   `json:"family_name"`
	Picture       string   `json:"picture"`
	// Microsoft: the tenant, and whether the email's domain is owned by it.
	TenantID  string   `json:"tid"`
	EmailDOV  flexBool `json:"xms_edov"`
	Issuer    string   `json:"iss"`
	Nickname  string   `json:"nickname"`
	Preferred string   `json:"preferred_username"`
}

func (p *provider) idToken(ctx context.Context, raw, nonce string, tok *oauth2.Token, appleUser string) (Identity, error) {
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: the token response has no id_token", ErrIDToken)
	}
	d, err := p.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	it, err := d.verifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrIDToken, err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(it.Nonce), []byte(nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: nonce does not match the sign-in", ErrIDToken)
	}
	var c oidcClaims
	if err := it.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrIDToken, err)
	}
	if p.typ == TypeMicrosoft {
		if err := p.checkMicrosoftIssuer(d.issuer, c); err != nil {
			return Identity{}, err
		}
	}
	id := Identity{Subject: it.Subject, Email: c.Email, EmailVerified: bool(c.EmailVerified), Name: c.Name, Image: c.Picture}
	if id.Name == "" {
		id.Name = strings.TrimSpace(c.GivenName + " " + c.FamilyName)
	}
	switch p.typ {
	case TypeMicrosoft:
		// Microsoft's email claim is not verified by Microsoft unless the
		// tenant owns the domain (xms_edov, an optional claim). Without it
		// the address is taken as unverified: it never links to an
		// existing account on its own.
		id.EmailVerified = bool(c.EmailDOV)
	case TypeApple:
		id.Name = appleName(appleUser)
	case TypeGitLab, TypeGoogle, TypeOIDC:
		if id.Name == "" {
			id.Name = or(c.Nickname, c.Preferred)
		}
	}
	if id.Email == "" && p.typ != TypeApple && d.prov.UserInfoEndpoint() != "" {
		// Some providers keep the address to the userinfo endpoint.
		ui, err := d.prov.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, providerError("userinfo", err)
		}
		if ui.Subject != id.Subject {
			return Identity{}, providerError("userinfo names another subject", nil)
		}
		id.Email, id.EmailVerified = ui.Email, ui.EmailVerified
	}
	return id, nil
}

// checkMicrosoftIssuer checks the issuer of a Microsoft token against the
// tenant: for the multi-tenant endpoints, the document's template filled
// with the token's own tenant; consumers only admits personal accounts
// and organizations only work or school ones.
func (p *provider) checkMicrosoftIssuer(docIssuer string, c oidcClaims) error {
	if c.TenantID == "" {
		return fmt.Errorf("%w: no tenant id", ErrIDToken)
	}
	want := strings.ReplaceAll(docIssuer, "{tenantid}", c.TenantID)
	if c.Issuer != want {
		return fmt.Errorf("%w: issuer %q is not %q", ErrIDToken, c.Issuer, want)
	}
	switch p.tenant() {
	case "consumers":
		if c.TenantID != msConsumersTenant {
			return fmt.Errorf("%w: not a personal account", ErrIDToken)
		}
	case "organizations":
		if c.TenantID == msConsumersTenant {
			return fmt.Errorf("%w: not a work or school account", ErrIDToken)
		}
	}
	return nil
}

// appleName reads the name from the "user" form field Apple posts on the
// first sign-in. Its email is ignored: only the signed ID token counts.
func appleName(raw string) string {
	if raw == "" || len(raw) > 4096 {
		return ""
	}
	var u struct {
		Name struct {
			FirstName string `json:"firstName"`
			LastName  string `json:"lastName"`
		} `json:"name"`
	}
	if json.Unmarshal([]byte(raw), &u) != nil {
		return ""
	}
	return strings.TrimSpace(u.Name.FirstName + " " + u.Name.LastName)
}

// getJSON reads a provider API with the access token.
func (p *provider) getJSON(ctx context.Context, rawURL string, tok *oauth2.Token, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return providerError("request", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Kavach")
	tok.SetAuthHeader(req)
	resp, err := p.reg.client.Do(req)
	if err != nil {
		return providerError("GET "+rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return providerError(fmt.Sprintf("GET %s: status %d", rawURL, resp.StatusCode), nil)
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return providerError("GET "+rawURL+": decode", err)
	}
	return nil
}

func (p *provider) github(ctx context.Context, tok *oauth2.Token) (Identity, error) {
	var u struct {
		ID        json.Number `json:"id"`
		Login     string      `json:"login"`
		Name      string      `json:"name"`
		AvatarURL string      `json:"avatar_url"`
	}
	if err := p.getJSON(ctx, or(p.cfg.UserInfoURL, githubUserURL), tok, &u); err != nil {
		return Identity{}, err
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := p.getJSON(ctx, or(p.cfg.EmailsURL, githubEmailsURL), tok, &emails); err != nil {
		return Identity{}, err
	}
	id := Identity{Subject: u.ID.String(), Name: or(u.Name, u.Login), Image: u.AvatarURL}
	// The primary address if verified, else any verified one, else the
	// primary one as unverified.
	for _, e := range emails {
		if e.Primary && e.Verified {
			id.Email, id.EmailVerified = e.Email, true
		}
	}
	for _, e := range emails {
		if id.Email == "" && e.Verified {
			id.Email, id.EmailVerified = e.Email, true
		}
	}
	for _, e := range emails {
		if id.Email == "" && e.Primary {
			id.Email = e.Email
		}
	}
	return id, nil
}

func (p *provider) discord(ctx context.Context, tok *oauth2.Token) (Identity, error) {
	var u struct {
		ID         string `json:"id"`
		Username   string `json:"username"`
		GlobalName string `json:"global_name"`
		Avatar     string `json:"avatar"`
		Email      string `json:"email"`
		Verified   bool   `json:"verified"`
	}
	if err := p.getJSON(ctx, or(p.cfg.UserInfoURL, discordUserURL), tok, &u); err != nil {
		return Identity{}, err
	}
	id := Identity{Subject: u.ID, Email: u.Email, EmailVerified: u.Verified && u.Email != "", Name: or(u.GlobalName, u.Username)}
	if u.Avatar != "" && u.ID != "" {
		id.Image = "https://cdn.discordapp.com/avatars/" + u.ID + "/" + u.Avatar + ".png"
	}
	return id, nil
}
