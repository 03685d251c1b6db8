-- Organizations: a group of users (members with a role) that may own
-- agents together. Roles are plain strings (Clerk's "org:" prefix is not
-- kept). An organization outlives its creator (created_by becomes NULL);
-- memberships go with the organization or the user. An agent keeps
-- existing when its organization is deleted (the users package refuses
-- that while any agent of it is not revoked), with organization_id NULL.

CREATE TABLE kavach_organization (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    metadata   TEXT NOT NULL DEFAULT '{}',
    created_by TEXT REFERENCES kavach_user (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE kavach_org_member (
    organization_id TEXT NOT NULL REFERENCES kavach_organization (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES kavach_user (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (organization_id, user_id)
) STRICT;

CREATE INDEX kavach_org_member_user_idx ON kavach_org_member (user_id);

ALTER TABLE kavach_agent ADD COLUMN organization_id TEXT REFERENCES kavach_organization (id) ON DELETE SET NULL;

CREATE INDEX kavach_agent_organization_idx ON kavach_agent (organization_id);
