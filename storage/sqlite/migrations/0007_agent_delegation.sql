-- Delegation: a sub-agent records the agent that delegated to it and its
-- depth in the chain (1 for a child of an agent with no parent).

ALTER TABLE kavach_agent ADD COLUMN parent_id TEXT REFERENCES kavach_agent (id) ON DELETE CASCADE;
ALTER TABLE kavach_agent ADD COLUMN delegation_depth INTEGER NOT NULL DEFAULT 0;

CREATE INDEX kavach_agent_parent_idx ON kavach_agent (parent_id);
