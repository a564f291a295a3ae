-- Files attached to records (`file` fields). The bytes live sealed under
-- tenants/<id>/files/<id>; here are what they belong to, their plaintext
-- size (the workspace quota sums it) and their key, sealed by the workspace
-- key (slot: files, "<record>/<field>/<file>", key). Names and media types
-- are in the record's sealed values, never here.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    field_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    key_ct BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX files_record ON files(record_id);
