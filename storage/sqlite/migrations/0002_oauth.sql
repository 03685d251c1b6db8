-- OAuth authorization server: clients, persisted token requests, signing
-- keys and remembered consents. JSON (client metadata, token data) is TEXT
-- kept byte for byte; sealed private keys are BLOB.

CREATE TABLE kavach_oauth_client (
    id                      TEXT NOT NULL PRIMARY KEY,
    secret_hash             TEXT NOT NULL DEFAULT '',
    registration_token_hash TEXT NOT NULL DEFAULT '',
    source                  TEXT NOT NULL,
    metadata                TEXT NOT NULL,
    created_at              INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at              INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
) STRICT;

CREATE INDEX kavach_oauth_client_created_at_idx ON kavach_oauth_client (created_at, id);

-- One row per token signature. subject is not a foreign key: it is "" for
-- client_credentials grants.
CREATE TABLE kavach_oauth_token (
    kind         TEXT NOT NULL,
    signature    TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    client_id    TEXT NOT NULL REFERENCES kavach_oauth_client (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL DEFAULT '',
    active       INTEGER NOT NULL CHECK (active IN (0, 1)),
    requested_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (kind, signature)
) STRICT;

CREATE INDEX kavach_oauth_token_request_idx ON kavach_oauth_token (kind, request_id);
CREATE INDEX kavach_oauth_token_expires_at_idx ON kavach_oauth_token (expires_at);
-- Serves the ON DELETE CASCADE from kavach_oauth_client.
CREATE INDEX kavach_oauth_token_client_id_idx ON kavach_oauth_token (client_id);

CREATE TABLE kavach_signing_key (
    kid        TEXT NOT NULL PRIMARY KEY,
    algorithm  TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    retired_at INTEGER,
    expires_at INTEGER
) STRICT;

-- scopes is space-separated, sorted and unique.
CREATE TABLE kavach_oauth_consent (
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES kavach_oauth_client (id) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    updated_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    PRIMARY KEY (user_id, client_id, resource)
) STRICT;

-- Serves the ON DELETE CASCADE from kavach_oauth_client; the primary key
-- serves lookups by user.
CREATE INDEX kavach_oauth_consent_client_id_idx ON kavach_oauth_consent (client_id);
