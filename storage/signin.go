package storage

import (
	"context"
	"time"
)

// Challenge purposes.
const (
	PurposeTwoFactor     = "two-factor"     // a first factor passed; waiting for the second
	PurposeTrustedDevice = "trusted-device" // a browser that skips the second factor
	PurposeMagicLink     = "magic-link"
	PurposeEmailOTP      = "email-otp"
	PurposePhoneOTP      = "phone-otp"
	PurposePasskey       = "passkey" // a WebAuthn ceremony's session data
	PurposeOAuthState    = "oauth-state"
)

// Challenge is the short-lived state of a sign-in flow (table
// kavach_challenge). Lookup is what the client presents, hashed; it is
// unique per purpose. SecretHash is the keyed hash of a code when the code
// is not itself the lookup. Data is purpose-specific JSON.
type Challenge struct {
	ID         string
	Purpose    string
	Lookup     string
	UserID     string // "" when the flow has no user yet (sign-up, OAuth)
	SecretHash string
	Data       []byte
	Attempts   int
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

// Challenges stores kavach_challenge rows.
type Challenges interface {
	// Put stores c, replacing any row with the same purpose and lookup
	// (a new code for an address replaces the old one, attempts and all).
	Put(ctx context.Context, c *Challenge) error
	// Get returns the unexpired row, or ErrNotFound.
	Get(ctx context.Context, purpose, lookup string, now time.Time) (*Challenge, error)
	// Attempt counts one attempt against the unexpired row if it has had
	// fewer than max, in one statement, and returns the row as updated.
	// ErrNotFound when there is no such row, it expired, or its attempts
	// are used up: under any number of concurrent callers at most max
	// succeed.
	Attempt(ctx context.Context, purpose, lookup string, max int, now time.Time) (*Challenge, error)
	// Consume atomically deletes and returns the row; exactly one of any
	// number of concurrent callers gets it. Expired rows are deleted and
	// reported as ErrNotFound.
	Consume(ctx context.Context, purpose, lookup string, now time.Time) (*Challenge, error)
	// DeleteByUser removes the user's rows of one purpose.
	DeleteByUser(ctx context.Context, userID, purpose string) error
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// TwoFactor is a user's TOTP authenticator (table kavach_two_factor).
type TwoFactor struct {
	UserID    string
	Secret    []byte // sealed
	Enabled   bool
	LastStep  int64 // last accepted TOTP time step
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TwoFactors stores kavach_two_factor and kavach_backup_code rows.
type TwoFactors interface {
	Get(ctx context.Context, userID string) (*TwoFactor, error)
	// Put stores a new (not yet enabled) authenticator for the user,
	// replacing one that is not enabled. ErrAlreadyExists when an enabled
	// one is there.
	Put(ctx context.Context, t *TwoFactor) error
	// Enable turns the authenticator on and records step as used;
	// ErrNotFound when there is none or it is enabled already.
	Enable(ctx context.Context, userID string, step int64, now time.Time) error
	// UseStep records step as the last accepted one if it is later than
	// the stored one, in one statement; false means the code (or a later
	// one) was used already.
	UseStep(ctx context.Context, userID string, step int64, now time.Time) (bool, error)
	// Delete removes the authenticator and the backup codes.
	Delete(ctx context.Context, userID string) error
	// ReplaceBackupCodes drops the user's backup codes and stores these.
	ReplaceBackupCodes(ctx context.Context, userID string, hashes []string, now time.Time) error
	// UseBackupCode marks an unused code used; false when there is no such
	// unused code. Exactly one of concurrent callers with the same code
	// gets true.
	UseBackupCode(ctx context.Context, userID, hash string, now time.Time) (bool, error)
	// CountBackupCodes returns how many unused codes the user has.
	CountBackupCodes(ctx context.Context, userID string) (int, error)
}

// Passkey is a WebAuthn credential (table kavach_passkey).
type Passkey struct {
	ID           string
	UserID       string
	CredentialID string // base64url, unique
	Name         string
	Credential   []byte // JSON of the go-webauthn credential
	SignCount    uint32
	CloneWarning bool
	CreatedAt    time.Time
	LastUsedAt   *time.Time
}

// Passkeys stores kavach_passkey rows.
type Passkeys interface {
	Create(ctx context.Context, p *Passkey) error // ErrAlreadyExists on a duplicate credential id
	Get(ctx context.Context, id string) (*Passkey, error)
	GetByCredentialID(ctx context.Context, credentialID string) (*Passkey, error)
	ListByUser(ctx context.Context, userID string) ([]Passkey, error) // oldest first
	// Rename sets the name of the user's passkey; ErrNotFound when the
	// user has no passkey with this id.
	Rename(ctx context.Context, userID, id, name string) error
	// RecordUse stores the sign count, clone warning and updated
	// credential after a sign-in.
	RecordUse(ctx context.Context, id string, signCount uint32, cloneWarning bool, credential []byte, now time.Time) error
	// Delete removes the user's passkey; ErrNotFound when there is none.
	Delete(ctx context.Context, userID, id string) error
}

// Ban keeps a user from signing in (table kavach_user_ban).
type Ban struct {
	UserID    string
	Reason    string
	Until     *time.Time // nil: until lifted
	BannedBy  string     // the admin's user id, or "cli"
	CreatedAt time.Time
}

// Bans stores kavach_user_ban rows.
type Bans interface {
	// Put bans the user, replacing an earlier ban.
	Put(ctx context.Context, b *Ban) error
	// Get returns the user's ban, ended or not; ErrNotFound when none.
	Get(ctx context.Context, userID string) (*Ban, error)
	// Delete lifts the ban; ErrNotFound when there is none.
	Delete(ctx context.Context, userID string) error
}
