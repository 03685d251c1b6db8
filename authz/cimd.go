package authz

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/kavachos/kavach/internal/safehttp"
	"github.com/kavachos/kavach/storage"
)

// CIMDConfig configures client ID metadata documents
// (draft-ietf-oauth-client-id-metadata-document): a client whose client_id
// is an https URL is described by the JSON document served at that URL,
// with no registration beforehand.
type CIMDConfig struct {
	// Enabled turns the feature on and advertises it in discovery
	// (client_id_metadata_document_supported).
	Enabled bool
	// AllowInsecure lets client ids use http and point at loopback and
	// private addresses. Development and tests only: in production anyone
	// could make the server fetch from its own network.
	AllowInsecure bool
	// TLSConfig replaces the system's TLS settings for fetching documents
	// (tests trust their own server with it). Nil uses the system roots.
	TLSConfig *tls.Config
	// Timeout bounds one fetch (default 5 s).
	Timeout time.Duration
	// MaxBytes is the largest document accepted (default 16 KiB: the draft
	// recommends reading 5 kB; this leaves room for an inline key set).
	MaxBytes int64
	// MinCacheTTL and MaxCacheTTL bound how long a document is used before
	// it is fetched again, whatever its Cache-Control says (default 1 min
	// and 24 h). A document marked no-store or no-cache is not kept.
	MinCacheTTL time.Duration
	MaxCacheTTL time.Duration
	// CacheSize is how many documents are kept in memory (default 1000).
	CacheSize int
}

func (c *CIMDConfig) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 16 << 10
	}
	if c.MinCacheTTL <= 0 {
		c.MinCacheTTL = time.Minute
	}
	if c.MaxCacheTTL <= 0 {
		c.MaxCacheTTL = 24 * time.Hour
	}
	c.MaxCacheTTL = max(c.MaxCacheTTL, c.MinCacheTTL)
	if c.CacheSize <= 0 {
		c.CacheSize = 1000
	}
}

// metadataDocs resolves client ids that are metadata document URLs: it
// fetches, validates and caches the documents, and keeps a row per client
// in kavach_oauth_client so tokens and consents can refer to it.
type metadataDocs struct {
	cfg     CIMDConfig
	fetcher *safehttp.Client
	reg     *clientRegistry
	log     *slog.Logger
	cache   *docCache
}

// newMetadataDocs returns nil when the feature is off.
func newMetadataDocs(cfg CIMDConfig, reg *clientRegistry, log *slog.Logger) *metadataDocs {
	if !cfg.Enabled {
		return nil
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &metadataDocs{
		cfg: cfg,
		fetcher: safehttp.New(safehttp.Options{
			AllowHTTP: cfg.AllowInsecure, AllowPrivate: cfg.AllowInsecure,
			Timeout: cfg.Timeout, MaxBytes: cfg.MaxBytes, TLSConfig: cfg.TLSConfig,
			MaxRedirects: 0, // the draft forbids following redirects
		}),
		reg: reg, log: log, cache: newDocCache(cfg.CacheSize, reg.now),
	}
}

// handles reports whether clientID is to be resolved as a metadata
// document. Ids the server generates never start with a scheme.
func (d *metadataDocs) handles(clientID string) bool {
	prefix := strings.ToLower(clientID[:min(len(clientID), len("https://"))])
	return prefix == "https://" || d.cfg.AllowInsecure && strings.HasPrefix(prefix, "http://")
}

// errDocument marks a document (or client id URL) that cannot be used: the
// client is then unknown. Anything else is the server's own failure.
var errDocument = errors.New("client metadata document refused")

func docErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errDocument, fmt.Sprintf(format, a...))
}

// get returns the client a metadata document describes: from memory while
// the document is fresh, else fetched (once, however many requests ask at
// the same time).
func (d *metadataDocs) get(ctx context.Context, clientID string) (*Client, error) {
	c, err := d.cache.get(ctx, clientID, d.load)
	if errors.Is(err, errDocument) {
		return nil, fosite.ErrNotFound
	}
	return c, err
}

func (d *metadataDocs) forget(clientID string) { d.cache.forget(clientID) }

// load fetches and validates one document and records the client; ttl is
// how long the result may be used (0: not at all beyond this request).
func (d *metadataDocs) load(ctx context.Context, clientID string) (c *Client, ttl time.Duration, err error) {
	defer func() {
		if errors.Is(err, errDocument) {
			// The client's developer needs the reason; the user only sees
			// "unknown client".
			d.log.Info("client metadata document refused", "client_id", clientID, "reason", err)
		}
	}()
	if err := checkClientIDURL(clientID, d.cfg.AllowInsecure); err != nil {
		return nil, 0, err
	}
	resp, err := d.fetcher.GetJSON(ctx, clientID)
	if err != nil {
		return nil, 0, docErrorf("fetch: %v", err)
	}
	m, err := parseMetadataDocument(resp.Body, clientID, d.reg.scopes)
	if err != nil {
		return nil, 0, err
	}
	var keys *josev3.JSONWebKeySet
	if m.JWKSURI != "" {
		if keys, err = d.fetchKeys(ctx, m.JWKSURI); err != nil {
			return nil, 0, err
		}
		if m.TokenEndpointAuthSigningAlg == "" {
			m.TokenEndpointAuthSigningAlg = algOfKey(keys.Keys[0]) // as normalize does for inline keys
		}
	}
	rec, err := d.record(ctx, clientID, m)
	if err != nil {
		return nil, 0, err
	}
	c, err = newClient(*rec, d.reg.scopes, d.reg.resources)
	if err != nil {
		return nil, 0, err
	}
	if keys != nil {
		// fosite prefers inline keys to jwks_uri, so it never fetches the
		// URI itself (its fetcher has no SSRF protection).
		c.jwks = keys
	}
	return c, cacheTTL(resp.Header, d.reg.now(), d.cfg.MinCacheTTL, d.cfg.MaxCacheTTL), nil
}

// checkClientIDURL applies the draft's rules for a client identifier URL:
// https, a path, no user info, no fragment, no dot segments. It must also
// be the URL's own canonical spelling, so that the URL fetched is byte for
// byte the client_id the document has to repeat.
func checkClientIDURL(raw string, allowHTTP bool) error {
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' || r == '#' }) {
		return docErrorf("client_id URL has spaces, control characters, a backslash or a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return docErrorf("client_id is not an absolute URL")
	}
	if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
		return docErrorf("client_id URL must be https")
	}
	if u.User != nil {
		return docErrorf("client_id URL must not have user info")
	}
	if u.Path == "" {
		return docErrorf("client_id URL must have a path")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return docErrorf("client_id URL must not have dot segments")
		}
	}
	if u.String() != raw {
		return docErrorf("client_id URL is not in canonical form (%s)", u.String())
	}
	return nil
}

// clip shortens what a document said for a log line.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// forbiddenInDocument are properties a metadata document must not have:
// there is no way to share a secret with a document (draft §4.1).
var forbiddenInDocument = []string{"client_secret", "client_secret_expires_at"}

// parseMetadataDocument validates a fetched document for clientID and
// returns its normalized metadata.
func parseMetadataDocument(body []byte, clientID string, scopes []string) (ClientMetadata, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return ClientMetadata{}, docErrorf("not a JSON object")
	}
	var docID string
	if raw, ok := fields["client_id"]; !ok || json.Unmarshal(raw, &docID) != nil {
		return ClientMetadata{}, docErrorf("client_id is missing or not a string")
	}
	if docID != clientID {
		return ClientMetadata{}, docErrorf("client_id %q differs from the document's URL", clip(docID))
	}
	for _, f := range forbiddenInDocument {
		if _, ok := fields[f]; ok {
			return ClientMetadata{}, docErrorf("%s is not allowed in a metadata document", f)
		}
	}
	var m ClientMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return ClientMetadata{}, docErrorf("metadata: %v", err)
	}
	if strings.TrimSpace(m.ClientName) == "" {
		return ClientMetadata{}, docErrorf("client_name is required")
	}
	if len(m.RedirectURIs) == 0 {
		return ClientMetadata{}, docErrorf("redirect_uris is required")
	}
	// RFC 7591's default method is a shared secret, which a document
	// cannot have: a document that names no method is a public client.
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = AuthNone
	}
	if m.TokenEndpointAuthMethod != AuthNone && m.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		return ClientMetadata{}, docErrorf("token_endpoint_auth_method %q: a metadata document client uses none or private_key_jwt", m.TokenEndpointAuthMethod)
	}
	if err := m.normalize(scopes); err != nil {
		return ClientMetadata{}, docErrorf("%v", err)
	}
	return m, nil
}

// fetchKeys reads a document's jwks_uri under the same rules as the
// document.
func (d *metadataDocs) fetchKeys(ctx context.Context, uri string) (*josev3.JSONWebKeySet, error) {
	resp, err := d.fetcher.GetJSON(ctx, uri)
	if err != nil {
		return nil, docErrorf("fetch jwks_uri: %v", err)
	}
	var set josev3.JSONWebKeySet
	if err := json.Unmarshal(resp.Body, &set); err != nil || len(set.Keys) == 0 {
		return nil, docErrorf("jwks_uri is not a JWK set with at least one key")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, docErrorf("jwks_uri must hold public keys only")
		}
	}
	return &set, nil
}

// record makes the stored client match the document. A change that could
// send codes somewhere the user never approved (a new redirect URI) or
// that changes how the client proves itself (e.g. private_key_jwt to none,
// which would make its refresh tokens usable without a key) starts the
// client afresh: deleting the row revokes its tokens and consents.
func (d *metadataDocs) record(ctx context.Context, clientID string, m ClientMetadata) (*storage.OAuthClient, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode client metadata: %w", err)
	}
	clients := d.reg.store.OAuthClients()
	for range 3 { // another node may create or replace the row meanwhile
		now := d.reg.now().UTC().Truncate(time.Millisecond)
		rec, err := clients.Get(ctx, clientID)
		if errors.Is(err, storage.ErrNotFound) {
			rec = &storage.OAuthClient{ID: clientID, Source: storage.ClientSourceMetadataDoc, Metadata: raw, CreatedAt: now, UpdatedAt: now}
			err = d.reg.createClient(ctx, rec, m)
			if errors.Is(err, storage.ErrAlreadyExists) {
				continue
			}
			if errors.Is(err, storage.ErrInvalidValue) {
				return nil, docErrorf("client_id cannot be stored")
			}
			if err != nil {
				return nil, fmt.Errorf("store metadata document client: %w", err)
			}
			return rec, nil
		}
		if errors.Is(err, storage.ErrInvalidValue) {
			return nil, docErrorf("client_id cannot be stored")
		}
		if err != nil {
			return nil, fmt.Errorf("load metadata document client: %w", err)
		}
		if rec.Source != storage.ClientSourceMetadataDoc {
			return nil, docErrorf("client_id belongs to a client registered otherwise")
		}
		if bytes.Equal(rec.Metadata, raw) {
			return rec, nil
		}
		var old ClientMetadata
		if json.Unmarshal(rec.Metadata, &old) == nil && !trustChanged(old, m) {
			rec.Metadata, rec.UpdatedAt = raw, now
			err := clients.Update(ctx, rec)
			if err == nil {
				return rec, nil
			}
			if !errors.Is(err, storage.ErrNotFound) {
				return nil, fmt.Errorf("update metadata document client: %w", err)
			}
			continue // deleted meanwhile
		}
		if err := d.reg.deleteClient(ctx, clientID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("replace metadata document client: %w", err)
		}
		d.log.Info("client metadata document changed its redirect URIs or authentication; earlier grants and consents were revoked", "client_id", clientID)
	}
	return nil, fmt.Errorf("store metadata document client %s: too many concurrent changes", clientID)
}

// trustChanged reports a change after which earlier consent and grants no
// longer describe the client: a redirect URI added, or another way of
// authenticating. Removals and cosmetic changes keep them.
func trustChanged(old, cur ClientMetadata) bool {
	if old.TokenEndpointAuthMethod != cur.TokenEndpointAuthMethod {
		return true
	}
	for _, u := range cur.RedirectURIs {
		if !slices.Contains(old.RedirectURIs, u) {
			return true
		}
	}
	return false
}
