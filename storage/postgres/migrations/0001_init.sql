-- Kavach schema for PostgreSQL.
--
-- Column names, types and defaults are chosen so that the Clerk import SQL
-- from the migration guide runs unchanged against this schema: it inserts
-- only some columns of kavach_user and kavach_account (the others have
-- defaults), TIMESTAMPTZ values from to_timestamp(), and gen_random_uuid()
-- into the TEXT id (an assignment cast).

CREATE TABLE kavach_user (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT false,
    image          TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Emails are unique regardless of case; GetByEmail matches lower(email).
CREATE UNIQUE INDEX kavach_user_email_key ON kavach_user (lower(email));
CREATE INDEX kavach_user_created_at_idx ON kavach_user (created_at, id);

CREATE TABLE kavach_account (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    provider_id         TEXT NOT NULL,
    provider_account_id TEXT NOT NULL,
    access_token        TEXT,
    refresh_token       TEXT,
    password            TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider_id, provider_account_id)
);

CREATE INDEX kavach_account_user_id_idx ON kavach_account (user_id);

CREATE TABLE kavach_session (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ip_address TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    persistent BOOLEAN NOT NULL DEFAULT true
);

CREATE INDEX kavach_session_user_id_idx ON kavach_session (user_id);
CREATE INDEX kavach_session_expires_at_idx ON kavach_session (expires_at);

CREATE TABLE kavach_verification (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX kavach_verification_user_id_idx ON kavach_verification (user_id, purpose);
CREATE INDEX kavach_verification_expires_at_idx ON kavach_verification (expires_at);

-- Failed sign-ins per key (the SHA-256 of a normalized email), for known
-- and unknown accounts alike, so it has no foreign key to kavach_user.
CREATE TABLE kavach_login_attempt (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- DeleteStale scans by age; a row's lock never ends before its last update.
CREATE INDEX kavach_login_attempt_updated_at_idx ON kavach_login_attempt (updated_at);

-- The outbox. The payload is TEXT holding JSON, kept byte for byte (JSONB
-- would reorder keys and break signatures computed over the original).
CREATE TABLE kavach_event (
    id           BIGSERIAL PRIMARY KEY,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ,
    attempts     INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX kavach_event_pending_idx ON kavach_event (id) WHERE delivered_at IS NULL;
