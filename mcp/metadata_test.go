package mcp

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestMetadataPath(t *testing.T) {
	tests := []struct {
		resource, want, wantURL string
	}{
		{"https://auth.example.com", "/.well-known/oauth-protected-resource",
			"https://auth.example.com/.well-known/oauth-protected-resource"},
		{"https://auth.example.com/", "/.well-known/oauth-protected-resource",
			"https://auth.example.com/.well-known/oauth-protected-resource"},
		{"https://auth.example.com/mcp", "/.well-known/oauth-protected-resource/mcp",
			"https://auth.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://auth.example.com/mcp/", "/.well-known/oauth-protected-resource/mcp",
			"https://auth.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://auth.example.com/tenant/a/mcp", "/.well-known/oauth-protected-resource/tenant/a/mcp",
			"https://auth.example.com/.well-known/oauth-protected-resource/tenant/a/mcp"},
		{"https://auth.example.com/a%2Fb", "/.well-known/oauth-protected-resource/a%2Fb",
			"https://auth.example.com/.well-known/oauth-protected-resource/a%2Fb"},
		// The origin is kept as written apart from the scheme, which
		// url.Parse lower-cases; mcp-go compares hosts case-insensitively.
		{"HTTP://Localhost:8080/mcp", "/.well-known/oauth-protected-resource/mcp",
			"http://Localhost:8080/.well-known/oauth-protected-resource/mcp"},
	}
	for _, tt := range tests {
		got, err := MetadataPath(tt.resource)
		if err != nil || got != tt.want {
			t.Errorf("MetadataPath(%q) = %q, %v; want %q", tt.resource, got, err, tt.want)
		}
		gotURL, err := metadataURL(tt.resource)
		if err != nil || gotURL != tt.wantURL {
			t.Errorf("metadataURL(%q) = %q, %v; want %q", tt.resource, gotURL, err, tt.wantURL)
		}
	}

	for _, bad := range []string{"", "mcp", "/mcp", "auth.example.com/mcp", "https://", "https://a.example.com/mcp?x=1", "https://a.example.com/mcp#f"} {
		if got, err := MetadataPath(bad); err == nil {
			t.Errorf("MetadataPath(%q) = %q, want an error", bad, got)
		}
	}
}

func TestMetadataHandler(t *testing.T) {
	h := MetadataHandler(testConfig(nil)) // the metadata needs no Verifier

	t.Run("GET", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testPRMURL, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d", rec.Code)
		}
		// offline_access is configured as supported but never published.
		const want = `{"resource":"https://auth.example.com/mcp",` +
			`"authorization_servers":["https://auth.example.com"],` +
			`"scopes_supported":["mcp:tools","profile"],` +
			`"bearer_methods_supported":["header"],` +
			`"resource_name":"Kavach MCP"}`
		if got := rec.Body.String(); got != want {
			t.Errorf("body =\n  %s\nwant\n  %s", got, want)
		}
		wantHeaders := map[string]string{
			"Content-Type":                "application/json",
			"Cache-Control":               "public, max-age=300",
			"Access-Control-Allow-Origin": "*",
			"Content-Length":              strconv.Itoa(len(want)),
		}
		for k, v := range wantHeaders {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, testPRMURL, nil))
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("HEAD: %d, body %q, headers %v", rec.Code, rec.Body, rec.Header())
		}
	})

	t.Run("CORS preflight", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodOptions, testPRMURL, nil)
		req.Header.Set("Origin", "https://inspector.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent ||
			rec.Header().Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "GET") ||
			!strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "MCP-Protocol-Version") {
			t.Errorf("preflight: %d %v", rec.Code, rec.Header())
		}
	})

	t.Run("POST", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, testPRMURL, strings.NewReader("{}")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("POST: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
		}
	})
}

func TestMetadataHandlerMinimal(t *testing.T) {
	h := MetadataHandler(ResourceConfig{
		Resource:             "https://mcp.example.com",
		AuthorizationServers: []string{"https://id.example.com/tenant"},
		ScopesSupported:      []string{"offline_access"},
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://mcp.example.com/.well-known/oauth-protected-resource", nil))
	const want = `{"resource":"https://mcp.example.com","authorization_servers":["https://id.example.com/tenant"],"bearer_methods_supported":["header"]}`
	if got := rec.Body.String(); got != want {
		t.Errorf("body =\n  %s\nwant\n  %s", got, want)
	}
}

func TestMetadataHandlerPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MetadataHandler accepted a config without authorization servers")
		}
	}()
	MetadataHandler(ResourceConfig{Resource: testResource})
}
