-- SCIM 2.0 provisioning (RFC 7643/7644), one identity provider per workspace.
--
-- scim_tokens: the workspace's one live SCIM bearer token, kept as its
-- SHA-256 like every other secret. Rotating replaces the row, revoking
-- deletes it; the audit chain keeps the history. The token is accepted by the
-- SCIM routes of its own workspace only.
CREATE TABLE scim_tokens (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    id TEXT NOT NULL UNIQUE,
    hash BLOB NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;

-- scim_users: the people this workspace's provider manages. `origin` says
-- how the row came to be: 'created' (SCIM made the account), 'linked' (SCIM
-- added an existing account), 'adopted' (an existing member the provider
-- first changed). `external_id_ct` is the provider's own id, sealed under the
-- platform key. While `active` is 0 the person holds no membership; `role`
-- keeps the role they held, for when the provider brings them back.
CREATE TABLE scim_users (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    origin TEXT NOT NULL CHECK (origin IN ('created', 'linked', 'adopted')),
    external_id_ct BLOB,
    active INTEGER NOT NULL CHECK (active IN (0, 1)),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'member', 'viewer')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX scim_users_by_user ON scim_users(user_id);
