-- Data-subject anonymisation may replace an entry's sealed details, never
-- anything the chain hashes directly. The chain commits to the SHA-256 of the
-- details' ciphertext; a redacted entry keeps that digest in `detail_digest`
-- and names the `data_subject.anonymised` entry that redacted it in
-- `redacted_by`, so the chain still verifies and the redaction is itself on
-- the chain. Every other column stays append-only.
ALTER TABLE audit_log ADD COLUMN detail_digest BLOB;
ALTER TABLE audit_log ADD COLUMN redacted_by INTEGER;

DROP TRIGGER audit_log_append_only;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
WHEN NEW.seq IS NOT OLD.seq
  OR NEW.time IS NOT OLD.time
  OR NEW.actor_type IS NOT OLD.actor_type
  OR NEW.actor_id IS NOT OLD.actor_id
  OR NEW.action IS NOT OLD.action
  OR NEW.target_type IS NOT OLD.target_type
  OR NEW.target_id IS NOT OLD.target_id
  OR NEW.ip IS NOT OLD.ip
  OR NEW.request_id IS NOT OLD.request_id
  OR NEW.prev_hash IS NOT OLD.prev_hash
  OR NEW.hash IS NOT OLD.hash
  OR NEW.redacted_by IS NULL
  OR NEW.redacted_by <= OLD.seq
  OR (OLD.detail_digest IS NOT NULL AND NEW.detail_digest IS NOT OLD.detail_digest)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only; only an anonymisation may replace sealed details');
END;
