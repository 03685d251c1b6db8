package authz

import (
	"net/http"
	"net/url"
	"strings"
)

// Metadata is the RFC 8414 authorization server metadata, also served as
// OpenID Connect discovery. It lists exactly what the server supports.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// Metadata returns the discovery document.
func (s *Server) Metadata() Metadata {
	iss := s.cfg.Issuer
	authMethods := []string{AuthNone, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT}
	m := Metadata{
		Issuer:                                     iss,
		AuthorizationEndpoint:                      iss + AuthorizePath,
		TokenEndpoint:                              iss + TokenPath,
		JWKSURI:                                    iss + JWKSPath,
		IntrospectionEndpoint:                      iss + IntrospectPath,
		RevocationEndpoint:                         iss + RevokePath,
		UserinfoEndpoint:                           iss + UserinfoPath,
		ScopesSupported:                            s.scopeNames(),
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials},
		CodeChallengeMethodsSupported:              []string{"S256"},
		TokenEndpointAuthMethodsSupported:          authMethods,
		TokenEndpointAuthSigningAlgValuesSupported: []string{"RS256", "ES256", "EdDSA"},
		IntrospectionEndpointAuthMethodsSupported:  authMethods[1:],
		RevocationEndpointAuthMethodsSupported:     authMethods,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           []string{s.cfg.IDTokenAlg},
		ClaimsSupported:                            []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "email", "email_verified", "name", "picture"},
		ClientIDMetadataDocumentSupported:          s.cfg.CIMD.Enabled,
		AuthorizationResponseIssParameterSupported: true,
	}
	if !s.cfg.DisableDynamicRegistration {
		m.RegistrationEndpoint = iss + RegisterPath
	}
	if len(s.cfg.TrustedIssuers) > 0 {
		m.GrantTypesSupported = append(m.GrantTypesSupported, GrantJWTBearer)
	}
	if s.cfg.Agents != nil {
		m.GrantTypesSupported = append(m.GrantTypesSupported, GrantTokenExchange)
	}
	return m
}

// MetadataPaths are where discovery is served: RFC 8414 with path
// insertion for issuers that have a path, and OpenID Connect discovery
// (appended, and inserted as some clients probe).
func (s *Server) MetadataPaths() []string {
	u, err := url.Parse(s.cfg.Issuer)
	path := ""
	if err == nil {
		path = strings.TrimSuffix(u.Path, "/")
	}
	paths := []string{"/.well-known/oauth-authorization-server" + path, "/.well-known/openid-configuration" + path}
	if path != "" {
		paths = append(paths, path+"/.well-known/openid-configuration")
	}
	return paths
}

func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, s.Metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(s.keys.JWKS())
}
