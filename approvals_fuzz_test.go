package kavach_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzApprovalEndpoints sends arbitrary ids, query strings and bodies to
// the approvals API, as the owner and as the agent: whatever a client
// sends, the answer is never a 5xx and always the JSON envelope.
func FuzzApprovalEndpoints(f *testing.F) {
	for _, seed := range []struct{ id, query, body string }{
		{"", "", ""}, {"apr_x", "status=all", `{}`}, {"\x00", "status=\xff", `{"mode":"window","durationSeconds":1e30}`},
		{"apr_" + strings.Repeat("a", 300), "cursor=cjE3fGFwcl8x&limit=2", `{"mode":"once","durationSeconds":-1}`},
		{"%", "cursor=%00&limit=-5", `{"reason":"\u0000"}`}, {"a/b", "agentId=\xed\xa0\x80", `{"mode":["once"]}`},
		{"apr_x", "limit=99999999999999999999", `{"durationSeconds":9223372036854775807,"mode":"window"}`},
	} {
		f.Add(seed.id, seed.query, seed.body)
	}
	k := fuzzInstance(f)
	h := k.Handler()
	serve := func(method, target, bearer, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL, _ = url.Parse(target)
		if req.URL == nil {
			req.URL = &url.URL{Path: "/api/auth/approvals"}
		}
		req.RequestURI = ""
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	signUp := serve("POST", "/api/auth/sign-up/email", "", `{"email":"fuzz@example.com","password":"`+goodPassword+`"}`)
	var auth struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(signUp.Body.Bytes(), &auth); err != nil || auth.Data.Token == "" {
		f.Fatalf("sign-up: %d %s", signUp.Code, signUp.Body)
	}
	created := serve("POST", "/api/auth/agents", auth.Data.Token, `{"name":"fuzz","permissions":[{"resource":"mcp:*","actions":["pay"],"constraints":{"requireApproval":true}}]}`)
	var agent struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(created.Body.Bytes(), &agent); err != nil || agent.Data.Token == "" {
		f.Fatalf("create agent: %d %s", created.Code, created.Body)
	}
	asked := serve("POST", "/api/auth/authorize", agent.Data.Token, `{"action":"pay","resource":"mcp:x"}`)
	var pending struct {
		Data struct {
			ApprovalID string `json:"approvalId"`
		} `json:"data"`
	}
	if err := json.Unmarshal(asked.Body.Bytes(), &pending); err != nil || pending.Data.ApprovalID == "" {
		f.Fatalf("authorize: %d %s", asked.Code, asked.Body)
	}
	// A real request id, so that the bodies reach the approve and deny
	// decoding (an unknown id is a 404 before the body is read).
	for _, body := range []string{`{"mode":"window","durationSeconds":1e30}`, `{"mode":"once","durationSeconds":-1}`,
		`{"durationSeconds":9223372036854775807,"mode":"window"}`, `{"reason":"\u0000"}`, `{"mode":["once"]}`} {
		f.Add(pending.Data.ApprovalID, "", body)
	}
	f.Fuzz(func(t *testing.T, id, query, body string) {
		cases := []struct{ method, target, bearer string }{{"GET", "/api/auth/approvals?" + query, auth.Data.Token}}
		// The mux redirects paths that are not clean ("//", "/./") itself.
		if id != "" && id != "." && id != ".." {
			path := "/api/auth/approvals/" + url.PathEscape(id)
			cases = append(cases, []struct{ method, target, bearer string }{
				{"GET", path, auth.Data.Token},
				{"GET", path, agent.Data.Token},
				{"POST", path + "/approve", auth.Data.Token},
				{"POST", path + "/deny", auth.Data.Token},
			}...)
		}
		for _, c := range cases {
			rec := serve(c.method, c.target, c.bearer, body)
			if rec.Code >= 500 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("%s %s with %q: %d %s", c.method, c.target, body, rec.Code, rec.Body)
			}
		}
	})
}
