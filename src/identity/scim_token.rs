//! The workspace's SCIM bearer token: owners and admins issue, rotate and
//! revoke it. One live token per workspace; issuing again replaces the old
//! one in the same transaction. The secret is returned once and only its
//! SHA-256 is kept; the SCIM routes of this workspace are the only place it
//! works (`access::scim`), and a session, an API token or another
//! workspace's SCIM token never works there.

use serde_json::json;

use super::members::{Change, control_update};
use crate::access::enter::TenantHandle;
use crate::access::scim::PREFIX;
use crate::crypto::token::{hash_token, random_token};
use crate::error::Result;
use crate::ids::TokenId;
use crate::store::control::Control;
use crate::store::scim::{self, ScimTokenRow};

pub struct Issued {
    pub row: ScimTokenRow,
    /// `aura_scim_...`, returned once and never stored.
    pub secret: String,
}

/// The workspace's token, if it has one (never the secret).
pub async fn status(control: &Control, ctx: &TenantHandle) -> Result<Option<ScimTokenRow>> {
    let ws = ctx.db.id();
    control
        .db
        .read_async(move |c| scim::scim_token(c, ws))
        .await
}

/// Issues a token, or rotates it: the token before stops working as this
/// one is committed.
pub async fn issue(control: &Control, ctx: &TenantHandle) -> Result<Issued> {
    let ws = ctx.db.id();
    let now = ctx.now();
    let secret = format!("{PREFIX}{}", random_token());
    let hash = hash_token(&secret);
    let id = format!("scim_{}", TokenId::generate());
    let row = ScimTokenRow {
        id: id.clone(),
        created_by: ctx.user.to_string(),
        created_at: now,
        last_used_at: None,
    };
    let by = row.created_by.clone();
    let change = Change {
        action: "scim.token_issued",
        target_type: "scim_token",
        target_id: id.clone(),
        after: json!({ "token": id }),
    };
    control_update(control, ctx, change, move |tx| {
        let before = scim::put_scim_token(tx, ws, &id, &hash, &by, now)?;
        Ok(((), before.map(|b| json!({ "token": b.id }))))
    })
    .await?;
    Ok(Issued { row, secret })
}

/// Revokes the token; the next SCIM request with it gets 401.
pub async fn revoke(control: &Control, ctx: &TenantHandle) -> Result<()> {
    let ws = ctx.db.id();
    let current = status(control, ctx)
        .await?
        .ok_or(crate::error::Error::NotFound("SCIM token"))?;
    let change = Change {
        action: "scim.token_revoked",
        target_type: "scim_token",
        target_id: current.id,
        after: json!({ "token": null }),
    };
    control_update(control, ctx, change, move |tx| {
        let before = scim::delete_scim_token(tx, ws)?;
        Ok(((), Some(json!({ "token": before.id }))))
    })
    .await
}
