-- Retention windows (issue 25): how many collections of each workspace have
-- one. The windows themselves are sealed in the workspace's own database;
-- this count (a number, nothing a person typed) lets /trust state the total
-- and the purge job skip workspaces without any. Collection changes and every
-- purge run keep it current; the first run after a start, and one a day,
-- recount them all.
CREATE TABLE retention_windows (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    collections INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
