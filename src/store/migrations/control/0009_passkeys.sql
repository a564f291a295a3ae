-- Passkeys (WebAuthn): a second factor, or a first one. The credential's
-- public key and counter (webauthn-rs's `Passkey`, JSON) and its label are
-- sealed; the credential id is kept for lookups.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    cred_id BLOB NOT NULL UNIQUE,
    name_ct BLOB NOT NULL,
    passkey_ct BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX passkeys_by_user ON passkeys(user_id);
