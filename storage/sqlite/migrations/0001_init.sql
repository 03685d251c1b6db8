-- Kavach schema for SQLite. Times are INTEGER Unix milliseconds (UTC),
-- booleans INTEGER 0/1. STRICT tables reject a value of the wrong type, so a
-- time written as text fails loudly instead of sorting wrongly.

CREATE TABLE kavach_user (
    id             TEXT NOT NULL PRIMARY KEY,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    image          TEXT,
    created_at     INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at     INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
) STRICT;

-- Emails are unique regardless of case. SQLite's lower() folds ASCII only;
-- the users package normalizes emails before they get here.
CREATE UNIQUE INDEX kavach_user_email_key ON kavach_user (lower(email));
CREATE INDEX kavach_user_created_at_idx ON kavach_user (created_at, id);

CREATE TABLE kavach_account (
    id                  TEXT NOT NULL PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    provider_id         TEXT NOT NULL,
    provider_account_id TEXT NOT NULL,
    access_token        TEXT,
    refresh_token       TEXT,
    password            TEXT,
    created_at          INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at          INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (provider_id, provider_account_id)
) STRICT;

CREATE INDEX kavach_account_user_id_idx ON kavach_account (user_id);

CREATE TABLE kavach_session (
    id         TEXT NOT NULL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    ip_address TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    persistent INTEGER NOT NULL DEFAULT 1 CHECK (persistent IN (0, 1))
) STRICT;

CREATE INDEX kavach_session_user_id_idx ON kavach_session (user_id);
CREATE INDEX kavach_session_expires_at_idx ON kavach_session (expires_at);

CREATE TABLE kavach_verification (
    id         TEXT NOT NULL PRIMARY KEY,
    purpose    TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
) STRICT;

CREATE INDEX kavach_verification_user_id_idx ON kavach_verification (user_id, purpose);
CREATE INDEX kavach_verification_expires_at_idx ON kavach_verification (expires_at);

-- Failed sign-ins per key (the SHA-256 of a normalized email), for known
-- and unknown accounts alike, so it has no foreign key to kavach_user.
CREATE TABLE kavach_login_attempt (
    key          TEXT NOT NULL PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until INTEGER,
    updated_at   INTEGER NOT NULL
) STRICT;

-- DeleteStale scans by age; a row's lock never ends before its last update.
CREATE INDEX kavach_login_attempt_updated_at_idx ON kavach_login_attempt (updated_at);

-- The outbox. AUTOINCREMENT keeps ids increasing and never reused, even
-- after the newest rows are deleted.
CREATE TABLE kavach_event (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    delivered_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX kavach_event_pending_idx ON kavach_event (id) WHERE delivered_at IS NULL;
