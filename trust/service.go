package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kavachos/kavach/storage"
)

// Service keeps agents' trust states. Events this node sees are applied
// to in-memory deltas at once (Record costs no database round trip) and
// merged into the stored state by Flush, which the server runs every
// second; Explain reads the stored state plus this node's pending delta.
// Several nodes each flush their own deltas: Merge makes the result the
// state of all the events. A node that dies loses at most its last
// unflushed second of events from the stored state; every event is in the
// audit log, and RecomputeFromAudit rebuilds the state from it.
//
// Observe queues what an agent did for the anomaly detectors in the same
// way; Flush runs them (see observe.go and flush_findings.go).
type Service struct {
	store     storage.Store
	model     Model
	detectors DetectorConfig
	now       func() time.Time
	logger    *slog.Logger

	mu       sync.Mutex
	pending  map[string]*State
	observed map[string][]Observation
	queued   int            // observations in observed, all agents
	dropped  map[string]int // observations the queue had no room for, per agent
	levels   map[string]cachedLevel
	// levelGen counts stored flushes: a level read before one must not be
	// cached after it.
	levelGen uint64

	policies *Policies // nil until EnablePolicies

	// flushing makes flushes take turns, so that when Flush returns,
	// everything recorded before it was called is stored, even if the
	// server's periodic flush had taken it and was still committing.
	flushing sync.Mutex
}

// NewService validates the model and the detectors' configuration (the
// zero DetectorConfig stands for DefaultDetectorConfig) and returns a
// Service.
func NewService(store storage.Store, m Model, d DetectorConfig, now func() time.Time, logger *slog.Logger) (*Service, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if d == (DetectorConfig{}) {
		d = DefaultDetectorConfig()
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: store, model: m, detectors: d, now: now, logger: logger, pending: make(map[string]*State),
		observed: make(map[string][]Observation), dropped: make(map[string]int)}, nil
}

// Model returns the score model in use.
func (s *Service) Model() Model { return s.model }

// Record applies one event of an agent (in memory, until Flush).
func (s *Service) Record(agentID string, e Event) {
	if agentID == "" || !e.Signal.IsEvent() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pending[agentID]
	if st == nil {
		st = &State{}
		s.pending[agentID] = st
	}
	st.Apply(e, s.model)
}

// Flush merges every pending delta into the stored states, with the score
// and level as of now, and runs the detectors on the queued observations
// (detect). A delta whose merge fails goes back to pending, and its
// observations to the queue (unless its agent no longer exists), so
// nothing is lost to a failed flush. Flushes take turns: one that starts
// while another runs waits for it.
func (s *Service) Flush(ctx context.Context) error {
	s.flushing.Lock()
	defer s.flushing.Unlock()
	s.mu.Lock()
	batch := s.pending
	s.pending = make(map[string]*State, len(batch))
	observed, dropped := s.takeObservations()
	s.mu.Unlock()
	s.logDropped(dropped)
	for id := range observed {
		if batch[id] == nil {
			batch[id] = &State{} // observations only: the state merges nothing
		}
	}
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a fixed lock order across nodes
	var errs []error
	now := s.now()
	for _, id := range ids {
		delta := batch[id]
		var after func(context.Context)
		err := s.store.InTx(ctx, func(tx storage.Store) error {
			after = nil
			var found []Finding
			err := tx.TrustStates().Update(ctx, id, func(ts *storage.TrustState) error {
				st, err := decodeState(ts.State)
				if err != nil {
					return err
				}
				// The score before this batch: now, or as last stored if
				// that was higher (a fall while idle, by decay, still
				// crosses a line), so a recovery while idle counts too.
				before := st.Score(now, s.model).Score
				if ts.State != nil {
					before = max(before, ts.Score)
				}
				st.Merge(*delta, s.model)
				// The detectors see this node's observations; their
				// findings move the score before policies look at it.
				if found, err = s.detect(ts, &st, observed[id], now); err != nil {
					return err
				}
				if err := s.encode(ts, st, now); err != nil {
					return err
				}
				if s.policies != nil {
					after, err = s.policies.scoreChanged(ctx, tx, id, before, ts.Score, now)
				}
				return err
			})
			if err != nil {
				return err
			}
			return storeFindings(ctx, tx, id, found, now)
		})
		switch {
		case err == nil:
			s.mu.Lock()
			delete(s.levels, id) // this node reads the new level at once
			s.levelGen++
			s.mu.Unlock()
			if after != nil {
				after(ctx)
			}
		case errors.Is(err, storage.ErrNotFound):
			// The agent was deleted: its events go with it.
		default:
			errs = append(errs, fmt.Errorf("trust: flush agent %s: %w", id, err))
			s.mu.Lock()
			if st := s.pending[id]; st != nil {
				delta.Merge(*st, s.model)
			}
			s.pending[id] = delta
			s.requeue(id, observed[id])
			s.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

func (s *Service) encode(ts *storage.TrustState, st State, now time.Time) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("trust: encode state: %w", err)
	}
	br := st.Score(now, s.model)
	ts.State, ts.Score, ts.Level = b, br.Score, string(br.Level)
	return nil
}

func decodeState(b []byte) (State, error) {
	var st State
	if len(b) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("trust: stored state does not decode: %w", err)
	}
	return st, nil
}

// State returns the agent's state: the stored one with this node's
// pending events merged in.
func (s *Service) State(ctx context.Context, agentID string) (State, error) {
	var st State
	ts, err := s.store.TrustStates().Get(ctx, agentID)
	switch {
	case err == nil:
		if st, err = decodeState(ts.State); err != nil {
			return State{}, err
		}
	case !errors.Is(err, storage.ErrNotFound):
		return State{}, fmt.Errorf("trust: load state: %w", err)
	}
	s.mu.Lock()
	if p := s.pending[agentID]; p != nil {
		st.Merge(*p, s.model)
	}
	s.mu.Unlock()
	return st, nil
}

// Explain returns the agent's score now, with what each signal
// contributed.
func (s *Service) Explain(ctx context.Context, agentID string) (Breakdown, State, error) {
	st, err := s.State(ctx, agentID)
	if err != nil {
		return Breakdown{}, State{}, err
	}
	return st.Score(s.now(), s.model), st, nil
}

// RecomputeFromAudit rebuilds the agent's state from the audit log, in
// the log's order (see EventFromAudit).
func (s *Service) RecomputeFromAudit(ctx context.Context, agentID string) (State, error) {
	var recs []storage.AuditRecord
	f := storage.AuditFilter{AgentID: agentID, Limit: storage.AuditQueryMax}
	for {
		page, next, err := s.store.Audit().Query(ctx, f)
		if err != nil {
			return State{}, fmt.Errorf("trust: read the audit log: %w", err)
		}
		recs = append(recs, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	var st State
	for i := len(recs) - 1; i >= 0; i-- { // Query is newest first
		if id, e, ok := EventFromAudit(recs[i]); ok && id == agentID {
			st.Apply(e, s.model)
		}
	}
	return st, nil
}

// Replace stores st as the agent's state (kavach trust recompute --write).
// Events pending on this node for the agent are dropped, not applied
// twice: st should come from the audit log, which holds them. Queued
// observations stay: the log does not hold them, and the next flush
// replays them through the baseline, which Replace leaves as it is.
func (s *Service) Replace(ctx context.Context, agentID string, st State) error {
	s.mu.Lock()
	delete(s.pending, agentID)
	s.mu.Unlock()
	now := s.now()
	return s.store.TrustStates().Update(ctx, agentID, func(ts *storage.TrustState) error { return s.encode(ts, st, now) })
}

// levelCacheTTL bounds how old a level LevelOf answers may be.
const levelCacheTTL = 5 * time.Second

type cachedLevel struct {
	level Level
	at    time.Time
}

// LevelOf returns the agent's trust level now, from a short cache (at most
// levelCacheTTL old), for hot paths such as token issuance.
func (s *Service) LevelOf(ctx context.Context, agentID string) (Level, error) {
	now := s.now()
	s.mu.Lock()
	if c, ok := s.levels[agentID]; ok && now.Sub(c.at) < levelCacheTTL && !now.Before(c.at) {
		s.mu.Unlock()
		return c.level, nil
	}
	gen := s.levelGen
	s.mu.Unlock()
	st, err := s.State(ctx, agentID)
	if err != nil {
		return "", err
	}
	l := st.Score(now, s.model).Level
	s.mu.Lock()
	if s.levels == nil || len(s.levels) >= 100_000 {
		s.levels = make(map[string]cachedLevel)
	}
	if s.levelGen == gen {
		s.levels[agentID] = cachedLevel{l, now}
	}
	s.mu.Unlock()
	return l, nil
}
