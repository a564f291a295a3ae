-- Teams, collections and records. Names, schemas and record values are sealed
-- under the workspace key; what stays in the clear is ids, times, counters and
-- keyed digests (blind indexes), never a value a person typed.

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name_ct BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('lead', 'member')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
) STRICT;
CREATE INDEX team_members_by_user ON team_members(user_id);

CREATE TABLE collections (
    id TEXT PRIMARY KEY,
    team_id TEXT REFERENCES teams(id),
    -- sealed JSON: name, fields, record permissions
    def_ct BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- `seq` orders creation and keys the search index; `rev` counts every change
-- (the search index catches up from it). A deleted record leaves a tombstone
-- without values so the index learns of the deletion.
CREATE TABLE records (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    collection_id TEXT NOT NULL REFERENCES collections(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    rev INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    values_ct BLOB
) STRICT;
CREATE INDEX records_by_created ON records(collection_id, deleted, created_at, seq);
CREATE INDEX records_by_updated ON records(collection_id, deleted, updated_at, seq);
CREATE INDEX records_by_rev ON records(rev);

-- The last versions of each record, for history and restore.
CREATE TABLE record_versions (
    record_seq INTEGER NOT NULL REFERENCES records(seq) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    time INTEGER NOT NULL,
    actor TEXT,
    values_ct BLOB NOT NULL,
    PRIMARY KEY (record_seq, version)
) STRICT;

-- Keyed digests (HMAC under the workspace key) of unique and pii values:
-- `uniq = 1` rows enforce uniqueness per collection and field; `uniq = 0` rows
-- find a data subject's records without decrypting everything.
CREATE TABLE record_keys (
    collection_id TEXT NOT NULL,
    field_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    record_seq INTEGER NOT NULL REFERENCES records(seq) ON DELETE CASCADE,
    uniq INTEGER NOT NULL CHECK (uniq IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX record_keys_unique ON record_keys(collection_id, field_id, digest) WHERE uniq = 1;
CREATE INDEX record_keys_by_digest ON record_keys(digest);
CREATE INDEX record_keys_by_record ON record_keys(record_seq);

-- Idempotency-Key of record creates: a keyed digest of (caller, collection,
-- key), a digest of the request, and the record it created. Kept 24 hours.
CREATE TABLE idempotency_keys (
    key_digest BLOB PRIMARY KEY,
    request_digest BLOB NOT NULL,
    record_seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
