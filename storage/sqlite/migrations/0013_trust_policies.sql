-- Trust policies set by platform teams (package trust owns the body's
-- meaning), every version of each, and one epoch counter that every change
-- bumps in its transaction, so that each node notices a change by reading
-- one row.

CREATE TABLE kavach_trust_policy (
    id         TEXT NOT NULL PRIMARY KEY,
    scope_type TEXT NOT NULL CHECK (scope_type IN ('global', 'organization', 'agent')),
    scope_id   TEXT NOT NULL,
    body       TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
) STRICT;

CREATE INDEX kavach_trust_policy_scope_idx ON kavach_trust_policy (scope_type, scope_id);

-- Revisions outlive their policy: a deleted policy keeps its history.
CREATE TABLE kavach_trust_policy_revision (
    policy_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    deleted    INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    changed_by TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (policy_id, version)
) STRICT;

CREATE TABLE kavach_trust_policy_epoch (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
) STRICT;

INSERT INTO kavach_trust_policy_epoch (id, epoch) VALUES (1, 0);
