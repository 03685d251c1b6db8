package authz

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

var fuzzMetadataSeeds = []string{
	`{}`,
	`{"redirect_uris":["https://app.example.com/cb"]}`,
	`{"redirect_uris":["http://127.0.0.1:9/cb","http://localhost/x","http://[::1]/y"],"token_endpoint_auth_method":"none"}`,
	`{"redirect_uris":["https://app.example.com/cb#f"]}`,
	`{"redirect_uris":["javascript:alert(1)"]}`,
	`{"redirect_uris":["https://a@b/cb"]}`,
	`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://a.example/jwks"}`,
	`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}`,
	`{"grant_types":["implicit"],"response_types":["token"]}`,
	`{"redirect_uris":["https://app.example.com/cb"],"scope":"openid mcp","application_type":"native","client_name":"x"}`,
	`{"redirect_uris":null,"grant_types":[null],"jwks":null}`,
	`[]`,
	`"x"`,
}

// FuzzClientMetadata: decoding and normalizing any registration body never
// panics, and what normalize accepts is a client we can serve: every
// redirect URI passes the registration rules, only the grants and
// response types OAuth 2.1 keeps, and a known authentication method.
func FuzzClientMetadata(f *testing.F) {
	for _, s := range fuzzMetadataSeeds {
		f.Add([]byte(s))
	}
	scopes := scopeNamesOf(DefaultScopes)
	f.Fuzz(func(t *testing.T, body []byte) {
		var m ClientMetadata
		if json.Unmarshal(body, &m) != nil {
			return
		}
		if m.normalize(scopes) != nil {
			return
		}
		checkNormalized(t, m, scopes)
		// Normalizing is idempotent: the stored form reads back the same.
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again ClientMetadata
		if err := json.Unmarshal(raw, &again); err != nil {
			t.Fatalf("unmarshal stored form: %v", err)
		}
		if err := again.normalize(scopes); err != nil {
			t.Fatalf("stored form no longer normalizes: %v\n%s", err, raw)
		}
	})
}

// FuzzMetadataDocument: a fetched document is accepted only with its own
// URL as client_id, a name, redirect URIs, and no shared secret.
func FuzzMetadataDocument(f *testing.F) {
	const id = "https://app.example.com/client.json"
	for _, s := range fuzzMetadataSeeds {
		f.Add([]byte(strings.Replace(s, "{", `{"client_id":"`+id+`","client_name":"App",`, 1)))
	}
	f.Add([]byte(`{"client_id":"` + id + `","client_name":"App","redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"client_secret_basic"}`))
	f.Add([]byte(`{"CLIENT_ID":"` + id + `","client_id":"` + id + `","client_name":"App","redirect_uris":["https://app.example.com/cb"]}`))
	scopes := scopeNamesOf(DefaultScopes)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMetadataDocument(body, id, scopes)
		if err != nil {
			return
		}
		checkNormalized(t, m, scopes)
		var fields map[string]json.RawMessage
		if json.Unmarshal(body, &fields) != nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", body)
		}
		var docID string
		if json.Unmarshal(fields["client_id"], &docID) != nil || docID != id {
			t.Fatalf("accepted client_id %s", fields["client_id"])
		}
		if strings.TrimSpace(m.ClientName) == "" || len(m.RedirectURIs) == 0 {
			t.Fatalf("accepted without name or redirect URIs: %+v", m)
		}
		if m.TokenEndpointAuthMethod != AuthNone && m.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
			t.Fatalf("accepted method %q", m.TokenEndpointAuthMethod)
		}
	})
}

func checkNormalized(t *testing.T, m ClientMetadata, scopes []string) {
	t.Helper()
	for _, u := range m.RedirectURIs {
		if err := checkRegisteredRedirect(u); err != nil {
			t.Fatalf("accepted redirect URI %q", u)
		}
	}
	for _, g := range m.GrantTypes {
		if !slices.Contains(supportedGrants, g) {
			t.Fatalf("accepted grant %q", g)
		}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			t.Fatalf("accepted response type %q", rt)
		}
	}
	switch m.TokenEndpointAuthMethod {
	case AuthNone, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT:
	default:
		t.Fatalf("accepted method %q", m.TokenEndpointAuthMethod)
	}
	for _, s := range strings.Fields(m.Scope) {
		if !slices.Contains(scopes, s) {
			t.Fatalf("accepted scope %q", s)
		}
	}
}
