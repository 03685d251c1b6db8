package kavach_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage"
)

type approvalInfo struct {
	ID                 string         `json:"id"`
	AgentID            string         `json:"agentId"`
	OwnerID            *string        `json:"ownerId"`
	Action             string         `json:"action"`
	Resource           string         `json:"resource"`
	ArgumentsDigest    string         `json:"argumentsDigest"`
	Arguments          map[string]any `json:"arguments"`
	ArgumentsPreview   string         `json:"argumentsPreview"`
	ArgumentsTruncated bool           `json:"argumentsTruncated"`
	Status             string         `json:"status"`
	Mode               string         `json:"mode"`
	RequestedAt        time.Time      `json:"requestedAt"`
	ExpiresAt          time.Time      `json:"expiresAt"`
	DecidedBy          string         `json:"decidedBy"`
	Reason             string         `json:"reason"`
	ApprovedUntil      *time.Time     `json:"approvedUntil"`
	ConsumedAt         *time.Time     `json:"consumedAt"`
}

// bearer is an API client that authenticates with a bearer credential.
func (e *env) bearer(token string) *client {
	c := e.client()
	c.headers["Authorization"] = "Bearer " + token
	return c
}

// pay asks whether the agent may pay, with args as the call's arguments.
func (c *client) pay(t *testing.T, args map[string]any) decision {
	t.Helper()
	// As a client would send it: without Go's escaping of <, > and &.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"action": "pay", "resource": "mcp:payments:invoice", "arguments": args}); err != nil {
		t.Fatal(err)
	}
	var d decision
	c.do("POST", "/api/auth/authorize", body.Bytes()).must(t, 200).decode(t, &d)
	return d
}

func wantApprovalRequired(t *testing.T, what string, d decision) string {
	t.Helper()
	if d.Allowed || d.Code != "APPROVAL_REQUIRED" || !strings.HasPrefix(d.ApprovalID, "apr_") || d.AuditID == "" {
		t.Fatalf("%s: %+v, want APPROVAL_REQUIRED with an approval id", what, d)
	}
	return d.ApprovalID
}

func wantAllowedBy(t *testing.T, what string, d decision, approvalID string) {
	t.Helper()
	if !d.Allowed || d.ApprovalID != approvalID || d.AuditID == "" || d.Code != "" {
		t.Fatalf("%s: %+v, want allowed by %s", what, d, approvalID)
	}
}

// createPayer creates an agent of the signed-in user whose payments need
// approval, and returns its id and API key.
func (c *client) createPayer(t *testing.T) (string, string) {
	t.Helper()
	var created struct {
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
		Token string `json:"token"`
	}
	c.do("POST", "/api/auth/agents", map[string]any{
		"name": "Payer", "type": "autonomous",
		"permissions": []map[string]any{
			{"resource": "mcp:payments:*", "actions": []string{"pay"}, "constraints": map[string]any{"requireApproval": true}},
		},
	}).must(t, 201).decode(t, &created)
	return created.Agent.ID, created.Token
}

func (c *client) approval(t *testing.T, id string) approvalInfo {
	t.Helper()
	var a approvalInfo
	c.do("GET", "/api/auth/approvals/"+id, nil).must(t, 200).decode(t, &a)
	return a
}

// TestApprovalsEndToEnd: an agent's call needs approval; the agent polls
// its request, the owner approves it once, the retry passes once; denial;
// a window; strangers see nothing.
func TestApprovalsEndToEnd(t *testing.T) {
	forEachDriver(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		e := newEnv(t, open, nil)
		owner := e.client()
		ownerID := owner.signUp("owner@example.com").User.ID
		agentID, key := owner.createPayer(t)
		agent := e.bearer(key)
		args := map[string]any{"amount": 120, "to": "acme"}

		id := wantApprovalRequired(t, "first call", agent.pay(t, args))
		if again := wantApprovalRequired(t, "retry", agent.pay(t, args)); again != id {
			t.Fatalf("retry opened %s, want the pending %s", again, id)
		}
		// The agent polls its request with its key.
		got := agent.approval(t, id)
		if got.Status != "pending" || got.AgentID != agentID || got.OwnerID == nil || *got.OwnerID != ownerID || got.Action != "pay" ||
			got.Resource != "mcp:payments:invoice" || got.Arguments["to"] != "acme" || len(got.ArgumentsDigest) != 64 ||
			!got.ExpiresAt.Equal(got.RequestedAt.Add(time.Hour)) {
			t.Fatalf("pending request %+v", got)
		}
		var list struct {
			Approvals  []approvalInfo `json:"approvals"`
			NextCursor string         `json:"nextCursor"`
		}
		owner.do("GET", "/api/auth/approvals", nil).must(t, 200).decode(t, &list)
		if len(list.Approvals) != 1 || list.Approvals[0].ID != id || list.NextCursor != "" {
			t.Fatalf("owner's pending list %+v", list)
		}

		// Strangers — users and other agents — see nothing.
		stranger := e.client()
		stranger.signUp("stranger@example.com")
		_, strangerKey := stranger.createPayer(t)
		stranger.do("GET", "/api/auth/approvals/"+id, nil).mustError(t, 404, "APPROVAL_NOT_FOUND")
		stranger.do("POST", "/api/auth/approvals/"+id+"/approve", map[string]any{"mode": "once"}).mustError(t, 404, "APPROVAL_NOT_FOUND")
		stranger.do("POST", "/api/auth/approvals/"+id+"/deny", nil).mustError(t, 404, "APPROVAL_NOT_FOUND")
		e.bearer(strangerKey).do("GET", "/api/auth/approvals/"+id, nil).mustError(t, 404, "APPROVAL_NOT_FOUND")
		stranger.do("GET", "/api/auth/approvals", nil).must(t, 200).decode(t, &list)
		if len(list.Approvals) != 0 {
			t.Fatalf("stranger lists %+v", list.Approvals)
		}
		e.bearer("kv_"+strings.Repeat("x", 43)).do("GET", "/api/auth/approvals/"+id, nil).mustError(t, 401, "UNAUTHENTICATED")
		e.client().do("GET", "/api/auth/approvals/"+id, nil).mustError(t, 401, "UNAUTHENTICATED")
		// The agent cannot decide its own request.
		agent.do("POST", "/api/auth/approvals/"+id+"/approve", map[string]any{"mode": "once"}).mustError(t, 401, "UNAUTHENTICATED")

		// Bad answers name the field.
		for _, body := range []any{
			map[string]any{"mode": "forever"},
			map[string]any{"mode": "window"},
			map[string]any{"mode": "window", "durationSeconds": 86401},
			map[string]any{"mode": "window", "durationSeconds": 0},
			map[string]any{"mode": "once", "durationSeconds": 60},
			map[string]any{"mode": "once", "extra": true},
			`{"mode":`,
		} {
			owner.do("POST", "/api/auth/approvals/"+id+"/approve", body).mustError(t, 400, "INVALID_REQUEST")
		}

		// Approve once: the retry passes, once.
		var approved approvalInfo
		owner.do("POST", "/api/auth/approvals/"+id+"/approve", map[string]any{"mode": "once"}).must(t, 200).decode(t, &approved)
		if approved.Status != "approved" || approved.Mode != "once" || approved.DecidedBy != ownerID || approved.ApprovedUntil == nil {
			t.Fatalf("approved %+v", approved)
		}
		owner.do("POST", "/api/auth/approvals/"+id+"/approve", map[string]any{"mode": "once"}).mustError(t, 409, "APPROVAL_NOT_PENDING")
		owner.do("POST", "/api/auth/approvals/"+id+"/deny", nil).mustError(t, 409, "APPROVAL_NOT_PENDING")
		if got := agent.approval(t, id); got.Status != "approved" || got.ConsumedAt != nil {
			t.Fatalf("agent polls its approved request: %+v", got)
		}
		wantAllowedBy(t, "retry after approval", agent.pay(t, args), id)
		if got := agent.approval(t, id); got.ConsumedAt == nil {
			t.Fatalf("used approval %+v", got)
		}
		second := wantApprovalRequired(t, "the call after", agent.pay(t, args))
		if second == id {
			t.Fatal("the used approval's request is reused")
		}

		// Deny: the agent reads the reason; the next call asks again.
		var denied approvalInfo
		owner.do("POST", "/api/auth/approvals/"+second+"/deny", map[string]any{"reason": "not this vendor"}).must(t, 200).decode(t, &denied)
		if got := agent.approval(t, second); got.Status != "denied" || got.Reason != "not this vendor" {
			t.Fatalf("denied request as the agent sees it: %+v", got)
		}
		third := wantApprovalRequired(t, "after the denial", agent.pay(t, args))
		if third == second {
			t.Fatal("denied request reused")
		}

		// A window lets every matching call through until it ends.
		owner.do("POST", "/api/auth/approvals/"+third+"/approve", map[string]any{"mode": "window", "durationSeconds": 600}).must(t, 200)
		for i := range 3 {
			wantAllowedBy(t, "call "+string(rune('1'+i))+" in the window", agent.pay(t, args), third)
		}
		other := wantApprovalRequired(t, "other arguments", agent.pay(t, map[string]any{"amount": 121, "to": "acme"}))
		e.clock.Advance(10 * time.Minute)
		fourth := wantApprovalRequired(t, "after the window", agent.pay(t, args))

		// A request nobody answers expires.
		e.clock.Advance(time.Hour)
		owner.do("POST", "/api/auth/approvals/"+fourth+"/approve", map[string]any{"mode": "once"}).mustError(t, 409, "APPROVAL_EXPIRED")
		if got := agent.approval(t, fourth); got.Status != "expired" {
			t.Fatalf("lapsed request %+v", got)
		}

		// Listing: every status, paged; bad filters are 400s.
		var page struct {
			Approvals  []approvalInfo `json:"approvals"`
			NextCursor string         `json:"nextCursor"`
		}
		var seen []string
		cursor := ""
		for {
			owner.do("GET", "/api/auth/approvals?status=all&limit=2&cursor="+url.QueryEscape(cursor), nil).must(t, 200).decode(t, &page)
			for _, a := range page.Approvals {
				seen = append(seen, a.ID+":"+a.Status)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		// The newest first; the others were requested at one instant, so
		// their order is by id.
		if len(seen) != 5 || seen[0] != fourth+":expired" || !slices.IsSortedFunc(seen[1:], func(a, b string) int { return strings.Compare(b, a) }) {
			t.Fatalf("all approvals, newest first: %v", seen)
		}
		for _, w := range []string{id + ":approved", second + ":denied", third + ":approved", other + ":expired"} {
			if !slices.Contains(seen, w) {
				t.Fatalf("all approvals %v lack %s", seen, w)
			}
		}
		owner.do("GET", "/api/auth/approvals?status=denied", nil).must(t, 200).decode(t, &page)
		if len(page.Approvals) != 1 || page.Approvals[0].ID != second {
			t.Fatalf("denied list %+v", page.Approvals)
		}
		owner.do("GET", "/api/auth/approvals?status=bogus", nil).mustError(t, 400, "INVALID_REQUEST")
		owner.do("GET", "/api/auth/approvals?cursor=garbage!", nil).mustError(t, 400, "INVALID_REQUEST")
		owner.do("GET", "/api/auth/approvals?limit=0", nil).mustError(t, 400, "INVALID_REQUEST")

		// Every request and decision is an outbox event.
		events, err := e.store.Events().Pending(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, ev := range events {
			count[ev.Type]++
		}
		if count["approval.requested"] != 5 || count["approval.approved"] != 2 || count["approval.denied"] != 1 {
			t.Fatalf("approval events %v", count)
		}
	})
}

// TestApprovalsAdminAndAccessToken: an agent that authenticates with an
// OAuth access token polls with it too; a server admin sees and answers
// every request, including those of agents nobody owns.
func TestApprovalsAdminAndAccessToken(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, func(c *kavach.Config) { c.AdminEmails = []string{"root@example.com"} })
	admin := e.client()
	admin.signUp("root@example.com")
	link := e.waitMail("root@example.com", "Verify your email")
	admin.do("GET", strings.TrimPrefix(link, e.url), nil).must(t, 200)

	reg := e.registerClient(t, authz.ClientMetadata{GrantTypes: []string{authz.GrantClientCredentials}, Scope: "mcp"})
	a, err := e.k.OAuth.AgentForClient(context.Background(), reg.Client.GetID())
	if err != nil {
		t.Fatal(err)
	}
	admin.do("PATCH", "/api/auth/agents/"+a.ID, map[string]any{"permissions": []map[string]any{
		{"resource": "mcp:payments:*", "actions": []string{"pay"}, "constraints": map[string]any{"requireApproval": true}},
	}}).must(t, 200)
	tok, err := (&clientcredentials.Config{ClientID: reg.Client.GetID(), ClientSecret: reg.Secret, TokenURL: e.url + authz.TokenPath,
		Scopes: []string{"mcp"}}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	agent := e.bearer(tok.AccessToken)
	id := wantApprovalRequired(t, "call with an access token", agent.pay(t, nil))
	if got := agent.approval(t, id); got.Status != "pending" || got.AgentID != a.ID || got.OwnerID != nil || got.Arguments != nil {
		t.Fatalf("request of an agent nobody owns: %+v", got)
	}
	var list struct {
		Approvals []approvalInfo `json:"approvals"`
	}
	admin.do("GET", "/api/auth/approvals", nil).must(t, 200).decode(t, &list)
	if len(list.Approvals) != 1 || list.Approvals[0].ID != id {
		t.Fatalf("admin's list %+v", list.Approvals)
	}
	user := e.client()
	user.signUp("user@example.com")
	user.do("POST", "/api/auth/approvals/"+id+"/approve", map[string]any{"mode": "once"}).mustError(t, 404, "APPROVAL_NOT_FOUND")
	admin.do("POST", "/api/auth/approvals/"+id+"/approve", map[string]any{"mode": "once"}).must(t, 200)
	wantAllowedBy(t, "retry with the access token", agent.pay(t, nil), id)
}

// form posts a form to the approvals page with the client's cookies and
// the given Origin (none when empty).
func (c *client) form(t *testing.T, path string, form url.Values, origin string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (c *client) page(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := c.http.Get(c.e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestApprovalsPage: the owner's page lists pending requests and answers
// them with origin-checked form posts.
func TestApprovalsPage(t *testing.T) {
	e := newEnv(t, storagetestOpenSQLite, nil)

	// Signed out: to the sign-in page, which comes back here.
	resp, _ := e.client().page(t, "/approvals")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, e.url+"/oauth/sign-in?return_to=") {
		t.Fatalf("signed out: %d %q", resp.StatusCode, loc)
	}
	if resp, body := e.client().page(t, strings.TrimPrefix(loc, e.url)); resp.StatusCode != 200 || !strings.Contains(body, `value="`+e.url+`/approvals"`) {
		t.Fatalf("sign-in page for the approvals page: %d %s", resp.StatusCode, body)
	}

	owner := e.client()
	owner.signUp("owner@example.com")
	_, key := owner.createPayer(t)
	agent := e.bearer(key)
	id := wantApprovalRequired(t, "call", agent.pay(t, map[string]any{"memo": "<script>alert(1)</script>"}))

	resp, body := owner.page(t, "/approvals")
	if resp.StatusCode != 200 || !strings.Contains(body, id) || !strings.Contains(body, "mcp:payments:invoice") ||
		!strings.Contains(body, "Payer") || !strings.Contains(body, "&lt;script&gt;") || strings.Contains(body, "<script>") ||
		!strings.Contains(body, `action="/approvals/`+id+`"`) {
		t.Fatalf("page: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("page CSP %q", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "same-origin" {
		t.Fatalf("page headers %v", resp.Header)
	}

	once := url.Values{"decision": {"once"}}
	if resp, _ := owner.form(t, "/approvals/"+id, once, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post without Origin: %d", resp.StatusCode)
	}
	if resp, _ := owner.form(t, "/approvals/"+id, once, "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post from another origin: %d", resp.StatusCode)
	}
	if resp, _ := owner.form(t, "/approvals/"+id, once, "null"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post from an opaque origin: %d", resp.StatusCode)
	}
	if got := owner.approval(t, id); got.Status != "pending" {
		t.Fatalf("refused posts changed the request: %+v", got)
	}
	stranger := e.client()
	stranger.signUp("stranger@example.com")
	if resp, _ := stranger.form(t, "/approvals/"+id, once, e.url); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("stranger's post: %d", resp.StatusCode)
	}
	if resp, _ := e.client().form(t, "/approvals/"+id, once, e.url); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed-out post: %d", resp.StatusCode)
	}
	if resp, _ := owner.form(t, "/approvals/"+id, url.Values{"decision": {"maybe"}}, e.url); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown decision: %d", resp.StatusCode)
	}

	resp, _ = owner.form(t, "/approvals/"+id, once, e.url)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals?done=approved" {
		t.Fatalf("approve once: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := owner.form(t, "/approvals/"+id, once, e.url); resp.StatusCode != http.StatusConflict {
		t.Fatalf("approve twice: %d", resp.StatusCode)
	}
	if _, body := owner.page(t, "/approvals?done=approved"); strings.Contains(body, id) || !strings.Contains(body, "Approved.") {
		t.Fatalf("page after approving:\n%s", body)
	}
	wantAllowedBy(t, "retry", agent.pay(t, map[string]any{"memo": "<script>alert(1)</script>"}), id)

	// Approve for 1 hour, and deny.
	hourID := wantApprovalRequired(t, "another call", agent.pay(t, map[string]any{"n": 1}))
	if resp, _ := owner.form(t, "/approvals/"+hourID, url.Values{"decision": {"hour"}}, e.url); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve for an hour: %d", resp.StatusCode)
	}
	if got := owner.approval(t, hourID); got.Mode != "window" || got.ApprovedUntil == nil || !got.ApprovedUntil.Equal(e.clock.Now().Truncate(time.Millisecond).Add(time.Hour)) {
		t.Fatalf("hour approval %+v", got)
	}
	denyID := wantApprovalRequired(t, "third call", agent.pay(t, map[string]any{"n": 2}))
	if resp, _ := owner.form(t, "/approvals/"+denyID, url.Values{"decision": {"deny"}}, e.url); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	if got := owner.approval(t, denyID); got.Status != "denied" {
		t.Fatalf("denied %+v", got)
	}
	if _, body := owner.page(t, "/approvals"); !strings.Contains(body, "No requests are waiting") {
		t.Fatalf("empty page:\n%s", body)
	}
}
