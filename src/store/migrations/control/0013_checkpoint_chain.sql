-- Checkpoints form their own signed chain per scope: each names its place in
-- the chain (`chain_index`, from 1) and the SHA-256 of the previous
-- checkpoint's signed message (`prev_hash`), so deleting or reordering one is
-- detected. Rows signed before this migration keep NULL in both and verify
-- with their original (v1) message; the first chained checkpoint of a scope
-- names the newest of them. New reasons: `backup` (signed before a snapshot,
-- so the manifest carries the heads) and `restore` (a workspace put back from
-- a backup, which supersedes later checkpoints of the old timeline).
CREATE TABLE audit_checkpoints_v2 (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    time INTEGER NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('schedule', 'export', 'retention', 'manual', 'shutdown', 'backup', 'restore')),
    signature BLOB NOT NULL,
    chain_index INTEGER,
    prev_hash BLOB,
    CHECK ((chain_index IS NULL) = (prev_hash IS NULL))
) STRICT;
INSERT INTO audit_checkpoints_v2 (id, scope, seq, hash, time, reason, signature)
    SELECT id, scope, seq, hash, time, reason, signature FROM audit_checkpoints;
DROP TABLE audit_checkpoints;
ALTER TABLE audit_checkpoints_v2 RENAME TO audit_checkpoints;
CREATE INDEX audit_checkpoints_by_scope ON audit_checkpoints(scope, seq);
CREATE UNIQUE INDEX audit_checkpoints_chain ON audit_checkpoints(scope, chain_index)
    WHERE chain_index IS NOT NULL;
