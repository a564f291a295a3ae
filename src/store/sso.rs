//! SQL for single sign-on: each workspace's provider settings (sealed), the
//! email domains that find a workspace (blind indexes), and the provider
//! identities (issuer + subject) linked to accounts.

use rusqlite::{OptionalExtension, params};

use super::control::PlatformKeys;
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::seal::Slot;
use crate::error::Result;
use crate::ids::{UserId, WorkspaceId};

/// A workspace's provider, as stored: the settings are JSON (read by
/// `identity::sso`), the secret apart so it is opened only to sign in.
#[derive(Clone, Debug)]
pub struct SsoRow {
    pub settings: String,
    pub secret: String,
    pub required: bool,
    pub break_glass: Option<UserId>,
    pub updated_at: i64,
}

fn domain_index(keys: &PlatformKeys, domain: &str) -> Vec<u8> {
    keys.blind
        .compute("sso.domain", &domain.trim().to_ascii_lowercase())
}

fn subject_index(keys: &PlatformKeys, issuer: &str, subject: &str) -> Vec<u8> {
    // A NUL cannot occur in a URL nor, by RFC 7519's StringOrURI, usefully
    // in a subject: the pair cannot be confused with another pair.
    keys.blind
        .compute("sso.subject", &format!("{issuer}\0{subject}"))
}

pub fn get(conn: &dyn Sql, keys: &PlatformKeys, ws: WorkspaceId) -> Result<Option<SsoRow>> {
    let conn = conn.conn(TOKEN);
    let id = ws.to_string();
    type Row = (Vec<u8>, Vec<u8>, bool, Option<String>, i64);
    let row: Option<Row> = conn
        .query_row(
            "SELECT settings_ct, secret_ct, required, break_glass, updated_at
             FROM workspace_sso WHERE workspace_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    row.map(|(settings, secret, required, break_glass, updated_at)| {
        Ok(SsoRow {
            settings: keys
                .sealer
                .open_string(Slot::new("workspace_sso", &id, "settings"), &settings)?,
            secret: keys
                .sealer
                .open_string(Slot::new("workspace_sso", &id, "secret"), &secret)?,
            required,
            break_glass: break_glass.map(|b| b.parse()).transpose()?,
            updated_at,
        })
    })
    .transpose()
}

/// Writes the workspace's provider and its email domains, replacing any.
pub fn put(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    ws: WorkspaceId,
    row: &SsoRow,
    domains: &[String],
    now: i64,
) -> Result<()> {
    let id = ws.to_string();
    let settings = keys
        .sealer
        .seal_str(Slot::new("workspace_sso", &id, "settings"), &row.settings)?;
    let secret = keys
        .sealer
        .seal_str(Slot::new("workspace_sso", &id, "secret"), &row.secret)?;
    let t = tx.tx(TOKEN);
    t.execute(
        "INSERT INTO workspace_sso (workspace_id, settings_ct, secret_ct, required, break_glass,
                                    created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (workspace_id) DO UPDATE SET settings_ct = ?2, secret_ct = ?3,
             required = ?4, break_glass = ?5, updated_at = ?6",
        params![
            id,
            settings,
            secret,
            row.required,
            row.break_glass.map(|b| b.to_string()),
            now
        ],
    )?;
    t.execute("DELETE FROM sso_domains WHERE workspace_id = ?1", [&id])?;
    for d in domains {
        t.execute(
            "INSERT OR IGNORE INTO sso_domains (domain_bidx, workspace_id) VALUES (?1, ?2)",
            params![domain_index(keys, d), id],
        )?;
    }
    Ok(())
}

/// Removes the workspace's provider; whether there was one.
pub fn delete(tx: &dyn SqlTx, ws: WorkspaceId) -> Result<bool> {
    let t = tx.tx(TOKEN);
    let id = ws.to_string();
    t.execute("DELETE FROM sso_domains WHERE workspace_id = ?1", [&id])?;
    Ok(t.execute("DELETE FROM workspace_sso WHERE workspace_id = ?1", [&id])? > 0)
}

/// The active workspaces whose provider accepts this email domain.
pub fn workspaces_for_domain(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    domain: &str,
) -> Result<Vec<WorkspaceId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT d.workspace_id FROM sso_domains d JOIN workspaces w ON w.id = d.workspace_id
         WHERE d.domain_bidx = ?1 AND w.state = 'active' ORDER BY d.workspace_id",
    )?;
    let ids = stmt
        .query_map([domain_index(keys, domain)], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    ids.into_iter().map(|i| i.parse()).collect()
}

/// The account a provider identity is linked to.
pub fn linked_user(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    issuer: &str,
    subject: &str,
) -> Result<Option<UserId>> {
    let conn = conn.conn(TOKEN);
    let id: Option<String> = conn
        .query_row(
            // cross-workspace: an identity belongs to an account, not to one workspace
            "SELECT user_id FROM sso_identities WHERE subject_bidx = ?1",
            [subject_index(keys, issuer, subject)],
            |r| r.get(0),
        )
        .optional()?;
    id.map(|i| i.parse()).transpose()
}

/// Links a provider identity to an account (first sign-in).
pub fn link(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    user: UserId,
    ws: Option<WorkspaceId>,
    issuer: &str,
    subject: &str,
    now: i64,
) -> Result<()> {
    let bidx = subject_index(keys, issuer, subject);
    let row = hex::encode(&bidx);
    let issuer_ct = keys
        .sealer
        .seal_str(Slot::new("sso_identities", &row, "issuer"), issuer)?;
    let subject_ct = keys
        .sealer
        .seal_str(Slot::new("sso_identities", &row, "subject"), subject)?;
    tx.tx(TOKEN).execute(
        "INSERT INTO sso_identities (subject_bidx, user_id, workspace_id, issuer_ct, subject_ct,
                                     created_at, last_used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            bidx,
            user.to_string(),
            ws.map(|w| w.to_string()),
            issuer_ct,
            subject_ct,
            now
        ],
    )?;
    Ok(())
}

pub fn touch(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    issuer: &str,
    subject: &str,
    now: i64,
) -> Result<()> {
    tx.tx(TOKEN).execute(
        // cross-workspace: an identity belongs to an account, not to one workspace
        "UPDATE sso_identities SET last_used_at = ?2 WHERE subject_bidx = ?1",
        params![subject_index(keys, issuer, subject), now],
    )?;
    Ok(())
}

/// Active workspaces that have a provider, and those that require it.
pub fn counts(conn: &dyn Sql) -> Result<(i64, i64)> {
    Ok(conn.conn(TOKEN).query_row(
        "SELECT count(*), coalesce(sum(s.required), 0) FROM workspace_sso s
         JOIN workspaces w ON w.id = s.workspace_id WHERE w.state = 'active'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// How a session signed in through a workspace's provider: the workspace,
/// and whether the provider's own second factor counts for its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsoMark {
    pub workspace: WorkspaceId,
    pub mfa: bool,
}

/// Whether the workspace is active (not suspended, being deleted or gone).
pub fn workspace_active(conn: &dyn Sql, ws: WorkspaceId) -> Result<bool> {
    Ok(conn
        .conn(TOKEN)
        .query_row(
            "SELECT 1 FROM workspaces WHERE id = ?1 AND state = 'active'",
            [ws.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
