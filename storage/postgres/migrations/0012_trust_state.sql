-- Per-agent trust state: the score model's decayed sums (JSON owned by
-- package trust), the anomaly baseline, and the score for listing.

CREATE TABLE kavach_trust_state (
    agent_id   TEXT NOT NULL PRIMARY KEY REFERENCES kavach_agent (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    baseline   TEXT,
    score      DOUBLE PRECISION NOT NULL,
    level      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX kavach_trust_state_score_idx ON kavach_trust_state (score, agent_id);
