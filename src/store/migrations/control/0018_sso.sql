-- Single sign-on (issue 22): each workspace's OpenID provider, the provider
-- identities linked to accounts, and how each session signed in.
--
-- Everything an admin typed (issuer, client id and secret, domains,
-- mappings) is sealed under the platform key; the email domains are also
-- kept as blind indexes so the sign-in page can find a workspace by domain.
CREATE TABLE workspace_sso (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    settings_ct BLOB NOT NULL,
    secret_ct BLOB NOT NULL,
    required INTEGER NOT NULL DEFAULT 0,
    break_glass TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sso_domains (
    domain_bidx BLOB NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    PRIMARY KEY (domain_bidx, workspace_id)
);

-- A provider's identity (issuer + subject, never the email) linked to an
-- account; the blind index finds it, the sealed copies name it.
CREATE TABLE sso_identities (
    subject_bidx BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id TEXT REFERENCES workspaces(id) ON DELETE SET NULL,
    issuer_ct BLOB NOT NULL,
    subject_ct BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL
);
CREATE INDEX sso_identities_user ON sso_identities(user_id);

-- The workspace a session signed in to through its provider, and whether
-- the provider's own second factor counts for it.
ALTER TABLE sessions ADD COLUMN sso_workspace TEXT;
ALTER TABLE sessions ADD COLUMN sso_mfa INTEGER NOT NULL DEFAULT 0;
