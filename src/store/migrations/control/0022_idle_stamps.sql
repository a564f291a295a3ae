-- Which workspaces a background pass (the audit checkpoint signer, the
-- webhook worker) last found with nothing to do, by the size and time of
-- their files then (issue 23). Kept across restarts, so a start opens only
-- the workspaces whose files changed since, not all ten thousand. Numbers
-- only, nothing a person typed. A stamp can only make a pass skip a
-- workspace whose files are as it last left them.
CREATE TABLE idle_stamps (
    job TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    db_len INTEGER NOT NULL,
    db_mtime_ns INTEGER NOT NULL,
    wal_len INTEGER NOT NULL,
    wal_mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (job, workspace_id)
) STRICT, WITHOUT ROWID;
