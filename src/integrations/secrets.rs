//! Integration secrets: API keys and tokens an admin stores for integrations.
//! Values are sealed and write-only: nothing returns one, only its name, its
//! last four characters and its times. A rotation keeps the previous value
//! working for an overlap; inbound integrations verify with either.

use serde_json::json;

use crate::access::enter::TenantHandle;
use crate::audit::NewEntry;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::integrations::{self as store, SecretRow};

const MIN_LEN: usize = 8;
const MAX_LEN: usize = 4096;

pub fn validate_value(field: &str, value: &str) -> Result<()> {
    let n = value.chars().count();
    if value.trim().is_empty() || !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(Error::field(
            field,
            format!("must be {MIN_LEN} to {MAX_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::field(field, "must not contain control characters"));
    }
    Ok(())
}

pub async fn list(ctx: &TenantHandle) -> Result<Vec<SecretRow>> {
    ctx.db.read(store::list_secrets).await
}

pub async fn create(ctx: &TenantHandle, name: &str, value: &str) -> Result<SecretRow> {
    let name = crate::identity::validate_name("name", name)?;
    validate_value("value", value)?;
    let now = ctx.now();
    let id = super::new_id();
    let (actor, m, value) = (ctx.actor.clone(), ctx.meta.clone(), value.to_owned());
    let row = SecretRow {
        id: id.clone(),
        name: name.clone(),
        last4: store::last4(&value),
        created_at: now,
        rotated_at: None,
        last_used_at: None,
        previous_until: None,
    };
    ctx.db
        .write(move |t| {
            store::insert_secret(t, t.sealer, &id, &name, &value, now)?;
            t.audit(
                now,
                &NewEntry::new(actor, "integration_secret.created", &m)
                    .target("integration_secret", &id)
                    .after(json!({ "name": name })),
            )?;
            Ok(())
        })
        .await?;
    Ok(row)
}

pub async fn rotate(
    ctx: &TenantHandle,
    cfg: &Config,
    id: &str,
    value: &str,
    overlap_hours: Option<u32>,
) -> Result<SecretRow> {
    validate_value("value", value)?;
    let now = ctx.now();
    let until = super::previous_until(
        overlap_hours,
        cfg.file.integrations.secret_overlap_hours,
        now,
    )?;
    let (actor, m, value, id) = (
        ctx.actor.clone(),
        ctx.meta.clone(),
        value.to_owned(),
        id.to_owned(),
    );
    ctx.db
        .write(move |t| {
            let old = store::get_secret(t, t.sealer, &id)?.ok_or(Error::NotFound("secret"))?;
            if !store::rotate_secret(t, t.sealer, &id, &value, until, now)? {
                return Err(Error::NotFound("secret"));
            }
            let new = store::get_secret(t, t.sealer, &id)?.ok_or(Error::NotFound("secret"))?;
            // Never the value: its last four characters, as the API lists them.
            t.audit(
                now,
                &NewEntry::new(actor, "integration_secret.rotated", &m)
                    .target("integration_secret", &id)
                    .before(json!({ "last4": old.last4, "rotated_at": old.rotated_at, "previous_valid_until": old.previous_until }))
                    .after(json!({ "last4": new.last4, "rotated_at": new.rotated_at, "previous_valid_until": until })),
            )?;
            Ok(new)
        })
        .await
}

pub async fn delete(ctx: &TenantHandle, id: &str) -> Result<()> {
    let now = ctx.now();
    let (actor, m, id) = (ctx.actor.clone(), ctx.meta.clone(), id.to_owned());
    ctx.db
        .write(move |t| {
            let Some(old) = store::get_secret(t, t.sealer, &id)? else {
                return Err(Error::NotFound("secret"));
            };
            if store::secret_users(t, &id)? > 0 {
                return Err(Error::Conflict(
                    "an inbound integration verifies with this secret; delete it first".into(),
                ));
            }
            store::delete_secret(t, &id)?;
            t.audit(
                now,
                &NewEntry::new(actor, "integration_secret.deleted", &m)
                    .target("integration_secret", &id)
                    .before(json!({ "name": old.name })),
            )?;
            Ok(())
        })
        .await
}
