-- Sign-in methods beyond the password: passkeys, two-factor, one-time codes
-- and links, social accounts.

-- Short-lived state of a sign-in flow, one row per flow: a pending second
-- factor, a magic link, an emailed or texted code, a passkey ceremony, an
-- OAuth state, a trusted device. lookup is what the client presents,
-- hashed (a token's hash, or the hash of the address a code went to);
-- secret_hash is the keyed hash of a code when the code is not the lookup.
-- attempts counts wrong guesses in one statement, so parallel guesses can
-- never pass the limit.
CREATE TABLE kavach_challenge (
    id          TEXT NOT NULL PRIMARY KEY,
    purpose     TEXT NOT NULL,
    lookup      TEXT NOT NULL,
    user_id     TEXT REFERENCES kavach_user (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL DEFAULT '{}',
    attempts    INTEGER NOT NULL DEFAULT 0,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (purpose, lookup)
);

CREATE INDEX kavach_challenge_user_idx ON kavach_challenge (user_id, purpose);
CREATE INDEX kavach_challenge_expires_at_idx ON kavach_challenge (expires_at);

-- A user's TOTP authenticator. secret is sealed (AES-GCM under a key derived
-- from the server secret). enabled turns on once a first code confirms the
-- enrolment. last_step is the last accepted time step: a code is accepted
-- once.
CREATE TABLE kavach_two_factor (
    user_id    TEXT NOT NULL PRIMARY KEY REFERENCES kavach_user (id) ON DELETE CASCADE,
    secret     BYTEA NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT FALSE,
    last_step  BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Backup codes, stored as keyed hashes; used_at marks a spent one.
CREATE TABLE kavach_backup_code (
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- WebAuthn credentials. credential is the JSON of the go-webauthn
-- credential (public key, flags, authenticator data); credential_id is its
-- id in base64url, unique across users.
CREATE TABLE kavach_passkey (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    credential    TEXT NOT NULL,
    sign_count    BIGINT NOT NULL DEFAULT 0,
    clone_warning BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ
);

CREATE INDEX kavach_passkey_user_idx ON kavach_passkey (user_id, created_at);

-- Social accounts: what the provider said, and its tokens (sealed).
ALTER TABLE kavach_account ADD COLUMN id_token TEXT;
ALTER TABLE kavach_account ADD COLUMN access_token_expires_at TIMESTAMPTZ;
ALTER TABLE kavach_account ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE kavach_account ADD COLUMN email TEXT NOT NULL DEFAULT '';

-- Bans: a banned user cannot sign in by any method until the ban ends
-- (until NULL: until lifted).
CREATE TABLE kavach_user_ban (
    user_id    TEXT NOT NULL PRIMARY KEY REFERENCES kavach_user (id) ON DELETE CASCADE,
    reason     TEXT NOT NULL DEFAULT '',
    until      TIMESTAMPTZ,
    banned_by  TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL
);

-- How a session was signed in (email-password, passkey, phone-otp, …, with
-- "+totp" or "+backup-code" after a second factor): re-authentication
-- within a fresh session trusts some methods more than others.
ALTER TABLE kavach_session ADD COLUMN method TEXT NOT NULL DEFAULT '';
