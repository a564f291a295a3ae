//! A refused form shown again as it was sent, on a workspace page with
//! several forms (members, integrations): which form, and its fields.

use poem::Response;

use super::forms::{WsPost, every, one};
use crate::access::op::Op;
use crate::error::{Error, FieldError};
use crate::web::tenant::TenantPage;

/// A form sent back after a 4xx: which form of the page (`webhook`,
/// `invite`, ...) and what it sent, shown again as typed.
#[derive(Clone, Copy)]
pub struct Sent<'a> {
    pub form: &'static str,
    pub pairs: &'a [(String, String)],
}

impl<'a> Sent<'a> {
    /// What `key` of `form` was typed (nothing for another form).
    pub fn kept(self, form: &str, key: &str) -> Option<&'a str> {
        (self.form == form).then(|| one(self.pairs, key)).flatten()
    }

    pub fn checked(self, form: &str, key: &str, value: &str) -> bool {
        self.form == form && every(self.pairs, key).contains(&value)
    }
}

impl<O: Op> WsPost<O> {
    /// Back to the workspace's `section` page when the change was done, else
    /// `again` with the errors and the form named `form` as it was sent.
    pub async fn back_to_section<T>(
        &self,
        r: Result<T, Error>,
        section: &str,
        form: &'static str,
        again: impl AsyncFnOnce(&TenantPage<O>, &[FieldError], Sent<'_>) -> poem::Result<Response>,
    ) -> poem::Result<Response> {
        let to = |_| format!("/w/{}/{section}", self.ctx.db.id());
        let sent = Sent {
            form,
            pairs: &self.form.0,
        };
        self.then(r, to, async |ctx, errors| again(ctx, errors, sent).await)
            .await
    }
}
