//! The system doors: every way code reaches a workspace's data without a
//! person's membership, in one closed list. `Grant::system` is private to
//! `access`; everything else names one of these tasks, so a new cross-tenant
//! door is a new variant here, read in review, and `scripts/check-layers`
//! refuses a `Grant::system` anywhere else.

use super::Grant;
use crate::ids::WorkspaceId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemTask {
    /// Creating a workspace (its first owner and settings).
    WorkspaceCreation,
    /// The operator adding a member from the CLI.
    OperatorAddsMember,
    /// `serve --dev` seeding its demo workspace.
    DevSeed,
    /// Backups read every workspace.
    Backup,
    /// Restoring one workspace in place.
    Restore,
    /// A workspace leaving this appliance, arriving, or a move cancelled.
    MoveOut,
    MoveIn,
    MoveCancel,
    /// The scheduled re-sealing under a new data key.
    KeyRotation,
    /// Webhook deliveries and inbound webhook events.
    IntegrationsWorker,
    InboundWebhook,
    /// The end of an account's grace period: its memberships go.
    AccountDeletion,
    /// The operator's workspace export (`aura export`).
    WorkspaceExport,
    /// Audit chain upkeep: checkpoints, verification, retention, export and
    /// the status and metrics that read chain tips.
    AuditCheckpoint,
    AuditVerification,
    AuditRetention,
    AuditExport,
    AuditStatus,
    Metrics,
    /// Writing an audit entry into a workspace's chain for a change kept in
    /// control.db (an accepted invitation, a deletion scheduled or
    /// cancelled, an incident, a platform action or impersonation).
    RecordInvitation,
    RecordDeletion,
    RecordIncident,
    RecordPlatformAction,
    RecordImpersonation,
    /// Single sign-on recording its sign-ins, refusals and provisioning in
    /// the workspace's chain, and applying its team mapping.
    SsoSignIn,
    /// A warm standby applying the replica to its local copy.
    StandbyFollow,
    /// The scheduled purge of data past its retention window.
    RetentionPurge,
    /// At start, removing sealed files no row names and uploads cut short.
    FileSweep,
    /// `benches/`: measuring a workspace's search outside a server.
    Benchmark,
}

impl SystemTask {
    /// Why the door was opened, in words.
    pub fn reason(self) -> &'static str {
        match self {
            SystemTask::WorkspaceCreation => "workspace creation",
            SystemTask::OperatorAddsMember => "operator adds a member",
            SystemTask::DevSeed => "dev demo data",
            SystemTask::Backup => "backup",
            SystemTask::Restore => "restore one workspace",
            SystemTask::StandbyFollow => "follow the replica as a standby",
            SystemTask::MoveOut => "moving a workspace out",
            SystemTask::MoveIn => "moving a workspace in",
            SystemTask::MoveCancel => "cancelling a move",
            SystemTask::KeyRotation => "data key rotation",
            SystemTask::IntegrationsWorker => "integrations worker",
            SystemTask::InboundWebhook => "inbound webhook",
            SystemTask::AccountDeletion => "account deletion",
            SystemTask::WorkspaceExport => "workspace export",
            SystemTask::AuditCheckpoint => "audit checkpoint",
            SystemTask::AuditVerification => "audit verification",
            SystemTask::AuditRetention => "audit retention",
            SystemTask::AuditExport => "audit export",
            SystemTask::AuditStatus => "audit status",
            SystemTask::Metrics => "metrics",
            SystemTask::RecordInvitation => "recording an accepted invitation",
            SystemTask::RecordDeletion => "recording a deletion",
            SystemTask::RecordIncident => "recording an incident",
            SystemTask::RecordPlatformAction => "platform workspace state change",
            SystemTask::RecordImpersonation => "recording an impersonation",
            SystemTask::SsoSignIn => "single sign-on",
            SystemTask::RetentionPurge => "retention purge",
            SystemTask::FileSweep => "sweep of orphaned files",
            SystemTask::Benchmark => "benchmark",
        }
    }

    /// The system grant for this task on one workspace.
    pub fn grant(self, workspace: WorkspaceId) -> Grant {
        Grant::system(workspace, self)
    }
}
