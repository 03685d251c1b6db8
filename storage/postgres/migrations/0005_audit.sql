-- The audit log: one row per authorization decision and security event,
-- hash-chained (internal/auditchain defines the hash). Rows are never
-- updated; retention deletes a prefix only. seq is assigned by the store
-- under the lock of the kavach_audit_head row, so it has no gaps across
-- nodes. chain is a JSON array of text; extra is JSON kept byte for byte
-- ('' for none), as TEXT because JSONB would reorder it and break the hash.

CREATE TABLE kavach_audit (
    seq            BIGINT PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    at             TIMESTAMPTZ NOT NULL,
    kind           TEXT NOT NULL,
    event          TEXT NOT NULL,
    principal_type TEXT NOT NULL DEFAULT '',
    principal_id   TEXT NOT NULL DEFAULT '',
    agent_id       TEXT NOT NULL DEFAULT '',
    acting_for     TEXT NOT NULL DEFAULT '',
    chain          TEXT NOT NULL DEFAULT '[]',
    action         TEXT NOT NULL DEFAULT '',
    resource       TEXT NOT NULL DEFAULT '',
    args_digest    TEXT NOT NULL DEFAULT '',
    result         TEXT NOT NULL DEFAULT '',
    reason         TEXT NOT NULL DEFAULT '',
    latency_us     BIGINT NOT NULL DEFAULT 0,
    ip             TEXT NOT NULL DEFAULT '',
    user_agent     TEXT NOT NULL DEFAULT '',
    extra          TEXT NOT NULL DEFAULT '',
    prev_hash      BYTEA NOT NULL,
    hash           BYTEA NOT NULL
);

-- Queries filter on one of these and page by seq, newest first.
CREATE INDEX kavach_audit_principal_idx ON kavach_audit (principal_id, seq);
CREATE INDEX kavach_audit_agent_idx ON kavach_audit (agent_id, seq);
CREATE INDEX kavach_audit_event_idx ON kavach_audit (event, seq);
CREATE INDEX kavach_audit_at_idx ON kavach_audit (at);

-- The last record appended (seq 0 and the genesis hash, 32 zero bytes,
-- before the first). Appends lock this row, which serializes them across
-- nodes.
CREATE TABLE kavach_audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);

INSERT INTO kavach_audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- The last record retention deleted: the stored chain verifies from here.
CREATE TABLE kavach_audit_anchor (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);

INSERT INTO kavach_audit_anchor (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
