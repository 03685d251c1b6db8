-- OAuth authorization server: clients, persisted token requests, signing
-- keys and remembered consents. JSON (client metadata, token data) is TEXT
-- kept byte for byte (JSONB would reorder keys); sealed private keys are
-- BYTEA.

CREATE TABLE kavach_oauth_client (
    id                      TEXT PRIMARY KEY,
    secret_hash             TEXT NOT NULL DEFAULT '',
    registration_token_hash TEXT NOT NULL DEFAULT '',
    source                  TEXT NOT NULL,
    metadata                TEXT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX kavach_oauth_client_created_at_idx ON kavach_oauth_client (created_at, id);

-- One row per token signature. subject is not a foreign key: it is '' for
-- client_credentials grants.
CREATE TABLE kavach_oauth_token (
    kind         TEXT NOT NULL,
    signature    TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    client_id    TEXT NOT NULL REFERENCES kavach_oauth_client (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL DEFAULT '',
    active       BOOLEAN NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (kind, signature)
);

CREATE INDEX kavach_oauth_token_request_idx ON kavach_oauth_token (kind, request_id);
CREATE INDEX kavach_oauth_token_expires_at_idx ON kavach_oauth_token (expires_at);
-- Serves the ON DELETE CASCADE from kavach_oauth_client.
CREATE INDEX kavach_oauth_token_client_id_idx ON kavach_oauth_token (client_id);

CREATE TABLE kavach_signing_key (
    kid        TEXT PRIMARY KEY,
    algorithm  TEXT NOT NULL,
    sealed     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);

-- scopes is space-separated, sorted and unique.
CREATE TABLE kavach_oauth_consent (
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES kavach_oauth_client (id) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id, resource)
);

-- Serves the ON DELETE CASCADE from kavach_oauth_client; the primary key
-- serves lookups by user.
CREATE INDEX kavach_oauth_consent_client_id_idx ON kavach_oauth_consent (client_id);
