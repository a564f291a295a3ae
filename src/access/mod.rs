//! Access: who the caller is (`Principal`), what role they hold in a workspace,
//! and the only way to reach a workspace's data: a `Grant`, which this module
//! alone can mint, from a verified membership or the narrow system handle.

mod admission;
pub mod enter;
pub mod op;
pub mod permissions;
pub mod role;
pub mod scim;
pub mod system;

pub use crate::store::sso::SsoMark;
pub use role::{Role, TeamPlace};
pub use system::SystemTask;

use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::store::control::Control;

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: UserId,
    pub platform_admin: bool,
    pub via: Via,
    /// A platform admin's live, recorded impersonation (browser sessions only).
    pub impersonating: Option<crate::store::platform::Impersonation>,
    /// control.db's change signal as the session check saw it (see
    /// `store::cache`): the membership gate of the same request is checked
    /// against it too, so a request reads it once.
    pub control_version: Option<i64>,
}

impl Principal {
    /// Whether this credential may manage the account itself (its sign-ins,
    /// second factors, passkeys, password, deletion): a browser session or
    /// an access JWT from `/auth/token` may; a workspace API token, which
    /// stands for one workspace only, may not.
    pub fn manages_account(&self) -> Result<()> {
        match self.via {
            Via::ApiToken { .. } => Err(Error::AccountNeedsSignIn),
            Via::Session { .. } | Via::Access { .. } => Ok(()),
        }
    }
}

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// A browser session; the SHA-256 of its cookie token, and the
    /// workspace it signed in to through single sign-on, if it did.
    Session { hash: Vec<u8>, sso: Option<SsoMark> },
    /// An access JWT from `/auth/token`, under a refresh-token family.
    Access { family: String },
    /// An `aura_` API token: one workspace, at most `scope`, until
    /// `expires_at` (if it expires).
    ApiToken {
        id: String,
        workspace: WorkspaceId,
        scope: Role,
        expires_at: Option<i64>,
    },
}

/// Permission to open one workspace's database. Its fields are private to this
/// module, so no other code can fabricate one; `store::tenant::TenantPool` only
/// opens a workspace for a `Grant`.
#[derive(Clone, Debug)]
pub struct Grant {
    workspace: WorkspaceId,
    holder: GrantHolder,
    /// The workspace is read-only for this holder (being deleted or moved):
    /// its `TenantDb` refuses writes. The system handle is never frozen.
    frozen: Option<Frozen>,
    /// The scope of the API token the request came with: no role the
    /// request reaches (workspace, team, collection) goes above it.
    cap: Option<Role>,
    /// When the credential behind this grant stops working (an expiring API
    /// token): nothing it creates may outlive it.
    until: Option<i64>,
}

pub use crate::store::lifecycle::Kind as Frozen;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantHolder {
    Member {
        user: UserId,
        role: Role,
    },
    /// Platform staff in a recorded impersonation; the reason goes with every
    /// audit entry they cause.
    Staff {
        user: UserId,
        role: Role,
        reason: String,
    },
    /// Cross-tenant code (operator CLI, workspace creation, later backups and
    /// retention). Always names why, and the reason goes to the audit entry.
    System {
        task: SystemTask,
    },
    /// The workspace's SCIM bearer token (its id): the identity provider
    /// managing members and teams through the SCIM routes, and nothing else.
    Scim {
        token: String,
    },
}

impl Grant {
    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    pub fn holder(&self) -> &GrantHolder {
        &self.holder
    }

    pub fn frozen(&self) -> Option<Frozen> {
        self.frozen
    }

    pub fn role(&self) -> Option<Role> {
        match &self.holder {
            GrantHolder::Member { role, .. } | GrantHolder::Staff { role, .. } => Some(*role),
            GrantHolder::System { .. } | GrantHolder::Scim { .. } => None,
        }
    }

    /// The token scope every role of this request stays within.
    pub fn cap(&self) -> Option<Role> {
        self.cap
    }

    /// When the credential of this request expires, if it does.
    pub fn until(&self) -> Option<i64> {
        self.until
    }

    /// The role this request acts with where a team place applies (see
    /// `role::effective`); `None` for the system handle.
    pub fn role_with(&self, place: Option<TeamPlace>) -> Option<Role> {
        self.role().map(|r| role::effective(r, place, self.cap))
    }

    /// Platform staff inside an impersonation.
    pub fn impersonating(&self) -> bool {
        matches!(self.holder, GrantHolder::Staff { .. })
    }

    /// The system handle, private to `access`: other code names a
    /// `SystemTask` (`system.rs`), the closed list of cross-tenant doors.
    fn system(workspace: WorkspaceId, task: SystemTask) -> Self {
        Self {
            workspace,
            holder: GrantHolder::System { task },
            frozen: None,
            cap: None,
            until: None,
        }
    }
}

/// Verifies membership, checked on every request (through a cache that any
/// change to control.db empties) so a role change or a removal takes effect
/// on the very next one. Not a member, a suspended workspace and a missing
/// workspace all answer the same `NotFound`.
pub async fn grant_for(control: &Control, who: &Principal, ws: WorkspaceId) -> Result<Grant> {
    let user = who.user_id;
    // An API token reaches its own workspace only, and never above its scope.
    let (cap, until) = match &who.via {
        Via::ApiToken {
            workspace,
            scope,
            expires_at,
            ..
        } => {
            if *workspace != ws {
                return Err(Error::NotFound("workspace"));
            }
            (Some(*scope), *expires_at)
        }
        _ => (None, None),
    };
    // Cached while control.db is unchanged (`store::cache`): a role change,
    // a removal, a suspension or a new MFA policy still applies on the very
    // next request.
    let version = match who.control_version {
        Some(v) => v,
        None => control.cache.version()?,
    };
    let gate = match control.cache.gate(ws, user) {
        Some(g) => g,
        None => {
            let g = control
                .db
                .read_async(move |c| crate::store::mfa::membership_gate(c, ws, user))
                .await?;
            control.cache.put_gate(version, ws, user, g.clone());
            g
        }
    };
    // A workspace that requires single sign-on takes its people only
    // through its provider: a password or magic-link session, an access
    // token from a password sign-in and a person's API token are refused
    // (service accounts and the break-glass owner are exempt in the gate).
    let sso = match &who.via {
        Via::Session { sso, .. } => sso.filter(|m| m.workspace == ws),
        _ => None,
    };
    if gate.as_ref().is_some_and(|g| g.needs_sso) && sso.is_none() {
        return Err(Error::SsoRequired);
    }
    // A workspace that requires a second factor shuts out people without
    // one (service accounts act through tokens and are exempt), unless they
    // signed in through its provider with a second factor the operator trusts.
    if gate.as_ref().is_some_and(|g| g.needs_mfa) && !sso.is_some_and(|m| m.mfa) {
        return Err(Error::MfaEnrolmentRequired);
    }
    match gate {
        Some(g) => Ok(Grant {
            workspace: ws,
            holder: GrantHolder::Member {
                user,
                role: role::effective(g.role, None, cap),
            },
            frozen: g.frozen,
            cap,
            until,
        }),
        None => match &who.impersonating {
            // Staff without a membership, inside a recorded impersonation of
            // exactly this workspace.
            Some(i) if i.workspace_id == ws && who.platform_admin => {
                let (frozen, needs_mfa) = control
                    .db
                    .read_async(move |c| {
                        let frozen = crate::store::lifecycle::get(c, ws)?.map(|l| l.kind);
                        let needs_mfa = crate::store::mfa::require_mfa(c, ws)?
                            && !crate::store::mfa::has_second_factor(c, user)?;
                        Ok((frozen, needs_mfa))
                    })
                    .await?;
                // Staff are held to the workspace's two-factor policy like
                // its members.
                if needs_mfa {
                    return Err(Error::MfaEnrolmentRequired);
                }
                Ok(Grant {
                    workspace: ws,
                    holder: GrantHolder::Staff {
                        user,
                        role: i.role,
                        reason: i.reason.clone(),
                    },
                    frozen,
                    cap: None,
                    until: None,
                })
            }
            _ => Err(Error::NotFound("workspace")),
        },
    }
}
