-- Magic sign-in links: single use, 15 minutes; only the token's SHA-256.
CREATE TABLE magic_links (
    hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;
