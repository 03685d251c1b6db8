-- Approval requests (human in the loop): a call that a grant sends to a
-- human, and the human's answer. The arguments are kept (capped by package
-- agents) so the approver can read them; the digest identifies them.

CREATE TABLE kavach_approval (
    id                  TEXT NOT NULL PRIMARY KEY,
    agent_id            TEXT NOT NULL REFERENCES kavach_agent (id) ON DELETE CASCADE,
    owner_user_id       TEXT REFERENCES kavach_user (id) ON DELETE CASCADE,
    acting_for          TEXT NOT NULL DEFAULT '',
    action              TEXT NOT NULL,
    resource            TEXT NOT NULL,
    args_digest         TEXT NOT NULL DEFAULT '',
    arguments           TEXT,
    arguments_truncated BOOLEAN NOT NULL DEFAULT false,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    mode                TEXT NOT NULL DEFAULT '' CHECK (mode IN ('', 'once', 'window')),
    requested_at        TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ NOT NULL,
    decided_at          TIMESTAMPTZ,
    decided_by          TEXT NOT NULL DEFAULT '',
    reason              TEXT NOT NULL DEFAULT '',
    approved_until      TIMESTAMPTZ,
    consumed_at         TIMESTAMPTZ
);

-- One pending request per call at a time, so retries reuse it.
CREATE UNIQUE INDEX kavach_approval_pending_idx ON kavach_approval (agent_id, action, resource, args_digest)
    WHERE status = 'pending';
CREATE INDEX kavach_approval_call_idx ON kavach_approval (agent_id, action, resource, args_digest);
CREATE INDEX kavach_approval_owner_idx ON kavach_approval (owner_user_id, requested_at, id);
CREATE INDEX kavach_approval_requested_idx ON kavach_approval (requested_at, id);
CREATE INDEX kavach_approval_agent_idx ON kavach_approval (agent_id, requested_at, id);
