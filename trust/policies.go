package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/outbox"
	"github.com/kavachos/kavach/storage"
)

// Audit records and outbox events of policies and of what they do.
const (
	EventPolicyCreated = "trust.policy.created"
	EventPolicyUpdated = "trust.policy.updated"
	EventPolicyDeleted = "trust.policy.deleted"
	// EventAlert is emitted when an agent's score falls below an alert
	// policy's BelowScore.
	EventAlert = "trust.alert"
)

// PolicyConfig wires policies to the rest of the server (package kavach).
type PolicyConfig struct {
	// Compile parses resource patterns; required.
	Compile Compiler
	// Suspend suspends an active agent in tx, with its agent.suspended
	// event and audit record (info goes into both); false when the agent
	// was not active. Without it, suspend policies only log.
	Suspend func(ctx context.Context, tx storage.Store, agentID string, info map[string]any) (bool, error)
	// Suspended runs after the transaction that suspended an agent has
	// committed (to drop caches and tell the owner).
	Suspended func(ctx context.Context, s Suspension)
}

// Suspension describes an automatic suspension.
type Suspension struct {
	AgentID     string
	OwnerUserID string // "" when the agent has no owner
	AgentName   string
	Score       float64
	BelowScore  float64
	PolicyID    string
	PolicyName  string
}

// Policies keeps the trust policies: stored and versioned in the store,
// held compiled in memory for decisions. Each node reloads them when the
// store's epoch moves (Reload, run every second by the server), so a change
// made on any node applies on all without a restart.
type Policies struct {
	store  storage.Store
	cfg    PolicyConfig
	level  func(ctx context.Context, agentID string) (Level, error)
	now    func() time.Time
	logger *slog.Logger

	reload sync.Mutex
	snap   atomic.Pointer[policySnapshot]
}

type compiledPolicy struct {
	Policy
	match []Matcher
}

// policySnapshot is the enabled policies by scope, as of one epoch.
type policySnapshot struct {
	epoch   int64
	byScope map[PolicyScope][]*compiledPolicy
	// lines are the lowest and highest BelowScore of the suspend and
	// alert policies; hasLines is false without any. A fall that crosses
	// no line needs no look at the agent.
	hasLines          bool
	lowLine, highLine float64
}

func (p *policySnapshot) empty() bool { return p == nil || len(p.byScope) == 0 }

// Policies returns the service's policies, created by EnablePolicies; nil
// before.
func (s *Service) Policies() *Policies { return s.policies }

// EnablePolicies makes the service apply trust policies: Decide and token
// issuance consult them (through the server's wiring), and Flush acts on
// suspend and alert policies. It loads them once; call it before serving.
func (s *Service) EnablePolicies(ctx context.Context, cfg PolicyConfig) (*Policies, error) {
	if cfg.Compile == nil {
		return nil, errors.New("trust: PolicyConfig.Compile is required")
	}
	p := &Policies{store: s.store, cfg: cfg, level: s.LevelOf, now: s.now, logger: s.logger}
	if err := p.Reload(ctx); err != nil {
		return nil, err
	}
	s.policies = p
	return p, nil
}

// Reload reads the policies again if the store's epoch moved since the
// last read. The epoch is read first: a change committed between the two
// reads shows as a newer epoch next time, and is read again then.
func (p *Policies) Reload(ctx context.Context) error {
	p.reload.Lock()
	defer p.reload.Unlock()
	epoch, err := p.store.TrustPolicies().Epoch(ctx)
	if err != nil {
		return fmt.Errorf("trust: read the policies' epoch: %w", err)
	}
	if cur := p.snap.Load(); cur != nil && cur.epoch == epoch {
		return nil
	}
	recs, err := p.store.TrustPolicies().List(ctx)
	if err != nil {
		return fmt.Errorf("trust: read the policies: %w", err)
	}
	snap := &policySnapshot{epoch: epoch, byScope: make(map[PolicyScope][]*compiledPolicy)}
	for _, r := range recs {
		pol, err := policyFromRecord(r)
		if err != nil {
			return err
		}
		if !pol.Enabled {
			continue
		}
		c := &compiledPolicy{Policy: pol}
		for _, pat := range pol.Resources {
			m, err := p.cfg.Compile(pat)
			if err != nil {
				// Stored policies were checked when written; a pattern
				// that no longer parses must not silently drop a
				// requirement, so nothing is loaded.
				return fmt.Errorf("trust: policy %s: resource %q: %w", pol.ID, pat, err)
			}
			c.match = append(c.match, m)
		}
		snap.byScope[pol.Scope] = append(snap.byScope[pol.Scope], c)
		if pol.Effect == EffectSuspend || pol.Effect == EffectAlert {
			if !snap.hasLines {
				snap.hasLines, snap.lowLine, snap.highLine = true, pol.BelowScore, pol.BelowScore
			}
			snap.lowLine, snap.highLine = min(snap.lowLine, pol.BelowScore), max(snap.highLine, pol.BelowScore)
		}
	}
	p.snap.Store(snap)
	return nil
}

// Epoch is the epoch of the policies in force on this node.
func (p *Policies) Epoch() int64 {
	if s := p.snap.Load(); s != nil {
		return s.epoch
	}
	return 0
}

// applicable calls fn with every enabled policy that applies to an agent
// of organization org whose chain (the agent, then the agents above it)
// is given.
func (s *policySnapshot) applicable(org string, chain []string, fn func(*compiledPolicy)) {
	visit := func(sc PolicyScope) {
		for _, c := range s.byScope[sc] {
			fn(c)
		}
	}
	visit(PolicyScope{Type: storage.TrustPolicyGlobal})
	if org != "" {
		visit(PolicyScope{Type: storage.TrustPolicyOrganization, ID: org})
	}
	for _, a := range chain {
		visit(PolicyScope{Type: storage.TrustPolicyAgent, ID: a})
	}
}

// Subject is an agent as policies see it: its organization and its chain,
// the agent first, then the agents above it (nearest first).
type Subject struct {
	OrganizationID string
	Chain          []string
}

// Verdict is what policies say about a call or a scope.
type Verdict struct {
	// Effect is EffectMinimumLevel when the call is refused,
	// EffectRequireApproval when it needs approval, "" when no policy
	// stands in its way.
	Effect PolicyEffect
	Policy *Policy // the policy that decides; nil with no effect
	// Level is the subject's level: the lowest of its chain's (each agent
	// above a sub-agent vouches for it); AgentID is the agent whose level
	// it is. Both are empty when no policy applied.
	Level    Level
	AgentID  string
	Required Level
}

// Gate applies the minimum_level and require_approval policies to a call
// of resource by the subject. Levels are read only when some policy
// matches, so a server without policies pays one atomic load.
func (p *Policies) Gate(ctx context.Context, sub Subject, resource string) (Verdict, error) {
	snap := p.snap.Load()
	if snap.empty() {
		return Verdict{}, nil
	}
	var deny, approve *compiledPolicy
	snap.applicable(sub.OrganizationID, sub.Chain, func(c *compiledPolicy) {
		if c.Effect != EffectMinimumLevel && c.Effect != EffectRequireApproval {
			return
		}
		if !slices.ContainsFunc(c.match, func(m Matcher) bool { return m.Match(resource) }) {
			return
		}
		cur := &deny
		if c.Effect == EffectRequireApproval {
			cur = &approve
		}
		if *cur == nil || c.Level.Rank() > (*cur).Level.Rank() {
			*cur = c
		}
	})
	if deny == nil && approve == nil {
		return Verdict{}, nil
	}
	level, agentID, err := p.chainLevel(ctx, sub.Chain)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Level: level, AgentID: agentID}
	switch {
	case deny != nil && level.Rank() < deny.Level.Rank():
		v.Effect, v.Policy, v.Required = EffectMinimumLevel, &deny.Policy, deny.Level
	case approve != nil && level.Rank() < approve.Level.Rank():
		v.Effect, v.Policy, v.Required = EffectRequireApproval, &approve.Policy, approve.Level
	}
	return v, nil
}

// RefusedScopes applies the minimum_level policies on OAuth scopes to a
// token for the subject: it returns the scopes the subject's level does
// not reach, with the verdict of the first.
func (p *Policies) RefusedScopes(ctx context.Context, sub Subject, scopes []string) ([]string, Verdict, error) {
	snap := p.snap.Load()
	if snap.empty() || len(scopes) == 0 {
		return nil, Verdict{}, nil
	}
	need := make(map[string]*compiledPolicy)
	snap.applicable(sub.OrganizationID, sub.Chain, func(c *compiledPolicy) {
		if c.Effect != EffectMinimumLevel {
			return
		}
		for _, sc := range c.Scopes {
			if cur := need[sc]; slices.Contains(scopes, sc) && (cur == nil || c.Level.Rank() > cur.Level.Rank()) {
				need[sc] = c
			}
		}
	})
	if len(need) == 0 {
		return nil, Verdict{}, nil
	}
	level, agentID, err := p.chainLevel(ctx, sub.Chain)
	if err != nil {
		return nil, Verdict{}, err
	}
	var refused []string
	v := Verdict{Level: level, AgentID: agentID}
	for _, sc := range scopes {
		if c := need[sc]; c != nil && level.Rank() < c.Level.Rank() {
			refused = append(refused, sc)
			if v.Policy == nil {
				v.Effect, v.Policy, v.Required = EffectMinimumLevel, &c.Policy, c.Level
			}
		}
	}
	return refused, v, nil
}

// chainLevel is the lowest level in the chain, and whose it is.
func (p *Policies) chainLevel(ctx context.Context, chain []string) (Level, string, error) {
	var low Level
	var who string
	for _, a := range chain {
		l, err := p.level(ctx, a)
		if err != nil {
			return "", "", err
		}
		if who == "" || l.Rank() < low.Rank() {
			low, who = l, a
		}
	}
	return low, who, nil
}

// scoreChanged acts on the suspend and alert policies of an agent whose
// stored score went from before to after, in the flush's transaction tx.
// A policy acts when the score crosses its line downwards, once per
// crossing: a person who resumes an agent that is still below the line is
// not overruled until its score recovers and falls again. It returns what
// to run once tx has committed.
func (p *Policies) scoreChanged(ctx context.Context, tx storage.Store, agentID string, before, after float64, now time.Time) (func(context.Context), error) {
	snap := p.snap.Load()
	// Most falls (decay, a refusal) cross no line: then the agent and its
	// chain need not be read inside the flush.
	if snap.empty() || !snap.hasLines || after >= before || after >= snap.highLine || before < snap.lowLine {
		return nil, nil
	}
	a, chain, err := subjectInTx(ctx, tx, agentID)
	if err != nil {
		return nil, err
	}
	org := ""
	if a.OrganizationID != nil {
		org = *a.OrganizationID
	}
	var suspend *compiledPolicy
	var alerts []*compiledPolicy
	snap.applicable(org, chain, func(c *compiledPolicy) {
		if !(before >= c.BelowScore && after < c.BelowScore) {
			return
		}
		switch c.Effect {
		case EffectSuspend:
			if suspend == nil || c.BelowScore > suspend.BelowScore {
				suspend = c
			}
		case EffectAlert:
			alerts = append(alerts, c)
		}
	})
	for _, c := range alerts {
		payload := map[string]any{"agentId": agentID, "policyId": c.ID, "policyName": c.Name, "score": after,
			"previousScore": before, "belowScore": c.BelowScore, "ownerUserId": a.OwnerUserID}
		if err := outbox.Emit(ctx, tx, EventAlert, agentID, payload, now); err != nil {
			return nil, err
		}
		if err := appendRecord(ctx, tx, policyActionRecord(EventAlert, a, now, payload)); err != nil {
			return nil, err
		}
	}
	if suspend == nil {
		return nil, nil
	}
	if p.cfg.Suspend == nil {
		p.logger.Warn("trust: a suspend policy applies but suspension is not wired", "agent", agentID, "policy", suspend.ID)
		return nil, nil
	}
	info := map[string]any{"reason": "trust", "policyId": suspend.ID, "policyName": suspend.Name,
		"score": after, "belowScore": suspend.BelowScore}
	done, err := p.cfg.Suspend(ctx, tx, agentID, info)
	if err != nil || !done || p.cfg.Suspended == nil {
		return nil, err
	}
	sus := Suspension{AgentID: agentID, AgentName: a.Name, Score: after, BelowScore: suspend.BelowScore, PolicyID: suspend.ID, PolicyName: suspend.Name}
	if a.OwnerUserID != nil {
		sus.OwnerUserID = *a.OwnerUserID
	}
	return func(ctx context.Context) { p.cfg.Suspended(ctx, sus) }, nil
}

// subjectInTx loads the agent and its chain (the agent first) in tx.
func subjectInTx(ctx context.Context, tx storage.Store, agentID string) (*storage.Agent, []string, error) {
	a, err := tx.Agents().Get(ctx, agentID)
	if err != nil {
		return nil, nil, fmt.Errorf("trust: load agent %s: %w", agentID, err)
	}
	chain := []string{a.ID}
	for next, hops := a.ParentID, 0; next != nil && hops <= maxChain; hops++ {
		up, err := tx.Agents().Get(ctx, *next)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("trust: load agent %s: %w", *next, err)
		}
		chain = append(chain, up.ID)
		next = up.ParentID
	}
	return a, chain, nil
}

// maxChain bounds the walk up a delegation chain (package agents caps
// depth at 10).
const maxChain = 16

func policyActionRecord(event string, a *storage.Agent, now time.Time, extra map[string]any) storage.AuditRecord {
	r := storage.AuditRecord{ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: event,
		PrincipalType: "agent", PrincipalID: a.ID, AgentID: a.ID, Action: event, Resource: "agent:" + a.ID, Result: storage.AuditOK}
	r.Extra, _ = json.Marshal(extra) // strings and numbers always encode
	return r
}

func appendRecord(ctx context.Context, tx storage.Store, r storage.AuditRecord) error {
	if err := tx.Audit().Append(ctx, []storage.AuditRecord{r}); err != nil {
		return fmt.Errorf("trust: audit %s: %w", r.Event, err)
	}
	return nil
}

// Actor names who changes a policy, for its revisions and audit records:
// Type "user" (ID the user's id) or "cli". Platform is set for server
// admins and the CLI: they create platform policies and may change any;
// other actors create organization policies and may change only those.
type Actor struct {
	Type     string
	ID       string
	Platform bool
}

func (a Actor) name() string {
	if a.ID == "" {
		return a.Type
	}
	return a.ID
}

// List returns every policy, by creation.
func (p *Policies) List(ctx context.Context) ([]Policy, error) {
	recs, err := p.store.TrustPolicies().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("trust: list policies: %w", err)
	}
	out := make([]Policy, 0, len(recs))
	for _, r := range recs {
		pol, err := policyFromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, pol)
	}
	return out, nil
}

// Get returns one policy.
func (p *Policies) Get(ctx context.Context, policyID string) (Policy, error) {
	r, err := p.store.TrustPolicies().Get(ctx, policyID)
	if err != nil {
		return Policy{}, policyErr(err)
	}
	return policyFromRecord(*r)
}

// policyErr maps a storage error: an id no policy can have (not UTF-8,
// a NUL) is as unknown as any other.
func policyErr(err error) error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidValue) {
		return ErrPolicyNotFound
	}
	return fmt.Errorf("trust: policies: %w", err)
}

// Create stores a new policy at version 1, with its audit record and
// event, and applies it on this node at once (other nodes on their next
// Reload).
func (p *Policies) Create(ctx context.Context, by Actor, in PolicyInput) (Policy, error) {
	body, err := in.check(p.cfg.Compile)
	if err != nil {
		return Policy{}, err
	}
	if in.Version != 0 {
		return Policy{}, invalid("version: only for updates")
	}
	body.ManagedBy = ManagedByOrganization
	if by.Platform {
		body.ManagedBy = ManagedByPlatform
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return Policy{}, err
	}
	now := p.now().UTC().Truncate(time.Millisecond)
	rec := &storage.TrustPolicy{ID: id.New("tpol"), ScopeType: in.Scope.Type, ScopeID: in.Scope.ID, Body: raw, CreatedAt: now, CreatedBy: by.name()}
	var out Policy
	err = p.store.InTx(ctx, func(tx storage.Store) error {
		if err := scopeExists(ctx, tx, in.Scope); err != nil {
			return err
		}
		if err := tx.TrustPolicies().Create(ctx, rec); err != nil {
			return err
		}
		// Counted after the insert: Create locked the epoch first, so
		// concurrent creates take turns and none passes the cap.
		if n, err := tx.TrustPolicies().Count(ctx); err != nil {
			return err
		} else if n > MaxPolicies {
			return ErrTooManyPolicies
		}
		if out, err = policyFromRecord(*rec); err != nil {
			return err
		}
		return p.changed(ctx, tx, EventPolicyCreated, by, out, now)
	})
	if err != nil {
		return Policy{}, policyWriteErr(err)
	}
	p.reloadNow(ctx)
	return out, nil
}

// Update replaces a policy's content with in, as its next version. The
// scope cannot change (delete the policy and create another).
func (p *Policies) Update(ctx context.Context, by Actor, policyID string, in PolicyInput) (Policy, error) {
	body, err := in.check(p.cfg.Compile)
	if err != nil {
		return Policy{}, err
	}
	now := p.now().UTC().Truncate(time.Millisecond)
	var out Policy
	err = p.store.InTx(ctx, func(tx storage.Store) error {
		rec, err := tx.TrustPolicies().Update(ctx, policyID, func(r *storage.TrustPolicy) error {
			cur, err := policyFromRecord(*r)
			if err != nil {
				return err
			}
			switch {
			case !by.Platform && cur.ManagedBy != ManagedByOrganization:
				return ErrPolicyReadOnly
			case in.Version != 0 && in.Version != r.Version:
				return fmt.Errorf("%w: it is at version %d, not %d", ErrPolicyConflict, r.Version, in.Version)
			case r.ScopeType != in.Scope.Type || r.ScopeID != in.Scope.ID:
				return invalid("scope: a policy's scope cannot change; delete it and create another")
			}
			body.ManagedBy = cur.ManagedBy
			if r.Body, err = json.Marshal(body); err != nil {
				return err
			}
			r.UpdatedBy, r.UpdatedAt = by.name(), now
			return nil
		})
		if err != nil {
			return err
		}
		if out, err = policyFromRecord(*rec); err != nil {
			return err
		}
		return p.changed(ctx, tx, EventPolicyUpdated, by, out, now)
	})
	if err != nil {
		return Policy{}, policyWriteErr(err)
	}
	p.reloadNow(ctx)
	return out, nil
}

// Delete removes a policy; its history stays.
func (p *Policies) Delete(ctx context.Context, by Actor, policyID string) (Policy, error) {
	now := p.now().UTC().Truncate(time.Millisecond)
	var out Policy
	err := p.store.InTx(ctx, func(tx storage.Store) error {
		if !by.Platform {
			// Checked again under the lock Delete takes: managedBy never
			// changes, so this read cannot be raced.
			cur, err := tx.TrustPolicies().Get(ctx, policyID)
			if err != nil {
				return err
			}
			if pol, err := policyFromRecord(*cur); err != nil {
				return err
			} else if pol.ManagedBy != ManagedByOrganization {
				return ErrPolicyReadOnly
			}
		}
		rec, err := tx.TrustPolicies().Delete(ctx, policyID, by.name(), now)
		if err != nil {
			return err
		}
		if out, err = policyFromRecord(*rec); err != nil {
			return err
		}
		return p.changed(ctx, tx, EventPolicyDeleted, by, out, now)
	})
	if err != nil {
		return Policy{}, policyWriteErr(err)
	}
	p.reloadNow(ctx)
	return out, nil
}

func policyWriteErr(err error) error {
	switch {
	case errors.Is(err, ErrPolicyInvalid), errors.Is(err, ErrPolicyConflict), errors.Is(err, ErrTooManyPolicies), errors.Is(err, ErrPolicyReadOnly):
		return err
	case errors.Is(err, storage.ErrInvalidValue):
		// check() refuses what the store would; this is the safety net.
		return invalid("text must be valid UTF-8 without NUL characters")
	}
	return policyErr(err)
}

// reloadNow applies a change made here at once; a failure is only logged,
// since the next periodic Reload retries.
func (p *Policies) reloadNow(ctx context.Context) {
	if err := p.Reload(ctx); err != nil && ctx.Err() == nil {
		p.logger.Error("trust: reload policies after a change", "err", err)
	}
}

// changed writes a policy change's audit record and event in tx.
func (p *Policies) changed(ctx context.Context, tx storage.Store, event string, by Actor, pol Policy, now time.Time) error {
	r := storage.AuditRecord{ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: event,
		PrincipalType: by.Type, PrincipalID: by.ID, Action: event, Resource: "trust_policy:" + pol.ID, Result: storage.AuditOK}
	if pol.Scope.Type == storage.TrustPolicyAgent {
		r.AgentID = pol.Scope.ID
	}
	var err error
	if r.Extra, err = json.Marshal(map[string]any{"policy": pol}); err != nil {
		return err
	}
	if err := appendRecord(ctx, tx, r); err != nil {
		return err
	}
	return outbox.Emit(ctx, tx, event, pol.ID, pol, now)
}

// scopeExists checks that a policy's organization or agent exists.
func scopeExists(ctx context.Context, tx storage.Store, sc PolicyScope) error {
	var err error
	switch sc.Type {
	case storage.TrustPolicyOrganization:
		_, err = tx.Organizations().Get(ctx, sc.ID)
	case storage.TrustPolicyAgent:
		_, err = tx.Agents().Get(ctx, sc.ID)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return invalid("scope.id: no such %s", sc.Type)
	}
	return err
}

// PolicyRevision is one version of a policy.
type PolicyRevision struct {
	Version   int64     `json:"version"`
	Deleted   bool      `json:"deleted"`
	ChangedBy string    `json:"changedBy"`
	ChangedAt time.Time `json:"changedAt"`
	Policy    Policy    `json:"policy"`
}

// History returns every version of a policy, oldest first, also after it
// was deleted.
func (p *Policies) History(ctx context.Context, policyID string) ([]PolicyRevision, error) {
	revs, err := p.store.TrustPolicies().Revisions(ctx, policyID)
	if err != nil {
		return nil, policyErr(err)
	}
	if len(revs) == 0 {
		return nil, ErrPolicyNotFound
	}
	first := revs[0]
	out := make([]PolicyRevision, 0, len(revs))
	for _, r := range revs {
		var b policyBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			return nil, fmt.Errorf("trust: stored revision %d of policy %s does not decode: %w", r.Version, policyID, err)
		}
		pol, err := policyFromRecord(storage.TrustPolicy{ID: policyID, ScopeType: b.Scope.Type, ScopeID: b.Scope.ID, Body: r.Body,
			Version: r.Version, CreatedAt: first.ChangedAt, CreatedBy: first.ChangedBy, UpdatedAt: r.ChangedAt, UpdatedBy: r.ChangedBy})
		if err != nil {
			return nil, err
		}
		out = append(out, PolicyRevision{Version: r.Version, Deleted: r.Deleted, ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt.UTC(), Policy: pol})
	}
	return out, nil
}

// Active reports whether any policy is enabled on this node.
func (p *Policies) Active() bool { return !p.snap.Load().empty() }
