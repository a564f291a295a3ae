-- A data key rotation re-seals audit details under the new key. The chain
-- commits to the SHA-256 of the details' ciphertext, so a re-sealed entry keeps
-- the original digest in `detail_digest` (as an anonymised one does) and is
-- marked `resealed`; `aura audit verify` accepts a stored digest without a
-- redaction only on such an entry. Every other column stays append-only.
ALTER TABLE audit_log ADD COLUMN resealed INTEGER NOT NULL DEFAULT 0;

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
  OR (NEW.redacted_by IS NULL
      AND NOT (OLD.redacted_by IS NULL AND NEW.resealed = 1 AND NEW.detail_digest IS NOT NULL))
  OR (NEW.redacted_by IS NOT NULL AND NEW.redacted_by <= OLD.seq)
  OR (OLD.detail_digest IS NOT NULL AND NEW.detail_digest IS NOT OLD.detail_digest)
  OR (OLD.resealed = 1 AND NEW.resealed IS NOT 1)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only; only an anonymisation or a key rotation may replace sealed details');
END;
