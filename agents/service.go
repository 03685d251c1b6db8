package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/outbox"
	"github.com/kavachos/kavach/storage"
)

// Recorder writes one audit record and returns once it is durable.
// authz.AuditWriter satisfies it; the record's ID is the audit id callers
// see, so Decide sets it.
type Recorder interface {
	Record(ctx context.Context, r storage.AuditRecord) (int64, error)
}

// Config holds the knobs of the agents service; zero values take the
// defaults below.
type Config struct {
	// MaxAgentsPerOwner bounds the agents a user owns that are not
	// revoked; default 50.
	MaxAgentsPerOwner int
	// KeyPrefix starts every API key; default "kv_" (KavachOS's).
	KeyPrefix string
	// MaxDelegationDepth bounds delegation chains (see Delegate); default
	// DefaultMaxDelegationDepth, at most HardMaxDelegationDepth.
	MaxDelegationDepth int
	// BudgetTimeZone is where budget periods begin and end (calendar days
	// and months); default UTC.
	BudgetTimeZone *time.Location
	// ApprovalTTL is how long an approval request stays pending, and how
	// long a once approval stays usable after it is given; default 1h.
	ApprovalTTL time.Duration
	// Trust, when set, hears every decision about an agent and every
	// denied approval, for the agent's trust score.
	Trust TrustObserver
	// TrustGate, when set, applies trust policies in Decide.
	TrustGate TrustGate
	Now       func() time.Time
	Logger    *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxAgentsPerOwner <= 0 {
		c.MaxAgentsPerOwner = 50
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "kv_"
	}
	if c.MaxDelegationDepth <= 0 {
		c.MaxDelegationDepth = DefaultMaxDelegationDepth
	}
	if c.BudgetTimeZone == nil {
		c.BudgetTimeZone = time.UTC
	}
	if c.ApprovalTTL <= 0 {
		c.ApprovalTTL = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that cannot work. Zero values are
// valid: they take the defaults.
func (c Config) Validate() error {
	if c.MaxAgentsPerOwner < 0 {
		return errors.New("agents: MaxAgentsPerOwner must not be negative")
	}
	if c.MaxDelegationDepth < 0 || c.MaxDelegationDepth > HardMaxDelegationDepth {
		return fmt.Errorf("agents: MaxDelegationDepth must be between 0 (the default, %d) and %d", DefaultMaxDelegationDepth, HardMaxDelegationDepth)
	}
	if c.ApprovalTTL < 0 {
		return errors.New("agents: ApprovalTTL must not be negative")
	}
	if len(c.KeyPrefix) > 8 {
		return errors.New("agents: KeyPrefix must be at most 8 bytes")
	}
	for _, r := range c.KeyPrefix {
		if !(r == '_' || r == '-' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return fmt.Errorf("agents: KeyPrefix %q may hold only ASCII letters, digits, '_' and '-'", c.KeyPrefix)
		}
	}
	return nil
}

// TrustGate applies trust policies to calls (package trust, wired by
// package kavach).
type TrustGate interface {
	// Gate answers for a call of resource by agentID, whose organization
	// is orgID ("" when none) and whose ancestors (nearest first) are
	// given. An error refuses the call as UNAVAILABLE.
	Gate(ctx context.Context, agentID, orgID string, ancestors []string, resource string) (TrustAnswer, error)
}

// TrustAnswer is a trust gate's answer.
type TrustAnswer struct {
	// Refuse refuses the call (TRUST_TOO_LOW); Approval asks for a
	// person's approval first. Neither: the policies let it through.
	Refuse, Approval bool
	Reason           string // a sentence for people
	PolicyID         string // the deciding policy, for the audit record
	Level            string // the level the policy compared, likewise
}

// TrustObserver receives what moves an agent's trust score and what its
// anomaly detectors observe (package trust, wired by package kavach).
// Times are those of the audit records the events are in, so a score
// rebuilt from the log agrees. Both methods run on the request's path:
// they must only queue.
type TrustObserver interface {
	Decision(d TrustDecision)
	ApprovalDenied(agentID string, at time.Time)
}

// TrustDecision is a decision about an agent (not a dry run) as the trust
// observer hears it: what the score needs (the code, the probe flag, the
// time) and what the detectors need (the request's address, User-Agent,
// resource and credential).
type TrustDecision struct {
	AgentID   string
	Code      string // CodeAllowed when allowed
	Probe     bool
	At        time.Time
	IP        netip.Addr // the zero Addr when unknown
	UserAgent string
	Resource  string
	TokenID   string // DecideRequest.TokenID
}

// Limits on what a caller may store with an agent.
const (
	MaxNameRunes     = 128
	MaxMetadataBytes = 16 << 10
	// MaxAgentGrants bounds an agent's own grants, well below MaxGrants
	// (which also has to hold delegated ones).
	MaxAgentGrants = 1000
)

// Service manages agent principals — lifecycle, API keys, permissions —
// and decides what they may do (Decide). It speaks no HTTP.
type Service struct {
	cfg     Config
	store   storage.Store
	audit   Recorder
	cache   *principalCache
	limits  *rateCounters
	clients clientIndex
	keys    keyCache

	// ownerLocks serialize Create per owner within this process, so the
	// quota holds under concurrent requests on PostgreSQL too (SQLite
	// serializes write transactions anyway).
	ownerLocks [32]sync.Mutex
	ownerSeed  maphash.Seed
}

// NewService builds the service. audit receives every decision record.
func NewService(store storage.Store, audit Recorder, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{
		cfg:       cfg,
		store:     store,
		audit:     audit,
		cache:     newPrincipalCache(principalCacheTTL, principalCacheSize),
		limits:    newRateCounters(rateCounterKeys),
		ownerSeed: maphash.MakeSeed(),
	}
}

// now is the service clock, at the millisecond precision both stores keep,
// so what a call returns equals what a later read returns.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// Event types written to the outbox (and audit events of the same name).
const (
	EventAgentCreated   = "agent.created"
	EventAgentUpdated   = "agent.updated"
	EventAgentSuspended = "agent.suspended"
	EventAgentResumed   = "agent.resumed"
	EventAgentRevoked   = "agent.revoked"
	EventAgentRotated   = "agent.rotated"
)

// CreateInput describes a new agent.
type CreateInput struct {
	OwnerUserID string
	Name        string
	Type        string // storage.AgentAutonomous (default), AgentDelegated or AgentService
	Permissions []Grant
	ExpiresAt   *time.Time
	Metadata    json.RawMessage // a JSON object; empty means {}
	// OrganizationID, when set, puts the agent in that organization; the
	// owner must be a member of it (any role).
	OrganizationID string
}

// Create stores a new active agent with its grants and one API key, all in
// one transaction with its outbox event and audit record. The key is
// returned only here (and by Rotate); only its SHA-256 is stored. Grant
// IDs in the input are ignored: every grant gets a new one.
func (s *Service) Create(ctx context.Context, in CreateInput) (storage.Agent, []Grant, string, error) {
	now := s.now()
	if in.OwnerUserID == "" {
		return storage.Agent{}, nil, "", invalid("owner", "an agent needs an owner")
	}
	name, err := checkAgentName(in.Name)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	typ := in.Type
	switch typ {
	case "":
		typ = storage.AgentAutonomous
	case storage.AgentAutonomous, storage.AgentDelegated, storage.AgentService:
	default:
		return storage.Agent{}, nil, "", invalid("type", "must be %q, %q or %q",
			storage.AgentAutonomous, storage.AgentDelegated, storage.AgentService)
	}
	md, err := checkMetadata(in.Metadata)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	expires, err := checkExpiry(in.ExpiresAt, now)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	grants, err := checkGrants(in.Permissions)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	owner := in.OwnerUserID
	if grants, err = s.boundByOwner(ctx, s.store, owner, grants, now); err != nil {
		return storage.Agent{}, nil, "", err
	}
	a := storage.Agent{
		ID: id.New("agt"), Type: typ, Name: name, OwnerUserID: &owner, Status: storage.AgentActive,
		Metadata: md, CreatedAt: now, UpdatedAt: now, ExpiresAt: expires,
	}
	if in.OrganizationID != "" {
		org := in.OrganizationID
		a.OrganizationID = &org
	}
	grants, rows, err := grantRows(a.ID, grants, nil, now)
	if err != nil {
		return storage.Agent{}, nil, "", err
	}
	key, k := s.newKey(a.ID, now)
	payload := map[string]any{"agentId": a.ID, "ownerUserId": owner, "name": a.Name, "type": a.Type, "keyPrefix": k.Prefix}
	extra := map[string]any{"keyPrefix": k.Prefix, "grants": len(grants)}
	if err := s.insert(ctx, &a, rows, &k, EventAgentCreated, payload, extra, nil); err != nil {
		return storage.Agent{}, nil, "", fmt.Errorf("create agent: %w", err)
	}
	return a, grants, key, nil
}

// insert stores a new agent with its grants and key, under the owner's
// quota, with its outbox event and audit record, in one transaction.
// check, when set, runs first inside the transaction.
func (s *Service) insert(ctx context.Context, a *storage.Agent, rows []storage.AgentGrant, k *storage.AgentKey,
	event string, payload, extra map[string]any, check func(tx storage.Store) error) error {
	owner := *a.OwnerUserID
	unlock := s.lockOwner(owner)
	defer unlock()
	return s.store.InTx(ctx, func(tx storage.Store) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		if _, err := tx.Users().Get(ctx, owner); err != nil {
			if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
				return invalid("owner", "no such user")
			}
			return err
		}
		owned, err := tx.Agents().ListByOwner(ctx, owner)
		if err != nil {
			return err
		}
		live := 0
		for i := range owned {
			if owned[i].Status != storage.AgentRevoked {
				live++
			}
		}
		if live >= s.cfg.MaxAgentsPerOwner {
			return ErrQuotaExceeded
		}
		if a.OrganizationID != nil {
			if err := checkOrgMember(ctx, tx, *a.OrganizationID, owner); err != nil {
				return err
			}
		}
		if err := tx.Agents().Create(ctx, a); err != nil {
			return err
		}
		if err := tx.AgentGrants().Replace(ctx, a.ID, rows); err != nil {
			return err
		}
		if err := tx.AgentKeys().Create(ctx, k); err != nil {
			return err
		}
		if a.OrganizationID != nil {
			payload["organizationId"] = *a.OrganizationID
		}
		if err := emit(ctx, tx, event, a.ID, payload, a.CreatedAt); err != nil {
			return err
		}
		return appendSecurity(ctx, tx, securityRecord(ctx, event, a, a.CreatedAt, extra))
	})
}

func (s *Service) lockOwner(owner string) (unlock func()) {
	m := &s.ownerLocks[maphash.String(s.ownerSeed, owner)%uint64(len(s.ownerLocks))]
	m.Lock()
	return m.Unlock
}

// List returns the user's agents, oldest first, revoked ones included.
// Status is as of now: an agent past its expiry reads as expired.
func (s *Service) List(ctx context.Context, ownerUserID string) ([]storage.Agent, error) {
	list, err := s.store.Agents().ListByOwner(ctx, ownerUserID)
	if err != nil {
		if errors.Is(err, storage.ErrInvalidValue) {
			return nil, nil
		}
		return nil, fmt.Errorf("list agents: %w", err)
	}
	now := s.now()
	for i := range list {
		list[i].Status = effectiveStatus(&list[i], now)
	}
	return list, nil
}

// ListByOrganization returns the organization's agents, oldest first,
// revoked ones included, with Status as of now as in List.
func (s *Service) ListByOrganization(ctx context.Context, orgID string) ([]storage.Agent, error) {
	list, err := s.store.Agents().ListByOrganization(ctx, orgID)
	if err != nil {
		if errors.Is(err, storage.ErrInvalidValue) {
			return nil, nil
		}
		return nil, fmt.Errorf("list organization agents: %w", err)
	}
	now := s.now()
	for i := range list {
		list[i].Status = effectiveStatus(&list[i], now)
	}
	return list, nil
}

// checkOrgMember refuses an organization the user is not a member of (or
// that does not exist: the answer is the same). It takes the
// organization's row lock, as deleting the organization does, so an
// agent cannot join an organization that is being deleted.
func checkOrgMember(ctx context.Context, tx storage.Store, orgID, userID string) error {
	if orgID == "" {
		return nil
	}
	notMember := invalid("organizationId", "no such organization among yours")
	member := func() error {
		_, err := tx.Organizations().GetMember(ctx, orgID, userID)
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
			return notMember
		}
		return err
	}
	// Check before locking, so that nobody can hold the lock of an
	// organization they do not belong to; check again under the lock.
	if err := member(); err != nil {
		return err
	}
	if err := tx.Organizations().Lock(ctx, orgID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return notMember
		}
		return fmt.Errorf("lock organization: %w", err)
	}
	return member()
}

// Get returns the agent and its grants, read from the store (not the
// decision cache). Status is as of now, as in List.
func (s *Service) Get(ctx context.Context, agentID string) (storage.Agent, []Grant, error) {
	a, err := s.store.Agents().Get(ctx, agentID)
	if err != nil {
		return storage.Agent{}, nil, agentErr("get agent", err)
	}
	rows, err := s.store.AgentGrants().List(ctx, agentID)
	if err != nil {
		return storage.Agent{}, nil, fmt.Errorf("get agent grants: %w", err)
	}
	grants, err := decodeGrants(rows)
	if err != nil {
		return storage.Agent{}, nil, err
	}
	a.Status = effectiveStatus(a, s.now())
	return *a, grants, nil
}

// agentErr maps a storage error about one agent to the domain's.
func agentErr(op string, err error) error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return ErrAgentNotFound
	}
	return fmt.Errorf("%s: %w", op, err)
}

// UpdateInput changes the fields that are set. ExpiresAt set to a nil
// pointer removes the expiry.
type UpdateInput struct {
	Name *string
	// Permissions replace every grant. A grant whose ID names one of the
	// agent's current grants keeps it (and its rate-limit counters); any
	// other gets a new ID.
	Permissions *[]Grant
	Metadata    *json.RawMessage
	ExpiresAt   **time.Time
	// Status is storage.AgentActive (resume) or storage.AgentSuspended;
	// revoking is Revoke, and is permanent.
	Status *string
}

// Update changes a non-revoked agent, writing one outbox event and one
// audit record when anything changed (agent.suspended or agent.resumed
// when the status did, else agent.updated). Decisions in this process see
// the change at once, other nodes within principalCacheTTL.
func (s *Service) Update(ctx context.Context, agentID string, in UpdateInput) (storage.Agent, []Grant, error) {
	now := s.now()
	u, err := checkUpdate(in, now)
	if err != nil {
		return storage.Agent{}, nil, err
	}
	var a *storage.Agent
	var grants []Grant
	err = s.store.InTx(ctx, func(tx storage.Store) error {
		a, grants, err = u.apply(ctx, s, tx, agentID, now)
		return err
	})
	if err != nil {
		return storage.Agent{}, nil, fmt.Errorf("update agent: %w", err)
	}
	s.cache.invalidate(agentID)
	a.Status = effectiveStatus(a, now)
	return *a, grants, nil
}

// update is an UpdateInput whose values have been checked.
type update struct {
	in      UpdateInput
	name    string
	md      []byte
	expires *time.Time
	grants  []Grant
}

func checkUpdate(in UpdateInput, now time.Time) (update, error) {
	u := update{in: in}
	var err error
	if in.Name != nil {
		if u.name, err = checkAgentName(*in.Name); err != nil {
			return u, err
		}
	}
	if in.Metadata != nil {
		if u.md, err = checkMetadata(*in.Metadata); err != nil {
			return u, err
		}
	}
	if in.ExpiresAt != nil {
		if u.expires, err = checkExpiry(*in.ExpiresAt, now); err != nil {
			return u, err
		}
	}
	if in.Status != nil && *in.Status != storage.AgentActive && *in.Status != storage.AgentSuspended {
		return u, invalid("status", "must be %q or %q; revoke the agent to end it", storage.AgentActive, storage.AgentSuspended)
	}
	if in.Permissions != nil {
		if u.grants, err = checkGrants(*in.Permissions); err != nil {
			return u, err
		}
	}
	return u, nil
}

// apply makes the update in tx and returns the agent and its grants.
func (u update) apply(ctx context.Context, s *Service, tx storage.Store, agentID string, now time.Time) (*storage.Agent, []Grant, error) {
	a, err := tx.Agents().Get(ctx, agentID)
	if err != nil {
		return nil, nil, agentErr("get agent", err)
	}
	if a.Status == storage.AgentRevoked {
		return nil, nil, ErrAgentRevoked
	}
	if a.ParentID != nil && (u.in.Permissions != nil || u.in.ExpiresAt != nil) {
		// A sub-agent stays within what its parent may do and lives no
		// longer than it.
		parent, parentGrants, err := s.delegator(ctx, tx, *a.ParentID, now)
		if err != nil {
			return nil, nil, fmt.Errorf("sub-agent's parent: %w", err)
		}
		if u.in.ExpiresAt != nil && parent.ExpiresAt != nil && (u.expires == nil || u.expires.After(*parent.ExpiresAt)) {
			return nil, nil, invalid("expiresAt", "a sub-agent cannot outlive the agent that delegated to it (%s)", parent.ExpiresAt.Format(time.RFC3339))
		}
		if u.in.Permissions != nil {
			if u.grants, err = narrow(parentGrants, u.grants, now); err != nil {
				return nil, nil, err
			}
		}
	}
	if a.ParentID == nil && a.OwnerUserID != nil && u.in.Permissions != nil {
		if u.grants, err = s.boundByOwner(ctx, tx, *a.OwnerUserID, u.grants, now); err != nil {
			return nil, nil, err
		}
	}
	var changed []string
	if u.in.Name != nil && u.name != a.Name {
		a.Name = u.name
		changed = append(changed, "name")
	}
	if u.in.Metadata != nil && string(u.md) != string(a.Metadata) {
		a.Metadata = u.md
		changed = append(changed, "metadata")
	}
	if u.in.ExpiresAt != nil && !sameInstant(u.expires, a.ExpiresAt) {
		a.ExpiresAt = u.expires
		changed = append(changed, "expiresAt")
	}
	if len(changed) > 0 {
		a.UpdatedAt = now
		if err := tx.Agents().Update(ctx, a); err != nil {
			return nil, nil, agentErr("update agent", err)
		}
	}
	event := EventAgentUpdated
	if u.in.Status != nil && *u.in.Status != a.Status {
		if err := tx.Agents().SetStatus(ctx, a.ID, *u.in.Status, now); err != nil {
			return nil, nil, agentErr("set agent status", err)
		}
		a.Status, a.UpdatedAt = *u.in.Status, now
		changed = append(changed, "status")
		event = EventAgentResumed
		if a.Status == storage.AgentSuspended {
			event = EventAgentSuspended
		}
	}
	current, err := tx.AgentGrants().List(ctx, a.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("list agent grants: %w", err)
	}
	var grants []Grant
	if u.in.Permissions != nil {
		var rows []storage.AgentGrant
		if grants, rows, err = grantRows(a.ID, u.grants, current, now); err != nil {
			return nil, nil, err
		}
		if err := tx.AgentGrants().Replace(ctx, a.ID, rows); err != nil {
			return nil, nil, fmt.Errorf("replace agent grants: %w", err)
		}
		changed = append(changed, "permissions")
	} else if grants, err = decodeGrants(current); err != nil {
		return nil, nil, err
	}
	if len(changed) == 0 {
		return a, grants, nil
	}
	info := map[string]any{"agentId": a.ID, "changed": changed, "status": a.Status}
	if err := emit(ctx, tx, event, a.ID, info, now); err != nil {
		return nil, nil, err
	}
	return a, grants, appendSecurity(ctx, tx, securityRecord(ctx, event, a, now, info))
}

// Revoke ends an agent for good: status revoked, every API key revoked,
// the access and refresh tokens of its OAuth client deactivated, with an
// outbox event and an audit record — and the same for every sub-agent
// below it, however deep — in one transaction. Revoking a revoked agent
// is not an error; it revokes any sub-agent of it still active.
func (s *Service) Revoke(ctx context.Context, agentID string) error {
	now := s.now()
	var revoked []string
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		revoked = revoked[:0]
		if err := tx.Agents().Lock(ctx, agentID); err != nil {
			return agentErr("lock agent", err)
		}
		a, err := tx.Agents().Get(ctx, agentID)
		if err != nil {
			return agentErr("get agent", err)
		}
		// An agent already revoked is walked too: a sub-agent created while
		// it was being revoked elsewhere is caught the next time.
		queue := []*storage.Agent{a}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			if cur.ID != a.ID {
				if err := tx.Agents().Lock(ctx, cur.ID); err != nil {
					return agentErr("lock sub-agent", err)
				}
			}
			if cur.Status != storage.AgentRevoked {
				cause := ""
				if cur.ID != a.ID {
					cause = a.ID
				}
				if err := revokeOne(ctx, tx, cur, cause, now); err != nil {
					return err
				}
				revoked = append(revoked, cur.ID)
			}
			kids, err := tx.Agents().ListChildren(ctx, cur.ID)
			if err != nil {
				return fmt.Errorf("list sub-agents: %w", err)
			}
			for i := range kids {
				queue = append(queue, &kids[i])
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke agent: %w", err)
	}
	for _, id := range revoked {
		s.cache.invalidate(id)
	}
	if len(revoked) > 0 {
		s.keys.clear()
	}
	return nil
}

// revokeOne revokes a in tx; cause, when set, is the ancestor whose
// revocation cascaded to it.
func revokeOne(ctx context.Context, tx storage.Store, a *storage.Agent, cause string, now time.Time) error {
	if err := tx.Agents().SetStatus(ctx, a.ID, storage.AgentRevoked, now); err != nil {
		return agentErr("revoke agent", err)
	}
	a.Status = storage.AgentRevoked
	keys, err := tx.AgentKeys().RevokeAgentKeys(ctx, a.ID, "", now)
	if err != nil {
		return fmt.Errorf("revoke agent keys: %w", err)
	}
	tokens := 0
	if a.ClientID != nil {
		if tokens, err = tx.OAuthTokens().DeactivateClient(ctx, *a.ClientID); err != nil {
			return fmt.Errorf("deactivate agent tokens: %w", err)
		}
	}
	extra := map[string]any{"keysRevoked": keys, "tokensDeactivated": tokens}
	payload := map[string]any{"agentId": a.ID, "keysRevoked": keys, "tokensDeactivated": tokens}
	if cause != "" {
		extra["revokedWith"], payload["revokedWith"] = cause, cause
	}
	if err := emit(ctx, tx, EventAgentRevoked, a.ID, payload, now); err != nil {
		return err
	}
	return appendSecurity(ctx, tx, securityRecord(ctx, EventAgentRevoked, a, now, extra))
}

// effectiveStatus is the agent's status at now. Expiry is not written to
// the store when it passes: an agent past ExpiresAt simply reads as
// expired, and moving ExpiresAt forward (Update) brings it back.
func effectiveStatus(a *storage.Agent, now time.Time) string {
	if (a.Status == storage.AgentActive || a.Status == storage.AgentSuspended) &&
		a.ExpiresAt != nil && !now.Before(*a.ExpiresAt) {
		return storage.AgentExpired
	}
	return a.Status
}

func sameInstant(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

func checkAgentName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid("name", "must not be empty")
	case !utf8.ValidString(s):
		return "", invalid("name", "must be valid UTF-8")
	case utf8.RuneCountInString(s) > MaxNameRunes:
		return "", invalid("name", "must be at most %d characters", MaxNameRunes)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		return "", invalid("name", "must not contain control or invisible formatting characters")
	}
	return s, nil
}

// checkMetadata accepts a JSON object (empty or null means {}) and returns
// it compacted.
func checkMetadata(raw json.RawMessage) ([]byte, error) {
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" || trimmed == "null" {
		return []byte("{}"), nil
	}
	if len(raw) > MaxMetadataBytes {
		return nil, invalid("metadata", "must be at most %d bytes", MaxMetadataBytes)
	}
	if !utf8.Valid(raw) || !json.Valid(raw) || trimmed[0] != '{' {
		return nil, invalid("metadata", "must be a JSON object")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, invalid("metadata", "must be a JSON object")
	}
	return b.Bytes(), nil
}

func checkExpiry(t *time.Time, now time.Time) (*time.Time, error) {
	if t == nil {
		return nil, nil
	}
	v := t.UTC().Truncate(time.Millisecond)
	if !v.After(now) {
		return nil, invalid("expiresAt", "must be in the future")
	}
	return &v, nil
}

// emit appends an outbox event inside the caller's transaction.
var emit = outbox.Emit

// actorKey carries who is acting (see WithActor).
type actorKey struct{}

type actor struct{ principalType, principalID string }

// WithActor names the principal on whose request a lifecycle call
// (Create, Update, Revoke, Rotate) runs, for its audit record: "user" and
// the user's id for an owner or an admin. Without it the record names the
// agent's owner.
func WithActor(ctx context.Context, principalType, principalID string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor{principalType, principalID})
}

// securityRecord is the audit record of a lifecycle change to a.
func securityRecord(ctx context.Context, event string, a *storage.Agent, now time.Time, extra map[string]any) storage.AuditRecord {
	r := storage.AuditRecord{
		ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: event,
		AgentID: a.ID, Action: event, Resource: "agent:" + a.ID, Result: storage.AuditOK,
	}
	if act, ok := ctx.Value(actorKey{}).(actor); ok {
		r.PrincipalType, r.PrincipalID = act.principalType, act.principalID
	} else if a.OwnerUserID != nil {
		r.PrincipalType, r.PrincipalID = "user", *a.OwnerUserID
	}
	if extra != nil {
		r.Extra, _ = json.Marshal(extra) // maps of strings and numbers always encode
	}
	return r
}

// appendSecurity writes a lifecycle audit record in the caller's
// transaction, so the record and the change commit together. (The
// group-committing Recorder cannot be used here: on SQLite it would wait
// for the write lock this transaction holds.)
func appendSecurity(ctx context.Context, tx storage.Store, r storage.AuditRecord) error {
	if err := tx.Audit().Append(ctx, []storage.AuditRecord{r}); err != nil {
		return fmt.Errorf("audit %s: %w", r.Event, err)
	}
	return nil
}
