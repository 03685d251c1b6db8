package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Drivers translate their own errors into these once, at
// the edge, so domain packages never see a driver type.
var (
	// ErrNotFound means the record does not exist (or is no longer valid for
	// a consuming read such as ConsumeVerification).
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists means a uniqueness constraint would be violated.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrInvalidValue means a value cannot be stored as given: text that is
	// not valid UTF-8 or that contains NUL. Both drivers refuse the same
	// values. Domain packages validate input first; this is the safety net
	// that keeps a client's mistake from becoming a 500. Lookups with such a
	// value return it too (not ErrNotFound).
	ErrInvalidValue = errors.New("storage: invalid value")
)

// Store is the whole persistence surface. Each method returns a small
// per-aggregate repository bound to the same connection or transaction.
type Store interface {
	Users() Users
	Accounts() Accounts
	Sessions() Sessions
	Verifications() Verifications
	LoginAttempts() LoginAttempts
	Events() Events
	OAuthClients() OAuthClients
	OAuthTokens() OAuthTokens
	OAuthConsents() OAuthConsents
	SigningKeys() SigningKeys
	Agents() Agents
	AgentGrants() AgentGrants
	UserGrants() UserGrants
	TrustStates() TrustStates
	TrustPolicies() TrustPolicies
	TrustFindings() TrustFindings
	AgentKeys() AgentKeys
	Approvals() Approvals
	Audit() AuditLog
	Organizations() Organizations
	Budgets() Budgets
	Usage() UsageCounters
	Challenges() Challenges
	TwoFactors() TwoFactors
	Passkeys() Passkeys
	Bans() Bans

	// InTx runs fn in one transaction. The Store passed to fn is bound to the
	// transaction; fn's error (or a panic) rolls it back. Nested InTx calls on
	// a transactional Store run inside the outer transaction.
	InTx(ctx context.Context, fn func(tx Store) error) error

	// Ping reports whether the database is reachable (used by /readyz).
	Ping(ctx context.Context) error
	// Migrate applies every embedded migration that has not been applied yet
	// and returns the resulting schema version.
	Migrate(ctx context.Context) (int, error)
	// SchemaVersion returns the highest applied migration (0 when none).
	SchemaVersion(ctx context.Context) (int, error)
	// Dialect names the driver: "sqlite" or "postgres".
	Dialect() string
	Close() error
}

// User is a human principal (table kavach_user).
type User struct {
	ID            string
	Email         string // normalized (trimmed, lower-cased) by the users package
	Name          string
	EmailVerified bool
	Image         *string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Users stores kavach_user rows.
type Users interface {
	Create(ctx context.Context, u *User) error // ErrAlreadyExists on duplicate id or email (case-insensitive)
	Get(ctx context.Context, id string) (*User, error)
	GetByEmail(ctx context.Context, email string) (*User, error) // case-insensitive match
	// Update writes Email, Name, EmailVerified, Image and UpdatedAt.
	Update(ctx context.Context, u *User) error
	Delete(ctx context.Context, id string) error // cascades to accounts, sessions, verifications
	// List returns users ordered by CreatedAt then ID.
	List(ctx context.Context, limit, offset int) ([]User, error)
	// Lock locks the user's row until the transaction ends (a no-op
	// outside one); ErrNotFound if there is no such user. Sign-ins take it
	// before they issue a session, and changes to how a user signs in
	// (a takeover, a reset, a ban) before they change anything, so the
	// two never interleave.
	Lock(ctx context.Context, id string) error
}

// ProviderCredential is the provider id of the account row that holds a
// user's password hash.
const ProviderCredential = "credential"

// Account is a linked identity or credential (table kavach_account). The
// password hash for email/password sign-in lives in the row whose
// ProviderID is ProviderCredential and ProviderAccountID is the user id.
type Account struct {
	ID                string
	UserID            string
	ProviderID        string
	ProviderAccountID string
	AccessToken       *string
	RefreshToken      *string
	Password          *string
	// Social accounts: the provider's ID token and when its access token
	// expires, the scopes granted and the email the provider reported.
	// AccessToken, RefreshToken and IDToken of social accounts are sealed.
	IDToken              *string
	AccessTokenExpiresAt *time.Time
	Scope                string
	Email                string
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// Accounts stores kavach_account rows.
type Accounts interface {
	Create(ctx context.Context, a *Account) error // ErrAlreadyExists on duplicate (provider_id, provider_account_id)
	GetByProvider(ctx context.Context, providerID, providerAccountID string) (*Account, error)
	// GetCredential returns the user's ProviderCredential account (the
	// password row), or ErrNotFound.
	GetCredential(ctx context.Context, userID string) (*Account, error)
	ListByUser(ctx context.Context, userID string) ([]Account, error)
	// UpdatePassword replaces the password hash of the user's credential
	// account; ErrNotFound when the user has none.
	UpdatePassword(ctx context.Context, userID, hash string, now time.Time) error
	// ReplacePassword updates the hash only if the stored value still equals
	// old (compare-and-swap, for rehash on sign-in racing a password change).
	// It reports whether the row changed.
	ReplacePassword(ctx context.Context, userID, old, new string, now time.Time) (bool, error)
	// UpdateTokens stores a's tokens, token expiry, scope, email and
	// UpdatedAt (a social sign-in); ErrNotFound when there is no row a.ID.
	UpdateTokens(ctx context.Context, a *Account) error
	Delete(ctx context.Context, id string) error
}

// Session is a human sign-in session (table kavach_session). The bearer
// token itself is never stored, only its SHA-256 (TokenHash, hex).
type Session struct {
	ID         string
	TokenHash  string
	UserID     string
	ExpiresAt  time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	IPAddress  string
	UserAgent  string
	Persistent bool   // false: browser-session cookie (rememberMe=false)
	Method     string // how it was signed in: "email-password", "phone-otp+totp", …
}

// Sessions stores kavach_session rows.
type Sessions interface {
	Create(ctx context.Context, s *Session) error
	GetByTokenHash(ctx context.Context, tokenHash string) (*Session, error)
	Get(ctx context.Context, id string) (*Session, error)
	ListByUser(ctx context.Context, userID string) ([]Session, error) // newest first
	// Touch slides the expiry: sets ExpiresAt and UpdatedAt.
	Touch(ctx context.Context, id string, expiresAt, now time.Time) error
	Delete(ctx context.Context, id string) error
	// DeleteByUser deletes the user's sessions except exceptID (may be "")
	// and returns the token hashes it deleted (for cache invalidation).
	DeleteByUser(ctx context.Context, userID, exceptID string) ([]string, error)
	// DeleteExpired removes sessions whose ExpiresAt <= now; returns count.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// Verification purposes.
const (
	PurposeEmailVerification = "email-verification"
	PurposePasswordReset     = "password-reset"
)

// Verification is a single-use emailed token (table kavach_verification).
type Verification struct {
	ID        string
	Purpose   string
	TokenHash string
	UserID    string
	Email     string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Verifications stores kavach_verification rows.
type Verifications interface {
	Create(ctx context.Context, v *Verification) error
	// Consume atomically deletes and returns the row with this purpose and
	// token hash if it has not expired at now. Exactly one of any number of
	// concurrent callers succeeds; the rest (and expired or unknown tokens)
	// get ErrNotFound. An expired row is deleted as well.
	Consume(ctx context.Context, purpose, tokenHash string, now time.Time) (*Verification, error)
	// DeleteByUser removes the user's rows of one purpose (e.g. older reset
	// links once a new one is issued or a reset succeeds).
	DeleteByUser(ctx context.Context, userID, purpose string) error
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// LoginAttempts counts failed sign-ins per key (the SHA-256 of a
// normalized email) in table kavach_login_attempt. Known and unknown
// accounts are counted alike, so a lock reveals nothing about whether an
// account exists, and the count is exact across nodes.
type LoginAttempts interface {
	// Claim atomically records one attempt for key before the password is
	// checked. If key is locked at now (LockedUntil > now), nothing changes:
	// allowed is false and lockedUntil is the current lock. Otherwise the
	// attempt is counted: a lock that has expired restarts the count at 1
	// and is cleared, else the count is incremented; when the count reaches
	// threshold, lockedUntil becomes now+lockFor. Then allowed is true and
	// count and lockedUntil are the new values. Under any number of
	// concurrent callers at most threshold are allowed until the lock ends
	// or Reset is called (one statement, not read-modify-write). A refused
	// claim returns the count stored when the lock was set.
	Claim(ctx context.Context, key string, now time.Time, threshold int, lockFor time.Duration) (allowed bool, count int, lockedUntil *time.Time, err error)
	// Get returns the state of key; a key never seen is (0, nil, nil).
	Get(ctx context.Context, key string) (count int, lockedUntil *time.Time, err error)
	// Reset forgets key (after a successful sign-in or password reset).
	Reset(ctx context.Context, key string) error
	// DeleteStale removes rows not updated since before whose lock (if any)
	// has ended by then; returns count.
	DeleteStale(ctx context.Context, before time.Time) (int, error)
}

// Event is an outbox row (table kavach_event): written in the same
// transaction as the change it describes, delivered afterwards.
type Event struct {
	ID          int64 // assigned by the store, increasing
	Type        string
	Subject     string // the id of the principal or object the event is about
	Payload     []byte // JSON
	CreatedAt   time.Time
	DeliveredAt *time.Time
	Attempts    int
}

// Events is the transactional outbox.
type Events interface {
	// Append stores e and sets e.ID.
	Append(ctx context.Context, e *Event) error
	// Pending returns undelivered events in ID order, at most limit.
	Pending(ctx context.Context, limit int) ([]Event, error)
	MarkDelivered(ctx context.Context, id int64, now time.Time) error
	// MarkFailed increments Attempts, leaving the event pending.
	MarkFailed(ctx context.Context, id int64) error
}
