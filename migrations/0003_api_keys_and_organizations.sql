-- Organizations (minimal: a name and members with a role) and what API keys need beyond the
-- admin keys of 0001: who owns them, what they carry, and who made them.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE organization_members (
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,            -- owner | member
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members (user_id);

ALTER TABLE api_keys ADD COLUMN env TEXT NOT NULL DEFAULT 'live';
ALTER TABLE api_keys ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';  -- a JSON object
-- A personal key goes with its user, an organization key with its organization.
ALTER TABLE api_keys ADD COLUMN owner_user_id TEXT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE api_keys ADD COLUMN owner_org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE api_keys ADD COLUMN created_by TEXT;  -- the user who made it; NULL for the admin API/CLI
ALTER TABLE api_keys ADD COLUMN revoke_when_creator_leaves BIGINT NOT NULL DEFAULT 0;
CREATE INDEX api_keys_owner_user ON api_keys (owner_user_id);
CREATE INDEX api_keys_owner_org ON api_keys (owner_org_id);
