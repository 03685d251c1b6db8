-- Agents: non-human principals. Every OAuth client is one; an agent
-- outlives a deleted client (its client_id becomes NULL).

CREATE TABLE kavach_agent (
    id             TEXT NOT NULL PRIMARY KEY,
    type           TEXT NOT NULL CHECK (type IN ('autonomous', 'delegated', 'service')),
    name           TEXT NOT NULL DEFAULT '',
    owner_user_id  TEXT REFERENCES kavach_user (id) ON DELETE CASCADE,
    client_id      TEXT UNIQUE REFERENCES kavach_oauth_client (id) ON DELETE SET NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked', 'expired')),
    metadata       TEXT NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_active_at INTEGER,
    expires_at     INTEGER
) STRICT;

CREATE INDEX kavach_agent_owner_idx ON kavach_agent (owner_user_id);
CREATE INDEX kavach_agent_created_at_idx ON kavach_agent (created_at, id);
