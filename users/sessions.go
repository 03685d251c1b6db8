package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// SessionView is a valid session with its user.
type SessionView struct {
	Session storage.Session
	User    storage.User
}

// IssuedSession is a new session and the bearer token for it. The token is
// shown to the client once and never stored.
type IssuedSession struct {
	Session storage.Session
	Token   string
}

// ClientInfo describes where a request came from, recorded on sessions.
type ClientInfo struct {
	IP        string
	UserAgent string
}

const maxUserAgentLength = 512

// newSession builds (but does not store) a session for user.
func (s *Service) newSession(userID string, persistent bool, client ClientInfo, method string, now time.Time) IssuedSession {
	token := id.Secret()
	ttl := s.cfg.SessionTTL
	if !persistent {
		ttl = s.cfg.BrowserSessionTTL
	}
	ua := cleanText(client.UserAgent, maxUserAgentLength)
	return IssuedSession{
		Token: token,
		Session: storage.Session{
			ID:         id.New("ses"),
			TokenHash:  id.Hash(token),
			UserID:     userID,
			ExpiresAt:  now.Add(ttl),
			CreatedAt:  now,
			UpdatedAt:  now,
			IPAddress:  client.IP,
			UserAgent:  ua,
			Persistent: persistent,
			Method:     method,
		},
	}
}

// createSession stores a session and its event in tx.
func (s *Service) createSession(ctx context.Context, tx storage.Store, userID string, persistent bool, client ClientInfo, method string, now time.Time) (IssuedSession, error) {
	return s.createSessionExtra(ctx, tx, userID, persistent, client, method, nil, now)
}

// Authenticate resolves a bearer token to its session and user. With slide
// it also extends the expiry, at most once per SessionUpdateAge; refreshed
// reports that it did, so the caller must re-send the cookie with the new
// expiry. Callers that cannot re-send a cookie pass slide=false, so the
// server's expiry never runs ahead of the browser's.
func (s *Service) Authenticate(ctx context.Context, token string, slide bool) (view SessionView, refreshed bool, err error) {
	if token == "" || len(token) > 256 {
		return SessionView{}, false, ErrUnauthenticated
	}
	now := s.now()
	hash := id.Hash(token)
	if v, ok := s.cache.get(hash, now); ok && (!slide || now.Sub(v.Session.UpdatedAt) < s.cfg.SessionUpdateAge) {
		return v, false, nil
	}
	gen := s.cache.generation()
	sess, err := s.store.Sessions().GetByTokenHash(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		s.cache.drop(hash)
		return SessionView{}, false, ErrUnauthenticated
	}
	if err != nil {
		return SessionView{}, false, fmt.Errorf("load session: %w", err)
	}
	if !now.Before(sess.ExpiresAt) {
		s.cache.drop(hash)
		// Expired rows are removed by the sweeper; deleting here too keeps
		// the table small without a scan.
		_ = s.store.Sessions().Delete(ctx, sess.ID)
		return SessionView{}, false, ErrUnauthenticated
	}
	user, err := s.store.Users().Get(ctx, sess.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return SessionView{}, false, ErrUnauthenticated
	}
	if err != nil {
		return SessionView{}, false, fmt.Errorf("load session user: %w", err)
	}
	if slide && now.Sub(sess.UpdatedAt) >= s.cfg.SessionUpdateAge {
		ttl := s.cfg.SessionTTL
		if !sess.Persistent {
			ttl = s.cfg.BrowserSessionTTL
		}
		sess.ExpiresAt, sess.UpdatedAt = now.Add(ttl), now
		if err := s.store.Sessions().Touch(ctx, sess.ID, sess.ExpiresAt, now); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return SessionView{}, false, ErrUnauthenticated
			}
			return SessionView{}, false, fmt.Errorf("slide session: %w", err)
		}
		refreshed = true
	}
	v := SessionView{Session: *sess, User: *user}
	s.cache.put(hash, v, now, gen)
	return v, refreshed, nil
}

// ListSessions returns the user's live sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	all, err := s.store.Sessions().ListByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	now := s.now()
	live := all[:0]
	for _, ss := range all {
		if now.Before(ss.ExpiresAt) {
			live = append(live, ss)
		}
	}
	return live, nil
}

// RevokeSession ends one of the user's sessions. A session of another user
// is reported as not found, never revoked.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string) error {
	if !validID(sessionID, "ses") {
		return ErrSessionNotFound
	}
	now := s.now()
	var hash string
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		sess, err := tx.Sessions().Get(ctx, sessionID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && sess.UserID != userID) {
			return ErrSessionNotFound
		}
		if err != nil {
			return fmt.Errorf("load session: %w", err)
		}
		hash = sess.TokenHash
		if err := tx.Sessions().Delete(ctx, sessionID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("delete session: %w", err)
		}
		return emit(ctx, tx, EventSessionRevoked, userID, map[string]any{"sessionId": sessionID, "userId": userID}, now)
	})
	if hash != "" {
		s.cache.invalidate(hash)
	}
	return err
}

// SignOut ends the session the token belongs to. Unknown tokens are fine:
// signing out is idempotent.
func (s *Service) SignOut(ctx context.Context, token string) error {
	if token == "" || len(token) > 256 {
		return nil
	}
	hash := id.Hash(token)
	s.cache.invalidate(hash)
	sess, err := s.store.Sessions().GetByTokenHash(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	err = s.RevokeSession(ctx, sess.UserID, sess.ID)
	if errors.Is(err, ErrSessionNotFound) {
		return nil
	}
	return err
}

// RevokeOtherSessions ends every session of the user except keepID (which
// may be empty to end all) and returns how many it ended.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keepID string) (int, error) {
	var hashes []string
	err := s.store.InTx(ctx, func(tx storage.Store) error {
		var err error
		hashes, err = s.revokeUserSessions(ctx, tx, userID, keepID, s.now())
		return err
	})
	s.cache.invalidate(hashes...)
	return len(hashes), err
}

func (s *Service) revokeUserSessions(ctx context.Context, tx storage.Store, userID, keepID string, now time.Time) ([]string, error) {
	hashes, err := tx.Sessions().DeleteByUser(ctx, userID, keepID)
	if err != nil {
		return nil, fmt.Errorf("delete sessions: %w", err)
	}
	if len(hashes) == 0 {
		return nil, nil
	}
	return hashes, emit(ctx, tx, EventSessionRevoked, userID, map[string]any{"userId": userID, "count": len(hashes), "kept": keepID}, now)
}

// SweepExpired deletes expired sessions, verification tokens and sign-in
// challenges (the count of verifications includes the challenges).
func (s *Service) SweepExpired(ctx context.Context) (sessions, verifications int, err error) {
	now := s.now()
	if sessions, err = s.store.Sessions().DeleteExpired(ctx, now); err != nil {
		return 0, 0, fmt.Errorf("sweep sessions: %w", err)
	}
	if verifications, err = s.store.Verifications().DeleteExpired(ctx, now); err != nil {
		return sessions, 0, fmt.Errorf("sweep verifications: %w", err)
	}
	n, err := s.store.Challenges().DeleteExpired(ctx, now)
	if err != nil {
		return sessions, verifications, fmt.Errorf("sweep challenges: %w", err)
	}
	verifications += n
	// Counters of addresses that stopped failing a day ago are noise.
	if _, err = s.store.LoginAttempts().DeleteStale(ctx, now.Add(-24*time.Hour)); err != nil {
		return sessions, verifications, fmt.Errorf("sweep login attempts: %w", err)
	}
	return sessions, verifications, nil
}
