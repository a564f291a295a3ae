//! `/platform/accounts`: people's accounts for platform admins. A new
//! account is invited by mail (the person chooses their own password);
//! accounts are disabled and enabled, and given or denied platform rights.
//! Every change is in the platform audit log with before and after.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::{Email, Name};
use super::list::list;
use super::routes::api;
use super::{ApiTags, Created, Done};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::staff;
use crate::ids::UserId;
use crate::store::accounts::Overview;
use crate::web::session::Admin;

#[derive(Object)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub platform_admin: bool,
    /// A disabled account cannot sign in by any method, and its sessions,
    /// API sign-ins and personal API tokens ended when it was disabled.
    pub disabled: bool,
    /// Invited and has not chosen a password yet.
    pub invited: bool,
    pub created_at: String,
    /// When one of its browser sessions was last used (none: signed out
    /// everywhere, or never signed in).
    pub last_seen_at: Option<String>,
    /// How many workspaces it is a member of.
    pub workspaces: i64,
}

impl From<Overview> for Account {
    fn from(o: Overview) -> Self {
        Self {
            id: o.user.id.to_string(),
            email: o.user.email,
            name: o.user.name,
            platform_admin: o.user.platform_admin,
            disabled: o.user.disabled,
            invited: o.user.password_hash.is_none(),
            created_at: rfc3339(o.user.created_at),
            last_seen_at: o.last_seen_at.map(rfc3339),
            workspaces: o.workspaces,
        }
    }
}

list!(AccountList of Account);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountCreate {
    /// Where the invitation goes; unique across the appliance.
    pub email: Email,
    /// The person's name (1 to 200 characters, no control characters).
    pub name: Name,
    /// Give the account access to the platform area (default false).
    pub platform_admin: Option<bool>,
}

#[derive(Object)]
pub struct AccountCreated {
    pub id: String,
    /// Whether the invitation mail was accepted by the mail server. The
    /// link in it works once, for 7 days, and sets the account's password.
    pub mailed: bool,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformAdminChange {
    pub platform_admin: bool,
}

fn user_id(s: &str) -> Result<UserId, Error> {
    s.parse().map_err(|_| Error::NotFound("user"))
}

#[derive(Default)]
pub struct PlatformAccountsApi;

api! {
    #[OpenApi(tag = "ApiTags::Platform")]
    impl PlatformAccountsApi {
        /// Every person's account (not workspaces' service accounts), oldest
        /// first.
        GET "/platform/accounts"
        async fn list(admin: Admin) -> Json<AccountList> {
            Ok(Json(staff::list(&admin.deps()).await?.into()))
        }

        /// Creates an account and mails its owner a single-use link (7 days) to
        /// choose a password; no one else ever sets or sees it. 422 when mail is
        /// not set up on this appliance (use `aura user create` there) or the
        /// email already has an account.
        POST "/platform/accounts"
        async fn create(admin: Admin, body: JsonBody<AccountCreate>) -> Created<AccountCreated> {
            let AccountCreate {
                email,
                name,
                platform_admin,
            } = body.0;
            let invited = staff::invite(
                &admin.deps(),
                &admin.who,
                staff::Invite {
                    email: email.into(),
                    name: name.into(),
                    platform_admin: platform_admin.unwrap_or(false),
                },
                &admin.meta,
            )
            .await?;
            Ok(Created::Created(Json(AccountCreated {
                id: invited.id.to_string(),
                mailed: invited.mailed,
            })))
        }

        /// Disables an account: every browser session and API sign-in ends at
        /// once, its personal API tokens are revoked (enabling it again brings
        /// none back), and no sign-in method works until it is enabled. 422 for
        /// your own account and for the last enabled platform admin.
        POST "/platform/accounts/:user/disable"
        async fn disable(admin: Admin, user: Path<String>) -> Done {
            let user = user_id(&user)?;
            staff::set_disabled(&admin.deps(), &admin.who, user, true, &admin.meta).await?;
            Ok(Done::Done)
        }

        /// Enables a disabled account: it signs in afresh.
        POST "/platform/accounts/:user/enable"
        async fn enable(admin: Admin, user: Path<String>) -> Done {
            let user = user_id(&user)?;
            staff::set_disabled(&admin.deps(), &admin.who, user, false, &admin.meta).await?;
            Ok(Done::Done)
        }

        /// Gives or takes platform rights (the platform area and its API). 422
        /// when it would leave no enabled platform admin.
        PUT "/platform/accounts/:user/platform-admin"
        async fn set_platform_admin(
            admin: Admin,
            user: Path<String>,
            body: JsonBody<PlatformAdminChange>,
        ) -> Done {
            let user = user_id(&user)?;
            staff::set_platform_admin(
                &admin.deps(),
                &admin.who,
                user,
                body.0.platform_admin,
                &admin.meta,
            )
            .await?;
            Ok(Done::Done)
        }
    }
}
