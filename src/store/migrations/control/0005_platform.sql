-- Platform staff reach a workspace only through a recorded impersonation:
-- bound to the browser session that started it, with a stated reason (sealed,
-- it is person-typed), a role and an expiry. The start and the end are in the
-- platform chain and in the workspace's own chain.
CREATE TABLE impersonations (
    id TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    session_hash BLOB NOT NULL,
    reason_ct BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'member', 'viewer')),
    started_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER
) STRICT;
CREATE INDEX impersonations_by_session ON impersonations(session_hash);
