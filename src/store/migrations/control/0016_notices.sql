-- Notices the trust page promises: incidents the operator declares (`aura
-- incident declare`), the updates that follow them, the workspaces each one
-- affects, subprocessor changes owners were told about, and the mail each
-- notice owes a person. Summaries are operator-typed: sealed under the
-- platform key. In the clear: ids, times, the status and scope enums.

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    declared_at INTEGER NOT NULL,
    -- 'all': every workspace at declaration; 'listed': those named
    scope TEXT NOT NULL CHECK (scope IN ('all', 'listed')),
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    updated_at INTEGER NOT NULL,
    resolved_at INTEGER
) STRICT;

-- The declaration (seq 1) and every update after it, each with its summary.
CREATE TABLE incident_updates (
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('declared', 'updated', 'resolved')),
    summary_ct BLOB,
    PRIMARY KEY (incident_id, seq)
) STRICT;

CREATE TABLE incident_workspaces (
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    workspace_id TEXT NOT NULL,
    PRIMARY KEY (incident_id, workspace_id)
) STRICT;
CREATE INDEX incident_workspaces_by_workspace ON incident_workspaces(workspace_id);

-- A `[[trust.subprocessors]]` entry with a future `effective` date whose
-- notice went out: keyed by the SHA-256 of role, host and date, so a restart
-- does not notify again and a changed entry is a new notice.
CREATE TABLE subprocessor_notices (
    digest TEXT PRIMARY KEY,
    effective TEXT NOT NULL,
    noticed_at INTEGER NOT NULL
) STRICT;

-- One row per person a notice owes a mail: 'incident:<id>:<seq>' or
-- 'subprocessor:<digest>'. sent_at NULL: still to send (no relay yet, or it
-- refused); the server retries those.
CREATE TABLE notice_mail (
    notice TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    PRIMARY KEY (notice, user_id)
) STRICT;
CREATE INDEX notice_mail_unsent ON notice_mail(sent_at) WHERE sent_at IS NULL;
