-- Programs and service accounts. Every secret is kept only as its SHA-256;
-- names a person typed are sealed (*_ct).

-- 'person' signs in with a password; 'service' never does and acts only
-- through API tokens. A service account's email is a reserved
-- svc-<id>@service.invalid address, so the users table stays one shape.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person'
    CHECK (kind IN ('person', 'service'));

-- One row per sign-in through /auth/token. A refresh token belongs to one
-- family; reusing a rotated one revokes the whole family, and logout, a
-- password change and disabling the account revoke families too. Access JWTs
-- name their family (`sid`) and stop working the moment it is revoked.
CREATE TABLE token_families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_reason TEXT
) STRICT;
CREATE INDEX token_families_by_user ON token_families(user_id);

CREATE TABLE refresh_tokens (
    hash BLOB PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family_id);

-- `aura_` API tokens: bound to one workspace, usable up to `scope`.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    name_ct BLOB NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('owner', 'admin', 'manager', 'member', 'viewer')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX api_tokens_by_workspace ON api_tokens(workspace_id);
