package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/kavachos/kavach/storage"
)

// registrationResponse is RFC 7591 §3.2.1 (plus RFC 7592 fields).
type registrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
	ClientMetadata
}

func (s *Server) registrationOf(c *Client, secret, regToken string) registrationResponse {
	out := registrationResponse{
		ClientID: c.GetID(), ClientSecret: secret, ClientIDIssuedAt: c.Record.CreatedAt.Unix(),
		RegistrationAccessToken: regToken, ClientMetadata: c.Metadata,
	}
	if c.Record.SecretHash != "" {
		zero := int64(0) // secrets do not expire
		out.ClientSecretExpiresAt = &zero
	}
	if c.Record.Source == storage.ClientSourceDynamic {
		out.RegistrationClientURI = s.cfg.Issuer + RegisterPath + "/" + c.GetID()
	}
	return out
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func writeOAuthJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeMetadata reads client metadata; unknown fields are ignored
// (RFC 7591 §2: the server ignores what it does not understand).
func decodeMetadata(w http.ResponseWriter, r *http.Request) (ClientMetadata, bool) {
	var m ClientMetadata
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "The body must be JSON (Content-Type: application/json).")
		return m, false
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "The body is not valid client metadata JSON.")
		return m, false
	}
	return m, true
}

func writeMetadataError(w http.ResponseWriter, err error) bool {
	var me *MetadataError
	if errors.As(err, &me) {
		oauthError(w, http.StatusBadRequest, me.Code, me.Description)
		return true
	}
	return false
}

// handleRegister is RFC 7591 dynamic client registration.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if s.cfg.DisableDynamicRegistration {
		oauthError(w, http.StatusForbidden, "access_denied", "Dynamic client registration is turned off on this server.")
		return
	}
	m, ok := decodeMetadata(w, r)
	if !ok {
		return
	}
	reg, err := s.clients.register(r.Context(), m, storage.ClientSourceDynamic)
	if err != nil {
		if !writeMetadataError(w, err) {
			s.cfg.Logger.Error("client registration failed", "err", err)
			oauthError(w, http.StatusInternalServerError, "server_error", "Registration failed on our side.")
		}
		return
	}
	writeOAuthJSON(w, http.StatusCreated, s.registrationOf(reg.Client, reg.Secret, reg.RegistrationToken))
}

// handleManage is RFC 7592: read, update or delete a dynamically
// registered client with its registration access token.
func (s *Server) handleManage(w http.ResponseWriter, r *http.Request) {
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	c, err := s.clients.authorizeManagement(r.Context(), r.PathValue("client_id"), strings.TrimSpace(token))
	if !found || err != nil {
		// One answer for unknown clients and bad tokens (RFC 7592 §2).
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "Unknown client or invalid registration access token.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeOAuthJSON(w, http.StatusOK, s.registrationOf(c, "", ""))
	case http.MethodPut:
		m, ok := decodeMetadata(w, r)
		if !ok {
			return
		}
		updated, err := s.clients.update(r.Context(), c, m)
		if err != nil {
			if !writeMetadataError(w, err) {
				s.cfg.Logger.Error("client update failed", "err", err)
				oauthError(w, http.StatusInternalServerError, "server_error", "Update failed on our side.")
			}
			return
		}
		writeOAuthJSON(w, http.StatusOK, s.registrationOf(updated, "", ""))
	case http.MethodDelete:
		if err := s.clients.deleteClient(r.Context(), c.GetID()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.cfg.Logger.Error("client delete failed", "err", err)
			oauthError(w, http.StatusInternalServerError, "server_error", "Delete failed on our side.")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "The client configuration endpoint takes GET, PUT and DELETE.")
	}
}
