-- Signed checkpoints of every audit chain (the platform's and each
-- workspace's), kept in control.db, apart from the workspace chains they sign.
CREATE TABLE audit_checkpoints (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    time INTEGER NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('schedule', 'export', 'retention', 'manual', 'shutdown')),
    signature BLOB NOT NULL
) STRICT;
CREATE INDEX audit_checkpoints_by_scope ON audit_checkpoints(scope, seq);

-- Results of `aura audit verify` and the scheduled verification.
CREATE TABLE audit_verifications (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    time INTEGER NOT NULL,
    ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
    entries INTEGER NOT NULL,
    first_bad_seq INTEGER,
    reason TEXT
) STRICT;
CREATE INDEX audit_verifications_by_scope ON audit_verifications(scope, time);

CREATE INDEX audit_log_by_action ON audit_log(action);
CREATE INDEX audit_log_by_actor ON audit_log(actor_id);
CREATE INDEX audit_log_by_target ON audit_log(target_id);
CREATE INDEX audit_log_by_time ON audit_log(time);
CREATE INDEX audit_log_by_ip ON audit_log(ip);
