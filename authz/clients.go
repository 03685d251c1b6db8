package authz

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// clientRegistry loads clients and registers new ones.
type clientRegistry struct {
	store     storage.Store
	scopes    []string // supported scopes
	resources []string // registered resources
	now       func() time.Time
	cache     sync.Map      // client id → cachedClient
	docs      *metadataDocs // nil when client ID metadata documents are off
	// allowDynamicMachines lets open registration create client_credentials
	// clients (development and interop tests only).
	allowDynamicMachines bool
}

// clientCacheTTL bounds how long a node uses its copy of a client: every
// token request authenticates a client, and reading and decoding it each
// time was a fifth of an issuance. Changes made on this node apply at once;
// on other nodes within this time.
const clientCacheTTL = 5 * time.Second

type cachedClient struct {
	c  *Client
	at time.Time
}

func (r *clientRegistry) forget(clientID string) {
	r.cache.Delete(clientID)
	if r.docs != nil {
		r.docs.forget(clientID)
	}
}

// ErrClientNotFound is returned for unknown client ids.
var ErrClientNotFound = errors.New("client not found")

func (r *clientRegistry) get(ctx context.Context, clientID string) (*Client, error) {
	if clientID == "" || len(clientID) > 2048 {
		return nil, fosite.ErrNotFound
	}
	if r.docs != nil && r.docs.handles(clientID) {
		return r.docs.get(ctx, clientID)
	}
	now := time.Now()
	if v, ok := r.cache.Load(clientID); ok {
		if cc := v.(cachedClient); now.Sub(cc.at) < clientCacheTTL {
			return cc.c, nil
		}
	}
	rec, err := r.store.OAuthClients().Get(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load client: %w", err)
	}
	if rec.Source == storage.ClientSourceMetadataDoc {
		// Only a fresh, valid document vouches for such a client; with
		// the feature off (or its URL no longer allowed) it is unknown.
		return nil, fosite.ErrNotFound
	}
	c, err := newClient(*rec, r.scopes, r.resources)
	if err != nil {
		return nil, err
	}
	r.cache.Store(clientID, cachedClient{c: c, at: now})
	return c, nil
}

// Registration is what registering a client returns. Secret and
// RegistrationToken are shown once and stored only as hashes.
type Registration struct {
	Client            *Client
	Secret            string // "" for public clients and private_key_jwt
	RegistrationToken string // RFC 7592 token, for dynamic clients
}

// Register validates metadata and stores a new client. Confidential
// clients using a shared secret get a server-made 256-bit secret.
func (r *clientRegistry) register(ctx context.Context, m ClientMetadata, source string) (Registration, error) {
	return r.registerFor(ctx, m, source, "")
}

// registerFor registers a client; with agentID set, the client is that
// existing agent's credential instead of a new agent.
func (r *clientRegistry) registerFor(ctx context.Context, m ClientMetadata, source, agentID string) (Registration, error) {
	if err := m.normalize(r.scopes); err != nil {
		return Registration{}, err
	}
	if source == storage.ClientSourceDynamic && !r.allowDynamicMachines &&
		(slices.Contains(m.GrantTypes, GrantClientCredentials) || slices.Contains(m.GrantTypes, GrantJWTBearer)) {
		// Open registration must not hand anyone a machine identity that
		// can mint tokens for every resource without a user.
		return Registration{}, badMetadata("machine clients (client_credentials, jwt-bearer) must be registered by an operator, not through open registration")
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return Registration{}, fmt.Errorf("encode client metadata: %w", err)
	}
	now := r.now().UTC().Truncate(time.Millisecond)
	rec := storage.OAuthClient{ID: id.New("cli"), Source: source, Metadata: raw, CreatedAt: now, UpdatedAt: now}
	var reg Registration
	if m.TokenEndpointAuthMethod == AuthClientSecretBasic || m.TokenEndpointAuthMethod == AuthClientSecretPost {
		reg.Secret = "kcs_" + id.Secret()
		rec.SecretHash = hashSecret(reg.Secret)
	}
	if source == storage.ClientSourceDynamic {
		reg.RegistrationToken = "krt_" + id.Secret()
		rec.RegistrationTokenHash = hashSecret(reg.RegistrationToken)
	}
	create := r.createClient
	if agentID != "" {
		create = func(ctx context.Context, rec *storage.OAuthClient, _ ClientMetadata) error {
			return r.store.InTx(ctx, func(tx storage.Store) error {
				if err := tx.OAuthClients().Create(ctx, rec); err != nil {
					return err
				}
				return tx.Agents().SetClientID(ctx, agentID, rec.ID, rec.CreatedAt)
			})
		}
	}
	if err := create(ctx, &rec, m); err != nil {
		if agentID != "" && (errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, storage.ErrNotFound)) {
			return Registration{}, fmt.Errorf("%w: %w", ErrAgentHasClient, err)
		}
		return Registration{}, fmt.Errorf("store client: %w", err)
	}
	c, err := newClient(rec, r.scopes, r.resources)
	if err != nil {
		return Registration{}, err
	}
	reg.Client = c
	return reg, nil
}

// agentTypeFor: clients that send users through the authorize endpoint act
// for them (delegated); the others are machine identities (service).
func agentTypeFor(m ClientMetadata) string {
	if slices.Contains(m.GrantTypes, GrantAuthorizationCode) {
		return storage.AgentDelegated
	}
	return storage.AgentService
}

// createClient stores a client together with the agent principal it is:
// every client, however registered, is an agent, so audit, permissions
// and trust apply to it.
func (r *clientRegistry) createClient(ctx context.Context, rec *storage.OAuthClient, m ClientMetadata) error {
	return r.store.InTx(ctx, func(tx storage.Store) error {
		if err := tx.OAuthClients().Create(ctx, rec); err != nil {
			return err
		}
		name := m.ClientName
		if name == "" {
			name = rec.ID
		}
		return tx.Agents().Create(ctx, &storage.Agent{
			ID: id.New("agt"), Type: agentTypeFor(m), Name: name, ClientID: &rec.ID,
			Status: storage.AgentActive, CreatedAt: rec.CreatedAt, UpdatedAt: rec.CreatedAt,
		})
	})
}

// deleteClient removes a client (its tokens and consents cascade) and
// revokes its agent, which is kept for the audit trail.
func (r *clientRegistry) deleteClient(ctx context.Context, clientID string) error {
	now := r.now().UTC()
	err := r.store.InTx(ctx, func(tx storage.Store) error {
		a, err := tx.Agents().GetByClientID(ctx, clientID)
		switch {
		case err == nil:
			if err := tx.Agents().SetStatus(ctx, a.ID, storage.AgentRevoked, now); err != nil {
				return err
			}
		case !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrInvalidValue):
			return err
		}
		return tx.OAuthClients().Delete(ctx, clientID)
	})
	r.forget(clientID)
	return err
}

// authorizeManagement checks an RFC 7592 registration access token in
// constant time and returns the client it manages.
func (r *clientRegistry) authorizeManagement(ctx context.Context, clientID, token string) (*Client, error) {
	c, err := r.get(ctx, clientID)
	if err != nil {
		return nil, ErrClientNotFound
	}
	want := c.Record.RegistrationTokenHash
	if want == "" || token == "" || subtle.ConstantTimeCompare([]byte(want), []byte(hashSecret(token))) != 1 {
		return nil, ErrClientNotFound
	}
	return c, nil
}

// update replaces a dynamic client's metadata (RFC 7592 PUT).
func (r *clientRegistry) update(ctx context.Context, c *Client, m ClientMetadata) (*Client, error) {
	if err := m.normalize(r.scopes); err != nil {
		return nil, err
	}
	// The authentication method cannot change: a public client does not
	// get a secret by re-registering, nor a confidential one lose it.
	if m.TokenEndpointAuthMethod != c.Metadata.TokenEndpointAuthMethod {
		return nil, badMetadata("token_endpoint_auth_method cannot be changed")
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode client metadata: %w", err)
	}
	rec := c.Record
	rec.Metadata, rec.UpdatedAt = raw, r.now().UTC().Truncate(time.Millisecond)
	err = r.store.InTx(ctx, func(tx storage.Store) error {
		if err := tx.OAuthClients().Update(ctx, &rec); err != nil {
			return fmt.Errorf("update client: %w", err)
		}
		// A new redirect URI (or another way of authenticating) is not
		// what users approved: their consent and the grants end, as for a
		// changed metadata document.
		if trustChanged(c.Metadata, m) {
			if _, err := tx.OAuthConsents().DeleteByClient(ctx, rec.ID); err != nil {
				return fmt.Errorf("drop consents: %w", err)
			}
			if _, err := tx.OAuthTokens().DeactivateClient(ctx, rec.ID); err != nil {
				return fmt.Errorf("revoke grants: %w", err)
			}
		}
		return nil
	})
	r.forget(rec.ID)
	if err != nil {
		return nil, err
	}
	return newClient(rec, r.scopes, r.resources)
}

// RegisterClient pre-registers a client (CLI, admin API). It takes the
// same metadata as dynamic registration and returns the secret once.
func (s *Server) RegisterClient(ctx context.Context, m ClientMetadata) (Registration, error) {
	return s.clients.register(ctx, m, storage.ClientSourcePreregistered)
}

// ErrAgentHasClient refuses a second OAuth client for an agent (or a
// client for an agent that does not exist).
var ErrAgentHasClient = errors.New("the agent already has an OAuth client")

// RegisterAgentClient registers a confidential client as the OAuth
// credential of an existing agent (one agent, one identity, whichever way
// it authenticates). The metadata defaults to the client_credentials and
// token-exchange grants with client_secret_basic; the secret is returned
// once. ErrAgentHasClient if the agent has a client already.
func (s *Server) RegisterAgentClient(ctx context.Context, agentID, name string, m ClientMetadata) (Registration, error) {
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{GrantClientCredentials}
		if s.cfg.Agents != nil {
			m.GrantTypes = append(m.GrantTypes, GrantTokenExchange)
		}
	}
	if m.ClientName == "" {
		m.ClientName = name
	}
	if m.TokenEndpointAuthMethod == AuthNone {
		return Registration{}, badMetadata("an agent's client must authenticate (token_endpoint_auth_method none is not allowed)")
	}
	return s.clients.registerFor(ctx, m, storage.ClientSourcePreregistered, agentID)
}

// Client loads one client.
func (s *Server) Client(ctx context.Context, clientID string) (*Client, error) {
	c, err := s.clients.get(ctx, clientID)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, ErrClientNotFound
	}
	return c, err
}

// Clients lists clients in creation order.
func (s *Server) Clients(ctx context.Context, limit, offset int) ([]*Client, error) {
	recs, err := s.store.OAuthClients().List(ctx, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out := make([]*Client, 0, len(recs))
	for _, rec := range recs {
		c, err := newClient(rec, s.clients.scopes, s.clients.resources)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteClient removes a client with its tokens and consents.
func (s *Server) DeleteClient(ctx context.Context, clientID string) error {
	err := s.clients.deleteClient(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return ErrClientNotFound
	}
	return err
}

// AgentForClient returns the agent principal a client is.
func (s *Server) AgentForClient(ctx context.Context, clientID string) (*storage.Agent, error) {
	a, err := s.store.Agents().GetByClientID(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return nil, ErrClientNotFound
	}
	return a, err
}

// ErrNotResourceServer refuses a client that may not ask about others'
// tokens: unknown, wrong secret, public, or not registered by an operator.
var ErrNotResourceServer = errors.New("authz: not an operator-registered confidential client")

// AuthenticateResourceServer checks the credentials of a resource server:
// an operator-registered (kavach client create, admin API) confidential
// client with a secret. Such clients may introspect other clients' access
// tokens, and ask for decisions about them (POST /api/auth/authorize with
// "token"). The comparison takes the same time whatever the secret.
func (s *Server) AuthenticateResourceServer(ctx context.Context, clientID, secret string) (*Client, error) {
	c, err := s.Client(ctx, clientID)
	if err != nil || c.IsPublic() || c.Record.SecretHash == "" || !s.operatorClient(ctx, c) {
		_ = secretHasher{}.Compare(ctx, []byte(strings.Repeat("0", 64)), []byte(secret)) // the same work either way
		return nil, ErrNotResourceServer
	}
	if err := (secretHasher{}).Compare(ctx, c.GetHashedSecret(), []byte(secret)); err != nil {
		return nil, ErrNotResourceServer
	}
	return c, nil
}

// operatorClient reports whether c was registered by an operator (kavach
// client create, the admin API): preregistered, and not the client of an
// agent a user owns (which its owner registers, also as preregistered).
// Only such clients may ask about other clients' tokens.
func (s *Server) operatorClient(ctx context.Context, c *Client) bool {
	if c.Record.Source != storage.ClientSourcePreregistered {
		return false
	}
	a, err := s.store.Agents().GetByClientID(ctx, c.GetID())
	if errors.Is(err, storage.ErrNotFound) {
		return true // registered before every client had an agent
	}
	return err == nil && a.OwnerUserID == nil
}
