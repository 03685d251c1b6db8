-- Agent permissions (grant specs as JSON, owned by package agents) and
-- API keys (SHA-256 only, with a display prefix).

CREATE TABLE kavach_agent_grant (
    id         TEXT NOT NULL PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES kavach_agent (id) ON DELETE CASCADE,
    spec       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX kavach_agent_grant_agent_idx ON kavach_agent_grant (agent_id, created_at);

CREATE TABLE kavach_agent_key (
    id         TEXT NOT NULL PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES kavach_agent (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX kavach_agent_key_agent_idx ON kavach_agent_key (agent_id);
