-- Users' permissions: the same grant specs as agents' (owned by package
-- agents), so that both principals go through one decision point.

CREATE TABLE kavach_user_grant (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    spec       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX kavach_user_grant_user_idx ON kavach_user_grant (user_id, created_at);
