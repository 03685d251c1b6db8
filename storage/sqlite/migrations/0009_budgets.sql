-- Budgets: limits on the calls and the reported cost of an agent, of a
-- user's agents or of an organization's agents per calendar day or month
-- (package agents), and the usage counters they are checked against.
-- scope_id is not a foreign key: scopes live in different tables, and an
-- organization may live outside this schema.

CREATE TABLE kavach_budget (
    id          TEXT NOT NULL PRIMARY KEY,
    scope_type  TEXT NOT NULL CHECK (scope_type IN ('agent', 'user', 'organization')),
    scope_id    TEXT NOT NULL,
    metric      TEXT NOT NULL CHECK (metric IN ('calls', 'cost')),
    period      TEXT NOT NULL CHECK (period IN ('day', 'month')),
    limit_value INTEGER NOT NULL CHECK (limit_value >= 0),
    action      TEXT NOT NULL CHECK (action IN ('warn', 'block', 'suspend')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (scope_type, scope_id, metric, period, action)
) STRICT;

-- One row per scope and period ('2026-11-26', '2026-11'); cost in
-- micro-units.
CREATE TABLE kavach_usage (
    scope_type TEXT NOT NULL,
    scope_id   TEXT NOT NULL,
    period_key TEXT NOT NULL,
    calls      INTEGER NOT NULL DEFAULT 0 CHECK (calls >= 0),
    cost       INTEGER NOT NULL DEFAULT 0 CHECK (cost >= 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope_type, scope_id, period_key)
) STRICT;

CREATE INDEX kavach_usage_updated_at_idx ON kavach_usage (updated_at);
