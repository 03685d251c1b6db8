package kavach

import (
	"context"
	"net/http"
	"time"

	"github.com/kavachos/kavach/internal/clientip"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/internal/ratelimit"
)

// routes builds the HTTP surface. Handlers are thin: decode, call the
// domain, encode.
func (k *Kavach) routes() (http.Handler, error) {
	proxies, err := clientip.ParsePrefixes(k.cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	k.origins = newOriginGuard(k.cfg.BaseURL, k.cfg.TrustedOrigins, k.cfg.Env == EnvDevelopment)
	k.limits = limiters{
		ip:      clientip.Resolver{TrustedProxies: proxies},
		perIP:   ratelimit.New(k.cfg.Limits.PerIP, k.cfg.Limits.Window),
		account: ratelimit.New(k.cfg.Limits.PerAccount, k.cfg.Limits.Window),
	}

	api := http.NewServeMux()
	api.HandleFunc("POST /api/auth/sign-up/email", k.limitIP("sign-up", k.handleSignUp))
	api.HandleFunc("POST /api/auth/sign-in/email", k.limitIP("sign-in", k.handleSignIn))
	api.HandleFunc("POST /api/auth/sign-out", k.handleSignOut)
	api.HandleFunc("GET /api/auth/session", k.handleGetSession)
	api.HandleFunc("GET /api/auth/sessions", k.signedIn(k.handleListSessions))
	api.HandleFunc("POST /api/auth/sessions/revoke", k.signedIn(k.handleRevokeSession))
	api.HandleFunc("POST /api/auth/sessions/revoke-others", k.signedIn(k.handleRevokeOthers))
	api.HandleFunc("POST /api/auth/password/change", k.limitIP("password-change", k.signedIn(k.handleChangePassword)))
	api.HandleFunc("POST /api/auth/password/forgot", k.limitIP("password-forgot", k.handleForgotPassword))
	api.HandleFunc("POST /api/auth/password/reset", k.limitIP("password-reset", k.handleResetPassword))
	api.HandleFunc("POST /api/auth/email/send-verification", k.limitIP("send-verification", k.handleSendVerification))
	api.HandleFunc("GET /api/auth/email/verify", k.limitIP("verify-email", k.handleVerifyEmail))
	api.HandleFunc("POST /api/auth/two-factor/enable", k.limitIP("two-factor", k.signedIn(k.handleTwoFactorEnable)))
	api.HandleFunc("POST /api/auth/two-factor/verify", k.limitIP("two-factor-verify", k.handleTwoFactorVerify))
	api.HandleFunc("POST /api/auth/two-factor/disable", k.limitIP("two-factor", k.signedIn(k.handleTwoFactorDisable)))
	api.HandleFunc("POST /api/auth/two-factor/backup-codes", k.limitIP("two-factor", k.signedIn(k.handleBackupCodes)))
	api.HandleFunc("GET /api/auth/two-factor/status", k.signedIn(k.handleTwoFactorStatus))
	k.codeRoutes(api) // magic links, email and phone codes
	api.HandleFunc("POST /api/auth/passkey/register/options", k.limitIP("passkey-options", k.signedIn(k.handlePasskeyRegisterOptions)))
	api.HandleFunc("POST /api/auth/passkey/register/verify", k.limitIP("passkey-verify", k.signedIn(k.handlePasskeyRegisterVerify)))
	api.HandleFunc("POST /api/auth/passkey/authenticate/options", k.limitIP("passkey-options", k.handlePasskeyAuthOptions))
	api.HandleFunc("POST /api/auth/passkey/authenticate/verify", k.limitIP("passkey-verify", k.handlePasskeyAuthVerify))
	api.HandleFunc("GET /api/auth/passkey/credentials", k.signedIn(k.handleListPasskeys))
	api.HandleFunc("PATCH /api/auth/passkey/credentials/{id}", k.signedIn(k.handleRenamePasskey))
	api.HandleFunc("DELETE /api/auth/passkey/credentials/{id}", k.signedIn(k.handleDeletePasskey))
	api.HandleFunc("GET /api/auth/oauth/providers", k.handleSocialProviders)
	api.HandleFunc("GET /api/auth/oauth/{provider}", k.limitIP("oauth", k.handleSocialStart))
	api.HandleFunc("GET /api/auth/oauth/{provider}/callback", k.limitIP("oauth-callback", k.handleSocialCallback))
	api.HandleFunc("POST /api/auth/oauth/link", k.limitIP("oauth", k.signedIn(k.handleSocialLink)))
	api.HandleFunc("POST /api/auth/oauth/unlink", k.signedIn(k.handleSocialUnlink))
	api.HandleFunc("GET /api/auth/accounts", k.signedIn(k.handleListAccounts))
	api.HandleFunc("GET /api/auth/user", k.signedIn(k.handleGetUser))
	api.HandleFunc("PATCH /api/auth/user", k.signedIn(k.handleUpdateUser))
	k.adminRoutes(api)
	k.agentRoutes(api)
	k.userPermissionRoutes(api)
	k.trustRoutes(api)
	k.trustPolicyRoutes(api)
	k.budgetRoutes(api)
	k.approvalRoutes(api)
	k.auditRoutes(api)
	k.organizationRoutes(api)

	root := http.NewServeMux()
	root.Handle("/api/auth/", k.checkOrigin(methodNotAllowedAsJSON(api)))
	// Apple's form_post callback comes from Apple's origin: it bypasses the
	// origin check and only redirects to the GET callback (http_social.go).
	root.HandleFunc("POST /api/auth/oauth/{provider}/callback", k.limitIP("oauth-callback", k.handleSocialFormPost))
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	root.HandleFunc("GET /readyz", k.handleReady)
	if err := k.setupOAuth(context.Background(), root); err != nil {
		return nil, err
	}
	k.approvalPages(root)
	return k.secure(root), nil
}

func (k *Kavach) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := k.Store.Ping(ctx); err != nil {
		k.cfg.Logger.Warn("readiness check failed", "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "NOT_READY", "The database is not reachable.")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready", "database": k.Store.Dialect()})
}

// methodNotAllowedAsJSON keeps the envelope for the 404s and 405s that
// ServeMux would otherwise answer in plain text.
func methodNotAllowedAsJSON(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// No pattern matched at all, or only with another method.
			rec := &statusProbe{ResponseWriter: w}
			mux.ServeHTTP(rec, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// statusProbe rewrites the mux's plain-text 404 or 405 into the envelope.
type statusProbe struct {
	http.ResponseWriter
	rewritten bool
}

func (p *statusProbe) WriteHeader(status int) {
	switch status {
	case http.StatusMethodNotAllowed:
		p.rewritten = true
		httpx.WriteError(p.ResponseWriter, status, "METHOD_NOT_ALLOWED", "This endpoint does not accept that method.")
		return
	case http.StatusNotFound:
		p.rewritten = true
		httpx.WriteError(p.ResponseWriter, status, "NOT_FOUND", "No such endpoint.")
		return
	}
	p.ResponseWriter.WriteHeader(status)
}

func (p *statusProbe) Write(b []byte) (int, error) {
	if p.rewritten {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}
