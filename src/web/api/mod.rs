//! The JSON API under `/api/v1`, one file per resource, described by the
//! OpenAPI document at `/api/openapi.json`.

pub mod access;
pub mod audit;
pub mod auth;
pub mod body;
pub mod body_stream;
pub mod collections;
pub mod exports;
pub mod fields;
pub mod files;
pub mod integrations;
pub mod invitations;
pub mod keys;
pub mod lifecycle;
pub mod list;
pub mod me;
pub mod mfa;
pub mod passkeys;
pub mod platform;
pub mod platform_accounts;
pub mod records;
pub mod routes;
pub mod scim_token;
pub mod spec;
pub mod sso;
pub mod subjects;
pub mod teams;
pub mod webhooks;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApiService, Tags};

/// 204 No Content: the change is done.
#[derive(ApiResponse)]
pub enum Done {
    #[oai(status = 204)]
    Done,
}

/// 201 Created, with the new thing.
#[derive(ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON> {
    #[oai(status = 201)]
    Created(Json<T>),
}

#[derive(Tags)]
pub enum ApiTags {
    /// Sign-in and sessions.
    Auth,
    /// The signed-in account.
    Me,
    /// The tamper-evident audit log.
    Audit,
    /// The platform area (operators).
    Platform,
    /// Collections and their records.
    Records,
    /// Members and teams of a workspace.
    Teams,
    /// Member roles, service accounts and API tokens.
    Access,
    /// Data-subject requests and workspace exports.
    Privacy,
    /// Integration secrets, outbound webhooks and inbound integrations.
    Integrations,
}

/// Every API, in the document's order. Two halves: tuples implement
/// `OpenApi` up to 16 members and `Default` up to 12.
pub type Apis = (
    (
        auth::AuthApi,
        me::MeApi,
        mfa::MfaApi,
        passkeys::PasskeysApi,
        audit::AuditApi,
        platform::PlatformApi,
        platform_accounts::PlatformAccountsApi,
        collections::CollectionsApi,
        records::RecordsApi,
    ),
    (
        teams::TeamsApi,
        access::AccessApi,
        invitations::InvitationsApi,
        subjects::SubjectsApi,
        exports::ExportsApi,
        lifecycle::LifecycleApi,
        keys::KeysApi,
        integrations::IntegrationsApi,
        webhooks::WebhooksApi,
        sso::SsoApi,
        scim_token::ScimTokenApi,
        files::FilesApi,
    ),
);

pub type ApiService = OpenApiService<Apis, ()>;

pub fn service(public_url: &str) -> ApiService {
    OpenApiService::new(Apis::default(), "Aura API", env!("CARGO_PKG_VERSION"))
        .server(format!("{public_url}/api/v1"))
}
