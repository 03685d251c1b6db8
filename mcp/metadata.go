package mcp

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// protectedResourceMetadata is the RFC 9728 §2 document, limited to the
// fields Kavach publishes, in the order clients and humans expect to read.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// metadataMaxAge is how long clients and caches may keep the metadata. It
// only changes with configuration, but a short life lets a changed issuer
// list reach clients within minutes.
const metadataMaxAge = 5 * 60

// MetadataHandler serves the RFC 9728 protected resource metadata of cfg as
// JSON: resource, authorization_servers, scopes_supported (without
// offline_access), bearer_methods_supported ["header"] and resource_name.
// Mount it at MetadataPath(cfg.Resource), and at the root well-known path
// too if clients of the 2025-03-26 era should find it.
//
// GET and HEAD are answered with the document; OPTIONS with a CORS
// preflight answer; anything else with 405. Any origin may read it: it is
// public, and browser-based MCP clients fetch it cross-origin.
//
// It panics if cfg's metadata fields fail Validate (the Verifier is not
// needed here).
func MetadataHandler(cfg ResourceConfig) http.Handler {
	if err := cfg.validateMetadata(); err != nil {
		panic(err)
	}
	doc := protectedResourceMetadata{
		Resource:             cfg.Resource,
		AuthorizationServers: cfg.AuthorizationServers,
		// Bearer tokens are accepted only in the Authorization header
		// (RFC 6750 §2.1); RequireBearer refuses the query and form methods.
		BearerMethodsSupported: []string{"header"},
		ResourceName:           cfg.ResourceName,
	}
	for _, s := range cfg.ScopesSupported {
		if s != offlineAccess {
			doc.ScopesSupported = append(doc.ScopesSupported, s)
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		panic(err) // only strings and string slices: cannot happen
	}
	length := strconv.Itoa(len(body))
	cacheControl := "public, max-age=" + strconv.Itoa(metadataMaxAge)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			// MCP clients send MCP-Protocol-Version on discovery requests.
			h.Set("Access-Control-Allow-Headers", "Accept, MCP-Protocol-Version")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			writeOAuthError(w, http.StatusMethodNotAllowed, jsonError("invalid_request", "Use GET to read protected resource metadata."))
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", cacheControl)
		h.Set("Content-Length", length)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
