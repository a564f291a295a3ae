//! The "Data key" section of the workspace settings page: where the newest
//! rotation stands, and for owners a button that starts one (CSRF-checked
//! like every form).

use maud::{Markup, html};
use poem::{Response, handler};

use super::csrf_field;
use super::forms::WsPost;
use crate::access::op;
use crate::clock::rfc3339;
use crate::store::key_rotation::Rotation;
use crate::workspace::key_rotation;

pub fn section(ws: &str, rotation: Option<&Rotation>, owner: bool, token: &str) -> Markup {
    let running = rotation.is_some_and(|r| r.finished_at.is_none());
    html! {
        section.card id="data-key" data-state=(if running { "running" } else { "idle" }) {
            h2 { "Data key" }
            @match rotation {
                Some(r) if r.finished_at.is_none() => {
                    p role="status" { "Rotation under way: " (r.resealed) " values re-sealed"
                        @if let Some(n) = r.remaining { ", " (n) " to go" } "." }
                }
                Some(r) => {
                    p { "Last rotated " (r.finished_at.map(rfc3339).unwrap_or_default())
                        ": " (r.resealed) " values re-sealed, the old key destroyed." }
                }
                None => { p.muted { "Never rotated: the data key is the one the workspace was created with." } }
            }
            @if owner && !running {
                p { "A new data key seals every new write at once; older values are re-sealed in the background, and the old key is destroyed when none remains. Reads keep working throughout." }
                form id="key-rotate" method="post" action=(format!("/w/{ws}/keys/rotate")) {
                    (csrf_field(token))
                    button type="submit" { "Rotate the data key" }
                }
            }
        }
    }
}

#[handler]
pub async fn rotate_key(p: WsPost<op::WorkspaceRotateKey>) -> poem::Result<Response> {
    key_rotation::request_for(&p.state.control, &p.ctx).await?;
    Ok(p.done(format!("/w/{}/settings#data-key", p.ctx.db.id())))
}
