//! HTTP surfaces: the JSON API, the server-rendered UI, static assets, and the
//! ops endpoints, wrapped in one envelope of middleware.

pub mod api;
pub mod assets;
pub mod budget;
pub mod conn;
pub mod csrf;
pub mod fence;
pub mod hooks;
pub mod middleware;
pub mod problem;
pub mod rate;
pub mod session;
pub mod tenant;
pub mod ui;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route, get, post};

use crate::app::AppState;

/// Every UI route that changes state (HTML form posts). The router registers
/// POST handlers only from this list, so a new form route cannot be added
/// without appearing here, and the CSRF and audit tests walk this list.
pub const UI_FORM_ROUTES: &[&str] = &[
    "/login",
    "/logout",
    "/w/:ws/audit/verify",
    "/platform/audit/verify",
    "/platform/backups/run",
    "/platform/backups/drill",
    "/w/:ws/collections",
    "/w/:ws/c/:coll/schema",
    "/w/:ws/c/:coll/records",
    "/w/:ws/c/:coll/r/:rec",
    "/w/:ws/c/:coll/r/:rec/restore",
    "/w/:ws/c/:coll/r/:rec/delete",
    "/w/:ws/teams",
    "/w/:ws/teams/:team/members",
    "/w/:ws/teams/:team/members/remove",
    "/w/:ws/teams/:team/delete",
    "/w/:ws/members/role",
    "/w/:ws/members/remove",
    "/w/:ws/service-accounts",
    "/w/:ws/tokens",
    "/w/:ws/tokens/revoke",
    "/account/sessions/end",
    "/account/password",
    "/account/mfa/start",
    "/account/mfa/confirm",
    "/account/mfa/remove",
    "/account/passkeys/remove",
    "/w/:ws/mfa-policy",
    "/platform/workspaces",
    "/platform/workspaces/:ws/suspend",
    "/platform/workspaces/:ws/resume",
    "/platform/workspaces/:ws/impersonate",
    "/platform/impersonation/end",
    "/w/:ws/invitations",
    "/w/:ws/invitations/revoke",
    "/login/magic",
    "/magic/:token",
    "/reset",
    "/reset/:token",
    "/w/:ws/privacy/export",
    "/w/:ws/privacy/subjects",
    "/w/:ws/privacy/subjects/export",
    "/w/:ws/privacy/subjects/anonymise",
    "/w/:ws/deletion",
    "/w/:ws/deletion/cancel",
    "/w/:ws/incidents/ack",
    "/w/:ws/keys/rotate",
    "/account/deletion",
    "/account/deletion/cancel",
    // Last: the CSRF test signs in as the invitee here.
    "/w/:ws/integrations/secrets",
    "/w/:ws/integrations/secrets/rotate",
    "/w/:ws/integrations/secrets/delete",
    "/w/:ws/integrations/webhooks",
    "/w/:ws/integrations/webhooks/rotate",
    "/w/:ws/integrations/webhooks/redeliver",
    "/w/:ws/integrations/webhooks/delete",
    "/w/:ws/integrations/inbound",
    "/w/:ws/integrations/inbound/delete",
    "/invite/:token",
];

fn ui_form(path: &str) -> Option<poem::endpoint::BoxEndpoint<'static>> {
    Some(match path {
        "/login" => ui::pages::login_submit.boxed(),
        "/logout" => ui::pages::logout_submit.boxed(),
        "/w/:ws/audit/verify" => ui::audit::workspace_verify.boxed(),
        "/platform/audit/verify" => ui::audit::platform_verify.boxed(),
        "/platform/backups/run" => ui::backups::run_now.boxed(),
        "/platform/backups/drill" => ui::backups::drill_now.boxed(),
        "/w/:ws/collections" => ui::schema::create_collection.boxed(),
        "/w/:ws/c/:coll/schema" => ui::schema::schema_submit.boxed(),
        "/w/:ws/c/:coll/records" => ui::record_form::create_record.boxed(),
        "/w/:ws/c/:coll/r/:rec" => ui::record_form::update_record.boxed(),
        "/w/:ws/c/:coll/r/:rec/delete" => ui::record_form::delete_record.boxed(),
        "/w/:ws/c/:coll/r/:rec/restore" => ui::record_form::restore_record.boxed(),
        "/w/:ws/teams" => ui::teams::create_team.boxed(),
        "/w/:ws/teams/:team/members" => ui::teams::add_member.boxed(),
        "/w/:ws/teams/:team/members/remove" => ui::teams::remove_member.boxed(),
        "/w/:ws/teams/:team/delete" => ui::teams::delete_team.boxed(),
        "/w/:ws/members/role" => ui::access::change_role.boxed(),
        "/w/:ws/members/remove" => ui::access::remove_member.boxed(),
        "/w/:ws/service-accounts" => ui::access::create_service_account.boxed(),
        "/w/:ws/tokens" => ui::access::create_token.boxed(),
        "/w/:ws/tokens/revoke" => ui::access::revoke_token.boxed(),
        "/account/password" => ui::account::change_password.boxed(),
        "/account/sessions/end" => ui::account::end_session.boxed(),
        "/account/mfa/start" => ui::account::mfa_start.boxed(),
        "/account/mfa/confirm" => ui::account::mfa_confirm.boxed(),
        "/account/mfa/remove" => ui::account::mfa_remove.boxed(),
        "/account/passkeys/remove" => ui::account::passkey_remove.boxed(),
        "/w/:ws/mfa-policy" => ui::access::set_mfa_policy.boxed(),
        "/platform/workspaces" => ui::platform::create_workspace.boxed(),
        "/platform/workspaces/:ws/suspend" => ui::platform::suspend.boxed(),
        "/platform/workspaces/:ws/resume" => ui::platform::resume.boxed(),
        "/platform/workspaces/:ws/impersonate" => ui::platform::impersonate.boxed(),
        "/platform/impersonation/end" => ui::platform::end_impersonation.boxed(),
        "/w/:ws/invitations" => ui::access::invite.boxed(),
        "/w/:ws/invitations/revoke" => ui::access::revoke_invitation.boxed(),
        "/invite/:token" => ui::invite::accept.boxed(),
        "/login/magic" => ui::magic::request_link.boxed(),
        "/magic/:token" => ui::magic::redeem.boxed(),
        "/reset" => ui::magic::request_reset.boxed(),
        "/reset/:token" => ui::magic::reset.boxed(),
        "/w/:ws/privacy/export" => ui::privacy::start_export.boxed(),
        "/w/:ws/privacy/subjects" => ui::privacy::find_subject.boxed(),
        "/w/:ws/privacy/subjects/export" => ui::privacy::export_subject.boxed(),
        "/w/:ws/privacy/subjects/anonymise" => ui::privacy::anonymise_subject.boxed(),
        "/w/:ws/deletion" => ui::lifecycle::schedule_deletion.boxed(),
        "/w/:ws/deletion/cancel" => ui::lifecycle::cancel_deletion.boxed(),
        "/w/:ws/incidents/ack" => ui::notices::acknowledge.boxed(),
        "/w/:ws/keys/rotate" => ui::keys::rotate_key.boxed(),
        "/account/deletion" => ui::lifecycle::schedule_account_deletion.boxed(),
        "/account/deletion/cancel" => ui::lifecycle::cancel_account_deletion.boxed(),
        "/w/:ws/integrations/secrets" => ui::integrations::create_secret.boxed(),
        "/w/:ws/integrations/secrets/rotate" => ui::integrations::rotate_secret.boxed(),
        "/w/:ws/integrations/secrets/delete" => ui::integrations::delete_secret.boxed(),
        "/w/:ws/integrations/webhooks" => ui::integrations::create_webhook.boxed(),
        "/w/:ws/integrations/webhooks/rotate" => ui::integrations::rotate_webhook.boxed(),
        "/w/:ws/integrations/webhooks/delete" => ui::integrations::delete_webhook.boxed(),
        "/w/:ws/integrations/webhooks/redeliver" => ui::integrations::redeliver.boxed(),
        "/w/:ws/integrations/inbound" => ui::integrations::create_inbound.boxed(),
        "/w/:ws/integrations/inbound/delete" => ui::integrations::delete_inbound.boxed(),
        _ => return None,
    })
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
        .at("/trust/incidents/:id", get(ui::notices::incident_page))
        .at(
            "/.well-known/security.txt",
            get(crate::ops::trust::security_txt),
        )
        .nest("/api/v1", api)
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
        .at("/w/:ws/members", get(ui::access::members_page))
        .at("/account", get(ui::account::account_page))
        .at("/w/:ws/audit", get(ui::audit::workspace_audit))
        .at("/w/:ws/audit/:seq", get(ui::audit::workspace_entry))
        .at("/platform/audit", get(ui::audit::platform_audit))
        .at("/platform/audit/:seq", get(ui::audit::platform_entry))
        .at("/platform/backups", get(ui::backups::page))
        .at("/w/:ws/privacy", get(ui::privacy::privacy_page))
        .at("/w/:ws/privacy/exports/:id", get(ui::privacy::export_page))
        .at("/assets/*path", get(assets::serve))
        .at("/w/:ws/settings", get(ui::lifecycle::settings_page))
        .at("/w/:ws/integrations", get(ui::integrations::page))
        .at("/hooks/:ws/:integration", post(hooks::receive));
    for path in UI_FORM_ROUTES {
        let Some(ep) = ui_form(path) else { continue };
        // A few form routes also have a page at the same address.
        route = match *path {
            "/login" => route.at(*path, get(ui::pages::login_form).post(ep)),
            "/w/:ws/c/:coll/schema" => route.at(*path, get(ui::schema::schema_page).post(ep)),
            "/w/:ws/c/:coll/r/:rec" => route.at(*path, get(ui::record_form::record_page).post(ep)),
            "/invite/:token" => route.at(*path, get(ui::invite::invite_page).post(ep)),
            "/magic/:token" => route.at(*path, get(ui::magic::link_page).post(ep)),
            "/reset" => route.at(*path, get(ui::magic::forgot_page).post(ep)),
            "/reset/:token" => route.at(*path, get(ui::magic::reset_page).post(ep)),
            "/w/:ws/teams" => route.at(*path, get(ui::teams::teams_page).post(ep)),
            "/platform/workspaces" => route.at(*path, get(ui::platform::workspaces_page).post(ep)),
            _ => route.at(*path, post(ep)),
        };
    }
    // The fence is outermost: a server that may not write refuses every
    // write before authentication, CSRF or rate limits look at it.
    route
        .around(middleware::envelope)
        .around(fence::gate)
        .data(state)
}
