package kavach

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/users"
)

// Kavach's own minimal pages for the OAuth flow. Apps can replace them
// with theirs (OAuthConfig.LoginPage / ConsentPage).
const (
	signInPagePath  = "/oauth/sign-in"
	consentPagePath = "/oauth/consent"
)

func (k *Kavach) pages(root *http.ServeMux) {
	root.HandleFunc("GET "+signInPagePath, k.signInPage)
	root.Handle("POST "+signInPagePath, k.checkOrigin(k.limitIP("sign-in", k.signInSubmit)))
	root.HandleFunc("GET "+consentPagePath, k.consentPage)
}

// pageHeaders: no framing, no scripts, inline styles only.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	// With the global no-referrer, browsers send "Origin: null" on the
	// page's own form posts, which the origin check must refuse. same-origin
	// still keeps the Referer from ever leaving Kavach.
	h.Set("Referrer-Policy", "same-origin")
}

const pageStyle = `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1b1b1f}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
button{margin:1rem .5rem 0 0;padding:.5rem 1rem;font:inherit}.alert{color:#a40000}.warn{background:#fff4d6;padding:.5rem}
ul{padding-left:1.2rem}</style>`

var signInTemplate = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>` + pageStyle + `</head><body><main>
<h1>Sign in</h1>
{{if .Error}}<p class="alert" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="return_to" value="{{.ReturnTo}}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required value="{{.Email}}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></main></body></html>`))

type signInView struct {
	Action, ReturnTo, Email, Error string
}

// validReturn accepts only our own authorize endpoint and approvals page
// as a return target.
func (k *Kavach) validReturn(rt string) bool {
	return rt == k.cfg.BaseURL+approvalsPagePath || strings.HasPrefix(rt, k.cfg.BaseURL+authz.AuthorizePath+"?") && len(rt) <= 8192
}

func (k *Kavach) signInPage(w http.ResponseWriter, r *http.Request) {
	rt := r.URL.Query().Get("return_to")
	if !k.validReturn(rt) {
		k.pageError(w, http.StatusBadRequest, "This sign-in page was opened without a valid request. Go back to the application and try again.")
		return
	}
	pageHeaders(w)
	_ = signInTemplate.Execute(w, signInView{Action: signInPagePath, ReturnTo: rt})
}

func (k *Kavach) signInSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, k.cfg.Limits.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		k.pageError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	rt, email := r.PostForm.Get("return_to"), r.PostForm.Get("email")
	if !k.validReturn(rt) {
		k.pageError(w, http.StatusBadRequest, "This sign-in form was sent without a valid request. Go back to the application and try again.")
		return
	}
	view := signInView{Action: signInPagePath, ReturnTo: rt, Email: email}
	if !k.allowAccountQuiet("sign-in", email) {
		view.Error = "Too many attempts. Wait a minute and try again."
		pageHeaders(w)
		w.WriteHeader(http.StatusTooManyRequests)
		_ = signInTemplate.Execute(w, view)
		return
	}
	res, err := k.Users.SignIn(r.Context(), users.SignInInput{Email: email, Password: r.PostForm.Get("password"), RememberMe: true, Client: k.clientInfo(r)})
	if err != nil {
		status, _, msg := errorResponse(err)
		if status >= 500 {
			k.cfg.Logger.Error("sign-in page failed", "err", err)
		}
		view.Error = msg
		pageHeaders(w)
		w.WriteHeader(status)
		_ = signInTemplate.Execute(w, view)
		return
	}
	k.startSession(w, res)
	http.Redirect(w, r, rt, http.StatusSeeOther)
}

var consentTemplate = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Allow {{.ClientName}}?</title>` + pageStyle + `</head><body><main>
<h1>Allow {{.ClientName}}?</h1>
<p><strong>{{.ClientName}}</strong> wants to use your account.
Afterwards you will be sent to <strong>{{.RedirectHost}}</strong>.</p>
{{if .ClientHost}}<p>The application is published by <strong>{{.ClientHost}}</strong>.</p>{{end}}
{{if .Warn}}<p class="warn" role="note">This application only sends you back to this computer (localhost). Allow it only if you started it yourself just now.</p>{{end}}
{{if .Scopes}}<p>It will be able to:</p><ul>{{range .Scopes}}<li>{{.Description}}</li>{{end}}</ul>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="return_to" value="{{.ReturnTo}}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></main></body></html>`))

type consentView struct {
	*authz.ConsentRequest
	Warn   bool
	Action string
}

func (k *Kavach) consentPage(w http.ResponseWriter, r *http.Request) {
	rt := r.URL.Query().Get("return_to")
	if !k.validReturn(rt) {
		k.pageError(w, http.StatusBadRequest, "This page was opened without a valid request. Go back to the application and try again.")
		return
	}
	if _, ok := k.browserPrincipal(r); !ok {
		http.Redirect(w, r, k.cfg.BaseURL+signInPagePath+"?return_to="+urlQueryEscape(rt), http.StatusSeeOther)
		return
	}
	cr, err := k.OAuth.DescribeConsent(r.Context(), rt)
	if errors.Is(err, authz.ErrBadConsentRequest) {
		k.pageError(w, http.StatusBadRequest, "This request is not valid any more. Go back to the application and try again.")
		return
	}
	if err != nil {
		k.cfg.Logger.Error("consent page failed", "err", err)
		k.pageError(w, http.StatusInternalServerError, "Something went wrong on our side.")
		return
	}
	pageHeaders(w)
	_ = consentTemplate.Execute(w, consentView{ConsentRequest: cr, Warn: cr.LocalhostOnly, Action: authz.ConsentPath})
}

var errorPageTemplate = template.Must(template.New("err").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Problem</title>` + pageStyle + `</head><body><main>
<h1>Something is not right</h1><p role="alert">{{.}}</p></main></body></html>`))

func (k *Kavach) pageError(w http.ResponseWriter, status int, msg string) {
	pageHeaders(w)
	w.WriteHeader(status)
	_ = errorPageTemplate.Execute(w, msg)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
