-- Second factors. The TOTP secret is sealed under the platform key; recovery
-- codes are kept only as SHA-256 (they are 60-bit random strings). A TOTP
-- code is accepted once: `last_step` is the newest 30-second step used.

CREATE TABLE totp (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_ct BLOB NOT NULL,
    confirmed_at INTEGER,
    last_step INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, hash)
) STRICT;

-- A workspace may require its members (people, not service accounts) to have
-- a second factor before they reach its data.
ALTER TABLE workspaces ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0
    CHECK (require_mfa IN (0, 1));
