-- The platform chain shares the entry layout of the workspace chains (see
-- tenant 0004_audit_redaction.sql); its entries are never redacted today, but
-- the columns keep one reader for every chain (its trigger still refuses
-- every update).
ALTER TABLE audit_log ADD COLUMN detail_digest BLOB;
ALTER TABLE audit_log ADD COLUMN redacted_by INTEGER;
