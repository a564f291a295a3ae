//! HTTP surfaces: the JSON API, the server-rendered UI, static assets, and the
//! ops endpoints, wrapped in one envelope of middleware.

pub mod api;
pub mod assets;
pub mod body_limits;
pub mod budget;
pub mod conn;
pub mod csrf;
pub mod fence;
pub mod hooks;
pub mod middleware;
pub mod problem;
pub mod rate;
pub mod scim;
pub mod session;
pub mod tenant;
pub mod ui;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, Route, get, post};

use crate::app::AppState;

/// One UI route that changes state (an HTML form post): its address, the
/// handler its POST goes to, and the page some forms also show at the same
/// address. `UI_FORMS` is the one declaration: the router registers from it,
/// the CSRF and audit tests and the isolation matrix walk it, so a form route
/// cannot exist without a handler, nor a handler without its entry.
pub struct FormRoute {
    /// Exactly as the router spells it.
    pub path: &'static str,
    /// Form routes take posts only.
    pub method: poem::http::Method,
    post: fn() -> BoxEndpoint<'static>,
    page: Option<fn() -> BoxEndpoint<'static>>,
}

/// Declares `UI_FORMS`, one line per form route: its path, its handler and
/// (after `page`) the page served by GET at the same address.
macro_rules! ui_forms {
    ($($path:literal => $pm:ident::$pf:ident $(, page $gm:ident::$gf:ident)?;)*) => {
        /// Every UI form route, in the order the CSRF test walks them.
        pub const UI_FORMS: &[FormRoute] = &[$(
            FormRoute {
                path: $path,
                method: poem::http::Method::POST,
                post: || ui::$pm::$pf.boxed(),
                page: ui_forms!(@page $($gm::$gf)?),
            },
        )*];
    };
    (@page $gm:ident::$gf:ident) => { Some(|| ui::$gm::$gf.boxed()) };
    (@page) => { None };
}

ui_forms! {
    "/login" => pages::login_submit, page pages::login_form;
    "/logout" => pages::logout_submit;
    "/w/:ws/audit/verify" => audit::workspace_verify;
    "/platform/audit/verify" => audit::platform_verify;
    "/platform/backups/run" => backups::run_now;
    "/platform/backups/drill" => backups::drill_now;
    "/w/:ws/collections" => schema::create_collection;
    "/w/:ws/c/:coll/schema" => schema::schema_submit, page schema::schema_page;
    "/w/:ws/c/:coll/records" => record_form::create_record;
    "/w/:ws/c/:coll/r/:rec" => record_form::update_record, page record_form::record_page;
    // A multipart post (its token in the query), then a removal of what it added.
    "/w/:ws/c/:coll/r/:rec/files/:field" => record_files::upload;
    "/w/:ws/c/:coll/r/:rec/files/remove" => record_files::remove;
    "/w/:ws/c/:coll/r/:rec/restore" => record_form::restore_record;
    "/w/:ws/c/:coll/r/:rec/delete" => record_form::delete_record;
    "/w/:ws/c/:coll/r/:rec/undelete" => record_form::undelete_record;
    "/w/:ws/c/:coll/delete" => schema::delete_collection;
    "/w/:ws/teams" => teams::create_team, page teams::teams_page;
    "/w/:ws/teams/:team/members" => teams::add_member;
    "/w/:ws/teams/:team/members/remove" => teams::remove_member;
    "/w/:ws/teams/:team/delete" => teams::delete_team;
    "/w/:ws/members/role" => access::change_role;
    "/w/:ws/members/remove" => access::remove_member;
    "/w/:ws/service-accounts" => access::create_service_account;
    "/w/:ws/tokens" => access::create_token;
    "/w/:ws/tokens/revoke" => access::revoke_token;
    "/w/:ws/scim/token" => scim::issue_token;
    "/w/:ws/scim/token/revoke" => scim::revoke_token;
    "/account/sessions/end" => account::end_session;
    "/account/password" => account::change_password;
    "/account/mfa/start" => account::mfa_start;
    "/account/mfa/confirm" => account::mfa_confirm;
    "/account/mfa/remove" => account::mfa_remove;
    "/account/mfa/recovery-codes" => account::mfa_recovery_codes;
    "/account/passkeys/remove" => account::passkey_remove;
    "/w/:ws/mfa-policy" => access::set_mfa_policy;
    "/w/:ws/sso" => sso_settings::sso_submit, page sso_settings::sso_page;
    "/w/:ws/sso/delete" => sso_settings::sso_delete;
    "/auth/oidc/link" => sso::link_submit;
    "/auth/oidc/link/mail" => sso::link_mail;
    "/auth/oidc/link/:token" => sso::link_mail_redeem, page sso::link_mail_page;
    "/platform/workspaces" => platform::create_workspace, page platform::workspaces_page;
    "/platform/workspaces/:ws/suspend" => platform::suspend;
    "/platform/workspaces/:ws/resume" => platform::resume;
    "/platform/workspaces/:ws/impersonate" => platform::impersonate;
    "/platform/impersonation/end" => platform::end_impersonation;
    "/platform/accounts" => platform_accounts::create_account, page platform_accounts::accounts_page;
    "/platform/accounts/disable" => platform_accounts::disable;
    "/platform/accounts/enable" => platform_accounts::enable;
    "/platform/accounts/admin" => platform_accounts::set_platform_admin;
    "/w/:ws/invitations" => access::invite;
    "/w/:ws/invitations/revoke" => access::revoke_invitation;
    "/login/magic" => magic::request_link;
    "/magic/:token" => magic::redeem, page magic::link_page;
    "/reset" => magic::request_reset, page magic::forgot_page;
    "/reset/:token" => magic::reset, page magic::reset_page;
    "/w/:ws/privacy/export" => privacy::start_export;
    "/w/:ws/privacy/subjects" => privacy::find_subject;
    "/w/:ws/privacy/subjects/export" => privacy::export_subject;
    "/w/:ws/privacy/subjects/anonymise" => privacy::anonymise_subject;
    "/w/:ws/deletion" => lifecycle::schedule_deletion;
    "/w/:ws/deletion/cancel" => lifecycle::cancel_deletion;
    "/w/:ws/incidents/ack" => notices::acknowledge;
    "/w/:ws/keys/rotate" => keys::rotate_key;
    "/account/deletion" => lifecycle::schedule_account_deletion;
    "/account/deletion/cancel" => lifecycle::cancel_account_deletion;
    // Last: the CSRF test signs in as the invitee here.
    "/w/:ws/integrations/secrets" => integrations::create_secret;
    "/w/:ws/integrations/secrets/rotate" => integrations::rotate_secret;
    "/w/:ws/integrations/secrets/delete" => integrations::delete_secret;
    "/w/:ws/integrations/webhooks" => integrations::create_webhook;
    "/w/:ws/integrations/webhooks/rotate" => integrations::rotate_webhook;
    "/w/:ws/integrations/webhooks/redeliver" => integrations::redeliver;
    "/w/:ws/integrations/webhooks/delete" => integrations::delete_webhook;
    "/w/:ws/integrations/inbound" => integrations::create_inbound;
    "/w/:ws/integrations/inbound/delete" => integrations::delete_inbound;
    "/invite/:token" => invite::accept, page invite::invite_page;
}

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = api::service(&state.config.public_url);
    let spec = api::spec::document(&api);
    let mut route = Route::new()
        .at("/healthz", get(crate::ops::health::healthz))
        .at("/readyz", get(crate::ops::health::readyz))
        .at("/metrics", get(crate::ops::metrics::metrics))
        .at("/trust", get(crate::ops::trust::trust_page))
        .at("/trust.json", get(crate::ops::trust::trust_json))
        .at("/auth/oidc/start", get(ui::sso::start))
        .at("/auth/oidc/callback", get(ui::sso::callback))
        .at("/trust/incidents/:id", get(ui::notices::incident_page))
        .at(
            "/.well-known/security.txt",
            get(crate::ops::trust::security_txt),
        )
        .nest("/api/v1", api)
        .nest("/scim/v2", scim::routes())
        .at(
            "/api/openapi.json",
            get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(spec.clone())
            })),
        )
        .at("/", get(ui::pages::home))
        .at("/workspaces", get(ui::pages::workspaces))
        .at("/w/:ws", get(ui::records::workspace_home))
        .at("/w/:ws/collections/new", get(ui::schema::new_collection))
        .at("/w/:ws/c/:coll", get(ui::records::collection_page))
        .at("/w/:ws/c/:coll/new", get(ui::record_form::new_record))
        .at(
            "/w/:ws/c/:coll/r/:rec/files/:field/:file",
            get(ui::record_files::download),
        )
        .at("/w/:ws/members", get(ui::access::members_page))
        .at("/account", get(ui::account::account_page))
        .at("/w/:ws/audit", get(ui::audit::workspace_audit))
        .at("/w/:ws/audit/:seq", get(ui::audit::workspace_entry))
        .at("/platform", get(ui::platform::index))
        .at("/platform/audit", get(ui::audit::platform_audit))
        .at("/platform/audit/:seq", get(ui::audit::platform_entry))
        .at("/platform/backups", get(ui::backups::page))
        .at("/w/:ws/privacy", get(ui::privacy::privacy_page))
        .at("/w/:ws/privacy/exports/:id", get(ui::privacy::export_page))
        .at("/assets/*path", get(assets::serve))
        .at("/w/:ws/settings", get(ui::lifecycle::settings_page))
        .at("/w/:ws/integrations", get(ui::integrations::page))
        .at("/hooks/:ws/:integration", post(hooks::receive));
    for form in UI_FORMS {
        let post = poem::RouteMethod::new().method(form.method.clone(), (form.post)());
        route = route.at(
            form.path,
            match form.page {
                Some(page) => post.get(page()),
                None => post,
            },
        );
    }
    // The fence is outermost: a server that may not write refuses every
    // write before authentication, CSRF or rate limits look at it.
    route
        .around(middleware::envelope)
        .around(fence::gate)
        .data(state)
}

#[cfg(test)]
mod tests {
    use super::UI_FORMS;

    /// Each form route is declared once, as a post, and spelled like the
    /// router's other paths; its handler is a required field of the entry,
    /// so a declared route without one does not compile.
    #[test]
    fn every_ui_form_is_declared_once_as_a_post() {
        let mut seen = std::collections::BTreeSet::new();
        for f in UI_FORMS {
            assert!(seen.insert(f.path), "{} is declared twice", f.path);
            assert_eq!(f.method, poem::http::Method::POST, "{}", f.path);
            assert!(f.path.starts_with('/'), "{}", f.path);
        }
    }
}
