-- What each commit to control.db changed, for the in-memory caches in front
-- of every request's credential and membership reads (src/store/cache.rs).
-- Triggers fill it, so every writer (the server, the `aura` CLI beside it, a
-- restore) reports its changes without remembering to: a commit then drops
-- only the cached entries it touched (a session, an API token, a token
-- family, everything of one account or of one workspace), not the whole
-- cache. A table not named below empties every cache when it changes
-- ('all'); the tables with no trigger feed no cached read (the audit chain,
-- refresh tokens, emailed links, recovery codes), and the unit test
-- `store::cache::tests::every_control_table_reports_its_changes` fails on a
-- new table that has neither.
--
-- Only the newest 4,096 changes are kept; a cache further behind than that
-- empties itself.
CREATE TABLE cache_changes (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'token', 'family', 'user', 'workspace', 'all')),
    key ANY
) STRICT;
-- Never empty, so the newest change is always there to compare with.
INSERT INTO cache_changes (seq, kind, key) VALUES (1, 'all', NULL);
CREATE TRIGGER cache_changes_trim AFTER INSERT ON cache_changes BEGIN
    DELETE FROM cache_changes WHERE seq <= NEW.seq - 4096;
END;
CREATE TRIGGER cache_sessions_ins AFTER INSERT ON sessions BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('session', NEW.id_hash);
END;
CREATE TRIGGER cache_sessions_upd AFTER UPDATE ON sessions BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('session', OLD.id_hash);
    INSERT INTO cache_changes (kind, key) SELECT 'session', NEW.id_hash WHERE NEW.id_hash IS NOT OLD.id_hash;
END;
CREATE TRIGGER cache_sessions_del AFTER DELETE ON sessions BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('session', OLD.id_hash);
END;
CREATE TRIGGER cache_api_tokens_ins AFTER INSERT ON api_tokens BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('token', NEW.hash);
END;
CREATE TRIGGER cache_api_tokens_upd AFTER UPDATE ON api_tokens BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('token', OLD.hash);
    INSERT INTO cache_changes (kind, key) SELECT 'token', NEW.hash WHERE NEW.hash IS NOT OLD.hash;
END;
CREATE TRIGGER cache_api_tokens_del AFTER DELETE ON api_tokens BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('token', OLD.hash);
END;
CREATE TRIGGER cache_token_families_ins AFTER INSERT ON token_families BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('family', NEW.id);
END;
CREATE TRIGGER cache_token_families_upd AFTER UPDATE ON token_families BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('family', OLD.id);
    INSERT INTO cache_changes (kind, key) SELECT 'family', NEW.id WHERE NEW.id IS NOT OLD.id;
END;
CREATE TRIGGER cache_token_families_del AFTER DELETE ON token_families BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('family', OLD.id);
END;
CREATE TRIGGER cache_users_ins AFTER INSERT ON users BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', NEW.id);
END;
CREATE TRIGGER cache_users_upd AFTER UPDATE ON users BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.id);
    INSERT INTO cache_changes (kind, key) SELECT 'user', NEW.id WHERE NEW.id IS NOT OLD.id;
END;
CREATE TRIGGER cache_users_del AFTER DELETE ON users BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.id);
END;
CREATE TRIGGER cache_memberships_ins AFTER INSERT ON memberships BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', NEW.user_id);
END;
CREATE TRIGGER cache_memberships_upd AFTER UPDATE ON memberships BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
    INSERT INTO cache_changes (kind, key) SELECT 'user', NEW.user_id WHERE NEW.user_id IS NOT OLD.user_id;
END;
CREATE TRIGGER cache_memberships_del AFTER DELETE ON memberships BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
END;
CREATE TRIGGER cache_totp_ins AFTER INSERT ON totp BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', NEW.user_id);
END;
CREATE TRIGGER cache_totp_upd AFTER UPDATE ON totp BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
    INSERT INTO cache_changes (kind, key) SELECT 'user', NEW.user_id WHERE NEW.user_id IS NOT OLD.user_id;
END;
CREATE TRIGGER cache_totp_del AFTER DELETE ON totp BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
END;
CREATE TRIGGER cache_passkeys_ins AFTER INSERT ON passkeys BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', NEW.user_id);
END;
CREATE TRIGGER cache_passkeys_upd AFTER UPDATE ON passkeys BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
    INSERT INTO cache_changes (kind, key) SELECT 'user', NEW.user_id WHERE NEW.user_id IS NOT OLD.user_id;
END;
CREATE TRIGGER cache_passkeys_del AFTER DELETE ON passkeys BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
END;
CREATE TRIGGER cache_sso_identities_ins AFTER INSERT ON sso_identities BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', NEW.user_id);
END;
CREATE TRIGGER cache_sso_identities_upd AFTER UPDATE ON sso_identities BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
    INSERT INTO cache_changes (kind, key) SELECT 'user', NEW.user_id WHERE NEW.user_id IS NOT OLD.user_id;
END;
CREATE TRIGGER cache_sso_identities_del AFTER DELETE ON sso_identities BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
END;
CREATE TRIGGER cache_user_deletions_ins AFTER INSERT ON user_deletions BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', NEW.user_id);
END;
CREATE TRIGGER cache_user_deletions_upd AFTER UPDATE ON user_deletions BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
    INSERT INTO cache_changes (kind, key) SELECT 'user', NEW.user_id WHERE NEW.user_id IS NOT OLD.user_id;
END;
CREATE TRIGGER cache_user_deletions_del AFTER DELETE ON user_deletions BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('user', OLD.user_id);
END;
CREATE TRIGGER cache_workspaces_ins AFTER INSERT ON workspaces BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', NEW.id);
END;
CREATE TRIGGER cache_workspaces_upd AFTER UPDATE ON workspaces BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.id);
    INSERT INTO cache_changes (kind, key) SELECT 'workspace', NEW.id WHERE NEW.id IS NOT OLD.id;
END;
CREATE TRIGGER cache_workspaces_del AFTER DELETE ON workspaces BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.id);
END;
CREATE TRIGGER cache_workspace_keys_ins AFTER INSERT ON workspace_keys BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', NEW.workspace_id);
END;
CREATE TRIGGER cache_workspace_keys_upd AFTER UPDATE ON workspace_keys BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
    INSERT INTO cache_changes (kind, key) SELECT 'workspace', NEW.workspace_id WHERE NEW.workspace_id IS NOT OLD.workspace_id;
END;
CREATE TRIGGER cache_workspace_keys_del AFTER DELETE ON workspace_keys BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
END;
CREATE TRIGGER cache_workspace_lifecycle_ins AFTER INSERT ON workspace_lifecycle BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', NEW.workspace_id);
END;
CREATE TRIGGER cache_workspace_lifecycle_upd AFTER UPDATE ON workspace_lifecycle BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
    INSERT INTO cache_changes (kind, key) SELECT 'workspace', NEW.workspace_id WHERE NEW.workspace_id IS NOT OLD.workspace_id;
END;
CREATE TRIGGER cache_workspace_lifecycle_del AFTER DELETE ON workspace_lifecycle BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
END;
CREATE TRIGGER cache_workspace_sso_ins AFTER INSERT ON workspace_sso BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', NEW.workspace_id);
END;
CREATE TRIGGER cache_workspace_sso_upd AFTER UPDATE ON workspace_sso BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
    INSERT INTO cache_changes (kind, key) SELECT 'workspace', NEW.workspace_id WHERE NEW.workspace_id IS NOT OLD.workspace_id;
END;
CREATE TRIGGER cache_workspace_sso_del AFTER DELETE ON workspace_sso BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
END;
CREATE TRIGGER cache_sso_domains_ins AFTER INSERT ON sso_domains BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', NEW.workspace_id);
END;
CREATE TRIGGER cache_sso_domains_upd AFTER UPDATE ON sso_domains BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
    INSERT INTO cache_changes (kind, key) SELECT 'workspace', NEW.workspace_id WHERE NEW.workspace_id IS NOT OLD.workspace_id;
END;
CREATE TRIGGER cache_sso_domains_del AFTER DELETE ON sso_domains BEGIN
    INSERT INTO cache_changes (kind, key) VALUES ('workspace', OLD.workspace_id);
END;
CREATE TRIGGER cache_meta_ins AFTER INSERT ON meta BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_meta_upd AFTER UPDATE ON meta BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_meta_del AFTER DELETE ON meta BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_platform_keys_ins AFTER INSERT ON platform_keys BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_platform_keys_upd AFTER UPDATE ON platform_keys BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_platform_keys_del AFTER DELETE ON platform_keys BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_impersonations_ins AFTER INSERT ON impersonations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_impersonations_upd AFTER UPDATE ON impersonations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_impersonations_del AFTER DELETE ON impersonations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_invitations_ins AFTER INSERT ON invitations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_invitations_upd AFTER UPDATE ON invitations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_invitations_del AFTER DELETE ON invitations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_shredded_workspaces_ins AFTER INSERT ON shredded_workspaces BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_shredded_workspaces_upd AFTER UPDATE ON shredded_workspaces BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_shredded_workspaces_del AFTER DELETE ON shredded_workspaces BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_key_rotations_ins AFTER INSERT ON key_rotations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_key_rotations_upd AFTER UPDATE ON key_rotations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_key_rotations_del AFTER DELETE ON key_rotations BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incidents_ins AFTER INSERT ON incidents BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incidents_upd AFTER UPDATE ON incidents BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incidents_del AFTER DELETE ON incidents BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incident_updates_ins AFTER INSERT ON incident_updates BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incident_updates_upd AFTER UPDATE ON incident_updates BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incident_updates_del AFTER DELETE ON incident_updates BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incident_workspaces_ins AFTER INSERT ON incident_workspaces BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incident_workspaces_upd AFTER UPDATE ON incident_workspaces BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_incident_workspaces_del AFTER DELETE ON incident_workspaces BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_subprocessor_notices_ins AFTER INSERT ON subprocessor_notices BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_subprocessor_notices_upd AFTER UPDATE ON subprocessor_notices BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_subprocessor_notices_del AFTER DELETE ON subprocessor_notices BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_notice_mail_ins AFTER INSERT ON notice_mail BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_notice_mail_upd AFTER UPDATE ON notice_mail BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_notice_mail_del AFTER DELETE ON notice_mail BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_scim_tokens_ins AFTER INSERT ON scim_tokens BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_scim_tokens_upd AFTER UPDATE ON scim_tokens BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_scim_tokens_del AFTER DELETE ON scim_tokens BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_scim_users_ins AFTER INSERT ON scim_users BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_scim_users_upd AFTER UPDATE ON scim_users BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_scim_users_del AFTER DELETE ON scim_users BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_retention_windows_ins AFTER INSERT ON retention_windows BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_retention_windows_upd AFTER UPDATE ON retention_windows BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
CREATE TRIGGER cache_retention_windows_del AFTER DELETE ON retention_windows BEGIN INSERT INTO cache_changes (kind) VALUES ('all'); END;
