-- Anomaly findings of the trust detectors, one row per finding, for the
-- API; each is also an audit record (trust.finding). Rows go with their
-- agent, and the expiry sweep deletes those older than 90 days.

CREATE TABLE kavach_trust_finding (
    id         TEXT NOT NULL PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES kavach_agent (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    severity   DOUBLE PRECISION NOT NULL,
    detail     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX kavach_trust_finding_agent_idx ON kavach_trust_finding (agent_id, at DESC, id DESC);
CREATE INDEX kavach_trust_finding_at_idx ON kavach_trust_finding (at);
