package kavach_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/authz"
	"github.com/kavachos/kavach/storage/storagetest"
)

// FuzzEndpoints sends arbitrary bodies to every endpoint that takes one,
// signed in and not: whatever a client sends, the answer is never a 5xx
// and always the JSON envelope. `go test` runs the seeds; `go test
// -fuzz=FuzzEndpoints` explores further.
func FuzzEndpoints(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `1e309`, `{"email":null}`, `{"email":["a"]}`,
		`{"email":"a@example.com","password":"` + goodPassword + `"}`,
		`{"email":"a@example.com","password":"` + strings.Repeat("p", 2000) + `"}`,
		`{"email":"\u0000@example.com","password":"x"}`, `{"name":"\ud800"}`, `{"image":"http://\u0000"}`,
		`{"id":"ses_aaaaaaaaaaaaaaaaaaaaaaaaaa"}`, `{"token":"` + strings.Repeat("t", 300) + `","newPassword":"x"}`,
		`{"currentPassword":1,"newPassword":true}`, `{"rememberMe":"yes"}`, `{"a":{"b":{"c":[[[[[[]]]]]]}}}`,
		`{"email":"a@example.com"}{"email":"b@example.com"}`, "\xff\xfe", `{"redirectTo":"//evil"}`,
		`{"name":"a","permissions":[{"resource":"mcp:*","actions":["read"]}]}`, `{"action":"read","resource":"mcp:x"}`,
		`{"action":"read","resource":"a::b","arguments":[1]}`, `{"cost":"0.0000001","calls":-1}`, `{"cost":1e400}`, `{"name":"o","slug":"-"}`, `{"metric":"cost","period":"day","limit":"1e400"}`,
	} {
		f.Add(seed)
	}
	k := fuzzInstance(f)
	h := k.Handler()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/auth/sign-up/email", strings.NewReader(`{"email":"fuzz@example.com","password":"`+goodPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != 201 {
		f.Fatalf("sign-up: %d", rec.Code)
	}
	var token string
	for _, c := range rec.Result().Cookies() {
		token = c.Value
	}
	// A real agent of the user, so that the agent routes below read the
	// body (an unknown agent is a 404 before the body is read).
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/api/auth/agents", strings.NewReader(`{"name":"fuzz","permissions":[{"resource":"mcp:*","actions":["read"]}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(rec, req)
	var created struct {
		Data struct {
			Agent struct {
				ID string `json:"id"`
			} `json:"agent"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.Data.Agent.ID == "" {
		f.Fatalf("create agent: %d %s", rec.Code, rec.Body)
	}
	agentPath := "/api/auth/agents/" + created.Data.Agent.ID
	endpoints := []struct{ method, path string }{
		{"POST", "/api/auth/sign-up/email"}, {"POST", "/api/auth/sign-in/email"},
		{"POST", "/api/auth/sessions/revoke"}, {"POST", "/api/auth/sessions/revoke-others"},
		{"POST", "/api/auth/password/change"}, {"POST", "/api/auth/password/forgot"},
		{"POST", "/api/auth/password/reset"}, {"POST", "/api/auth/email/send-verification"},
		{"PATCH", "/api/auth/user"},
		{"POST", "/api/auth/agents"}, {"POST", "/api/auth/authorize"}, {"POST", agentPath + "/delegate"},
		{"POST", agentPath + "/oauth-client"}, {"POST", agentPath + "/usage"}, {"POST", agentPath + "/budgets"},
		{"POST", "/api/auth/organizations"}, {"POST", "/api/auth/budgets"},
		{"POST", "/api/auth/two-factor/enable"}, {"POST", "/api/auth/two-factor/verify"},
		{"POST", "/api/auth/two-factor/disable"}, {"POST", "/api/auth/two-factor/backup-codes"},
		{"POST", "/api/auth/admin/users/x/ban"},
		{"POST", "/api/auth/passkey/register/options"}, {"POST", "/api/auth/passkey/register/verify"},
		{"POST", "/api/auth/passkey/authenticate/options"}, {"POST", "/api/auth/passkey/authenticate/verify"},
		{"PATCH", "/api/auth/passkey/credentials/x"},
		{"POST", "/api/auth/magic-link/send"}, {"POST", "/api/auth/email-otp/send"}, {"POST", "/api/auth/email-otp/verify"},
		{"POST", "/api/auth/phone/send-code"}, {"POST", "/api/auth/phone/verify"},
		{"POST", "/api/auth/oauth/link"}, {"POST", "/api/auth/oauth/unlink"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, ep := range endpoints {
			for _, signedIn := range []bool{false, true} {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if signedIn {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				h.ServeHTTP(rec, req)
				if rec.Code >= 500 {
					t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, rec.Code, rec.Body)
				}
				if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
					t.Fatalf("%s %s with %q: not JSON: %q", ep.method, ep.path, body, rec.Body)
				}
			}
		}
	})
}

// FuzzOAuthEndpoints sends arbitrary forms, JSON and query strings to the
// OAuth endpoints: whatever a client sends, the answer is never a 5xx.
func FuzzOAuthEndpoints(f *testing.F) {
	for _, seed := range []string{
		"", "grant_type=client_credentials", "grant_type=authorization_code&code=x&code_verifier=y&redirect_uri=http://127.0.0.1/cb",
		"grant_type=refresh_token&refresh_token=abc", "grant_type=password&username=a&password=b",
		"client_id=cli_x&response_type=code&redirect_uri=https%3A%2F%2Fa.example%2Fcb&code_challenge=abc&code_challenge_method=S256",
		"resource=%00&grant_type=client_credentials", "token=a.b.c", "token=%ff%fe", `{"redirect_uris":["https://a.example/cb"]}`,
		`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{}]}}`,
		"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c&grant_type=client_credentials",
	} {
		f.Add(seed)
	}
	k := fuzzInstance(f)
	reg, err := k.OAuth.RegisterClient(context.Background(), authz.ClientMetadata{
		GrantTypes: []string{authz.GrantClientCredentials, authz.GrantTokenExchange}, Scope: "mcp"})
	if err != nil {
		f.Fatal(err)
	}
	h := k.Handler()
	// A real subject token, so exchanges get past the token check.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", authz.TokenPath, strings.NewReader("grant_type=client_credentials&scope=mcp"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(reg.Client.GetID(), reg.Secret)
	h.ServeHTTP(rec, req)
	subject := tokenFrom(f, rec.Body.String())
	exchange := "grant_type=" + url.QueryEscape(authz.GrantTokenExchange) + "&subject_token_type=" + url.QueryEscape(authz.TokenTypeAccessToken)
	for _, seed := range []string{
		exchange + "&subject_token=" + subject,
		exchange + "&subject_token=" + subject + "&scope=openid&audience=%00",
		exchange + "&subject_token=" + subject + "&actor_token=" + subject + "&actor_token_type=x",
		exchange + "&subject_token=" + subject + "&requested_token_type=urn:ietf:params:oauth:token-type:jwt&resource=http://localhost:8080/mcp",
		exchange + "&subject_token=a.b.c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		reqs := []*http.Request{
			httptest.NewRequest("POST", authz.TokenPath, strings.NewReader(in)),
			httptest.NewRequest("POST", authz.IntrospectPath, strings.NewReader(in)),
			httptest.NewRequest("POST", authz.RevokePath, strings.NewReader(in)),
			httptest.NewRequest("POST", authz.RegisterPath, strings.NewReader(in)),
			httptest.NewRequest("PUT", authz.RegisterPath+"/"+reg.Client.GetID(), strings.NewReader(in)),
			httptest.NewRequest("GET", authz.AuthorizePath+"?"+url.PathEscape(in), nil),
			rawQuery(authz.AuthorizePath, in),
			httptest.NewRequest("GET", authz.ConsentPath+"?return_to="+url.QueryEscape(in), nil),
		}
		for i, req := range reqs {
			if i < 3 {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				req.Header.Set("Content-Type", "application/json")
			}
			if i == 0 || i == 1 {
				req.SetBasicAuth(reg.Client.GetID(), reg.Secret)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s with %q: %d %s", req.Method, req.URL.Path, in, rec.Code, rec.Body)
			}
		}
	})
}

// rawQuery is a GET with an arbitrary (possibly invalid) raw query string,
// as a client could send it.
func rawQuery(path, q string) *http.Request {
	r := httptest.NewRequest("GET", path, nil)
	r.URL.RawQuery = q
	return r
}

// fuzzInstance is an in-process instance on SQLite without limits in the
// way (the fuzzer sends thousands of requests from one address).
func fuzzInstance(f *testing.F) *kavach.Kavach {
	k, err := kavach.NewWithStore(kavach.Config{
		BaseURL: "http://localhost:8080", Secret: testSecret, Logger: discardLogger(),
		Password: kavach.PasswordConfig{Iterations: 1000},
		Limits:   kavach.LimitsConfig{PerIP: 1 << 30, PerAccount: 1 << 30, LockoutThreshold: 1 << 30},
		Email:    kavach.EmailConfig{DevDir: f.TempDir()},
	}, storagetest.OpenSQLite(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { k.Close() })
	return k
}
