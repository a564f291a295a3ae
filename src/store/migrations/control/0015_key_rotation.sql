-- Workspace data key rotations: one row per workspace, the newest rotation.
-- `new_key_id` is set once the new key is wrapped into workspace_keys; the
-- re-sealing job then moves every ciphertext to it and, when none names an
-- older key, deletes the older keys and sets `finished_at`. A restart resumes
-- any row without `finished_at`.
CREATE TABLE key_rotations (
    workspace_id TEXT PRIMARY KEY,
    requested_at INTEGER NOT NULL,
    requested_by TEXT,
    new_key_id INTEGER,
    resealed INTEGER NOT NULL DEFAULT 0,
    remaining INTEGER,
    finished_at INTEGER
) STRICT;

-- Same column as the workspace chains (one reader for both); the platform
-- chain's details are never re-sealed, so it stays 0 here.
ALTER TABLE audit_log ADD COLUMN resealed INTEGER NOT NULL DEFAULT 0;
