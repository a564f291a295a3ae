-- Invitations by email: single use, expiring. The token is kept only as its
-- SHA-256; the address is sealed and found through its blind index.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    email_bidx BLOB NOT NULL,
    email_ct BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'member', 'viewer')),
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX invitations_by_workspace ON invitations(workspace_id);
