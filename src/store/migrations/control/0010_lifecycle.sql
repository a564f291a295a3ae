-- Deletion with a grace period, and moves between appliances.
--
-- A workspace with a row here is read-only: 'deleting' until `due_at`, when
-- its data key is destroyed (crypto-shredding) and its files removed, unless
-- an owner cancels first; 'moving' from `aura workspace move-out` until the
-- operator confirms (then it is shredded) or cancels. `workspaces.state` is
-- 'deleting' during a deletion; a move keeps it, so a suspended workspace
-- stays suspended.
CREATE TABLE workspace_lifecycle (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('deleting', 'moving')),
    -- The account that asked; NULL for the operator at the shell.
    requested_by TEXT,
    requested_at INTEGER NOT NULL,
    due_at INTEGER
) STRICT;
CREATE INDEX workspace_lifecycle_by_due ON workspace_lifecycle(due_at);

-- Accounts scheduled for deletion. At `due_at` the memberships end and the
-- account row (sealed email and name, credentials) is deleted.
CREATE TABLE user_deletions (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    requested_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL
) STRICT;
CREATE INDEX user_deletions_by_due ON user_deletions(due_at);

-- Workspaces whose keys were destroyed: ids and times only. The key escrow
-- lists them too, so a restore of an older backup skips them knowingly.
CREATE TABLE shredded_workspaces (
    id TEXT PRIMARY KEY,
    shredded_at INTEGER NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('deleted', 'moved'))
) STRICT;
