package users

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/internal/outbox"
	"github.com/kavachos/kavach/storage"
)

// Security events of people go to the audit log as well as the outbox: in
// the same transaction as the change, so a sign-in, a password change or a
// deleted account is never without its record. Failed sign-ins have no
// transaction of their own and are appended on their own (see
// auditSignInFailure).

// Audit events of the user layer.
const (
	AuditEventSignIn        = "sign_in"        // a session was issued (any method; Extra.method says which)
	AuditEventSignInFailure = "sign_in.failed" // wrong credentials, or a locked account
)

// auditedEvents maps outbox events to the audit event recorded with them.
var auditedEvents = map[string]string{
	EventUserCreated:     EventUserCreated,
	EventUserDeleted:     EventUserDeleted,
	EventSessionCreated:  AuditEventSignIn,
	EventSessionRevoked:  EventSessionRevoked,
	EventPasswordChanged: EventPasswordChanged,
	EventPasswordReset:   EventPasswordReset,
	EventEmailVerified:   EventEmailVerified,
	EventAccountLocked:   EventAccountLocked,

	EventTwoFactorEnabled:  EventTwoFactorEnabled,
	EventTwoFactorDisabled: EventTwoFactorDisabled,
	EventBackupCodesReset:  EventBackupCodesReset,
	EventUserBanned:        EventUserBanned,
	EventUserUnbanned:      EventUserUnbanned,

	EventPasskeyRegistered:   EventPasskeyRegistered,
	EventPasskeyDeleted:      EventPasskeyDeleted,
	EventPasskeyCloneWarning: EventPasskeyCloneWarning,

	EventAccountLinked:   EventAccountLinked,
	EventAccountUnlinked: EventAccountUnlinked,
}

// emit appends an outbox event inside the caller's transaction, and, for
// security events, the audit record of the same change.
func emit(ctx context.Context, tx storage.Store, typ, userID string, payload map[string]any, now time.Time) error {
	if err := outbox.Emit(ctx, tx, typ, userID, payload, now); err != nil {
		return err
	}
	event, ok := auditedEvents[typ]
	if !ok {
		return nil
	}
	r := storage.AuditRecord{
		ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: event,
		PrincipalType: "user", PrincipalID: userID, Action: event, Resource: "user:" + userID, Result: storage.AuditOK,
	}
	if ip, ok := payload["ip"].(string); ok {
		r.IP = ip
		delete(payload, "ip")
	}
	r.Extra, _ = json.Marshal(payload) // maps of strings, numbers and times always encode
	if err := tx.Audit().Append(ctx, []storage.AuditRecord{r}); err != nil {
		return fmt.Errorf("audit %s: %w", event, err)
	}
	return nil
}

// auditRefusal records a sign-in that finishSignIn refused after the
// credential checked out (a banned user); callers run it once their
// transaction has ended, since the refusal rolls it back.
func (s *Service) auditRefusal(ctx context.Context, err error, method string, client ClientInfo) {
	var b *BannedError
	if errors.As(err, &b) && b.userID != "" {
		s.auditSignInFailure(ctx, b.email, b.userID, "USER_BANNED", client, method, s.now())
	}
}

// auditSignInFailure records a refused sign-in. The account is named by
// loginRef (never the address typed), and by its user id when it exists. The record is written for unknown addresses
// too, so the two cases cost the same. A failure to write it is logged:
// the answer to the client is the refusal either way.
func (s *Service) auditSignInFailure(ctx context.Context, email, userID, reason string, client ClientInfo, method string, now time.Time) {
	r := storage.AuditRecord{
		ID: id.New("aud"), At: now, Kind: storage.AuditKindSecurity, Event: AuditEventSignInFailure,
		PrincipalType: "user", PrincipalID: userID, Action: AuditEventSignIn, Resource: "login:" + s.loginRef(email),
		Result: storage.AuditFail, Reason: reason, IP: client.IP, UserAgent: cleanText(client.UserAgent, maxUserAgentLength),
	}
	if method != "" {
		r.Extra, _ = json.Marshal(map[string]string{"method": method})
	}
	if err := s.store.Audit().Append(ctx, []storage.AuditRecord{r}); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Error("users: audit a failed sign-in", "err", err)
	}
}

// loginRef names a normalized address in the audit log: a keyed HMAC, so
// that records of one address can be grouped (and looked up by whoever
// holds the server secret) but a list of addresses does not reverse them.
func (s *Service) loginRef(email string) string {
	if len(s.cfg.AuditKey) == 0 {
		return attemptKey(email)
	}
	m := hmac.New(sha256.New, s.cfg.AuditKey)
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
