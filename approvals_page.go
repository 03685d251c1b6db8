package kavach

import (
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/users"
)

// A minimal server page where a signed-in user answers the approval
// requests of their agents, for deployments without their own console.
// Like the sign-in and consent pages: server-rendered, no scripts, the
// session cookie only, forms that post back to the same origin.

const approvalsPagePath = "/approvals"

// approvalPageWindow is what "Approve for 1 hour" means.
const approvalPageWindow = time.Hour

func (k *Kavach) approvalPages(root *http.ServeMux) {
	root.HandleFunc("GET "+approvalsPagePath, k.approvalsPage)
	root.Handle("POST "+approvalsPagePath+"/{id}", k.requireOrigin(http.HandlerFunc(k.approvalsPageSubmit)))
}

var approvalsTemplate = template.Must(template.New("approvals").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Approval requests</title>` + pageStyle + `<style>body{max-width:44rem}section{border-top:1px solid #ccc;padding:.5rem 0}
pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f6;padding:.5rem;max-height:16rem;overflow:auto}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}</style></head><body><main>
<h1>Approval requests</h1>
<p>Signed in as {{.Email}}.</p>
{{if .Notice}}<p role="status">{{.Notice}}</p>{{end}}
{{range .Requests}}<section>
<h2>{{.AgentName}} wants to <code>{{.Action}}</code></h2>
<dl><dt>Resource</dt><dd><code>{{.Resource}}</code></dd>
<dt>Agent</dt><dd><code>{{.AgentID}}</code></dd>
<dt>Requested</dt><dd>{{.RequestedAt}}</dd><dt>Expires</dt><dd>{{.ExpiresAt}}</dd>
<dt>Request</dt><dd><code>{{.ID}}</code></dd></dl>
{{if .Arguments}}<p>Arguments{{if .Truncated}} (cut; the full arguments are longer){{end}}:</p><pre>{{.Arguments}}</pre>{{else}}<p>No arguments.</p>{{end}}
<form method="post" action="{{.FormAction}}">
<button type="submit" name="decision" value="once">Approve once</button>
<button type="submit" name="decision" value="hour">Approve for 1 hour</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></section>
{{else}}<p>No requests are waiting for you.</p>{{end}}
</main></body></html>`))

type approvalsPageView struct {
	Email, Notice string
	Requests      []approvalPageItem
}

type approvalPageItem struct {
	ID, AgentID, AgentName, Action, Resource string
	Arguments                                string
	Truncated                                bool
	RequestedAt, ExpiresAt                   string
	FormAction                               string // the form's target
}

// pageNotices are the only texts the page shows from its query string.
var pageNotices = map[string]string{
	"approved": "Approved. The agent may retry its call.",
	"denied":   "Denied.",
}

// pageSession is the signed-in user of a page request: the session cookie
// only (a bearer token is not a browser sign-in).
func (k *Kavach) pageSession(r *http.Request) (users.SessionView, bool) {
	c, err := r.Cookie(k.Auth.cookie.name)
	if err != nil || c.Value == "" {
		return users.SessionView{}, false
	}
	view, _, err := k.Users.Authenticate(r.Context(), c.Value, false)
	if err != nil {
		if !errors.Is(err, users.ErrUnauthenticated) {
			k.cfg.Logger.Error("session lookup failed", "err", err)
		}
		return users.SessionView{}, false
	}
	return view, true
}

func (k *Kavach) approvalsPage(w http.ResponseWriter, r *http.Request) {
	view, ok := k.pageSession(r)
	if !ok {
		http.Redirect(w, r, k.cfg.BaseURL+signInPagePath+"?return_to="+urlQueryEscape(k.cfg.BaseURL+approvalsPagePath), http.StatusSeeOther)
		return
	}
	// The page lists the user's own agents' requests; admins answer others
	// through the API.
	list, _, err := k.Agents.ListApprovals(r.Context(), agents.ApprovalQuery{OwnerUserID: view.User.ID,
		Status: storage.ApprovalPending, Limit: storage.ApprovalListMax})
	if err != nil {
		k.pageFailure(w, err)
		return
	}
	owned, err := k.Agents.List(r.Context(), view.User.ID)
	if err != nil {
		k.pageFailure(w, err)
		return
	}
	names := make(map[string]string, len(owned))
	for _, a := range owned {
		names[a.ID] = a.Name
	}
	pv := approvalsPageView{Email: view.User.Email, Notice: pageNotices[r.URL.Query().Get("done")]}
	for _, a := range list {
		pv.Requests = append(pv.Requests, approvalPageItem{
			ID: a.ID, AgentID: a.AgentID, AgentName: names[a.AgentID], Action: a.Action, Resource: a.Resource,
			Arguments: string(a.Arguments), Truncated: a.ArgumentsTruncated,
			RequestedAt: a.RequestedAt.Format(time.RFC1123), ExpiresAt: a.ExpiresAt.Format(time.RFC1123),
			FormAction: approvalsPagePath + "/" + a.ID,
		})
	}
	pageHeaders(w)
	_ = approvalsTemplate.Execute(w, pv)
}

func (k *Kavach) approvalsPageSubmit(w http.ResponseWriter, r *http.Request) {
	view, ok := k.pageSession(r)
	if !ok {
		k.pageError(w, http.StatusUnauthorized, "Sign in again, then answer the request from the approvals page.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, k.cfg.Limits.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		k.pageError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	a, err := k.Agents.GetApproval(r.Context(), r.PathValue("id"))
	if err == nil && !k.mayDecideApproval(r.Context(), view, a) {
		err = agents.ErrApprovalNotFound
	}
	done := ""
	if err == nil {
		switch r.PostForm.Get("decision") {
		case "once":
			_, err = k.Agents.ApproveRequest(r.Context(), a.ID, view.User.ID, agents.ApproveInput{Mode: storage.ApprovalOnce})
			done = "approved"
		case "hour":
			_, err = k.Agents.ApproveRequest(r.Context(), a.ID, view.User.ID,
				agents.ApproveInput{Mode: storage.ApprovalWindow, Duration: approvalPageWindow})
			done = "approved"
		case "deny":
			_, err = k.Agents.DenyRequest(r.Context(), a.ID, view.User.ID, "")
			done = "denied"
		default:
			k.pageError(w, http.StatusBadRequest, "Choose approve or deny.")
			return
		}
	}
	if err != nil {
		k.pageFailure(w, err)
		return
	}
	http.Redirect(w, r, approvalsPagePath+"?done="+done, http.StatusSeeOther)
}

// pageFailure answers an approval error as a page.
func (k *Kavach) pageFailure(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, agents.ErrApprovalNotFound):
		k.pageError(w, http.StatusNotFound, "No such approval request.")
	case errors.Is(err, agents.ErrApprovalNotPending):
		k.pageError(w, http.StatusConflict, "This request has already been answered.")
	case errors.Is(err, agents.ErrApprovalExpired):
		k.pageError(w, http.StatusConflict, "This request has expired; the agent must ask again.")
	default:
		k.cfg.Logger.Error("approvals page failed", "err", err)
		k.pageError(w, http.StatusInternalServerError, "Something went wrong on our side.")
	}
}

// requireOrigin admits a page's form post only with the Origin header of a
// trusted origin. Browsers send it on every form post (pageHeaders keeps
// it from being "null"). The API's guard (checkOrigin) also admits
// requests without one, since those cannot come from a browser page; these
// forms act on the session cookie alone, so they ask for the proof.
func (k *Kavach) requireOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o == "" || o == "null" || !k.origins.isTrusted(o) {
			k.pageError(w, http.StatusForbidden, "This form was sent from a page that is not trusted. Open the approvals page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}
