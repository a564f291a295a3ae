//! The operator's command line. Every command takes `--config` and `--data-dir`
//! (also `AURA_CONFIG`, `AURA_DATA_DIR`) and works beside a running server.

mod admin;
mod audit;
mod backup;
mod doctor;
mod doctor_ops;
mod doctor_tls;
mod export;
mod incident;
mod init;
mod keys;
mod lifecycle;
mod replica;
mod serve;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::app::AppState;
use crate::clock::{SystemClock, test_clock_offset};
use crate::config::{self, Config, Overrides};
use crate::crypto::master_source::{self, DEV_WARNING};
use crate::error::Result;

#[derive(Parser, Debug)]
#[command(
    name = "aura",
    version = crate::VERSION,
    about = "Aura: a self-hosted workspace appliance that proves its security promises"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Config file (default /etc/aura/aura.toml if it exists).
    #[arg(long, global = true, env = "AURA_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config's data_dir).
    #[arg(long, global = true, env = "AURA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Dev mode: no config read unless --config names one, data in ./aura-dev,
    /// dev master key kept there; nothing is written outside the data dir.
    #[arg(long, global = true)]
    pub dev: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a default config, create the master key, the data dir and control.db.
    Init,
    /// Run the appliance.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long, env = "AURA_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
        /// Warm standby: follow `replication.url`, serve reads, answer
        /// writes 503 until `aura replica promote` makes this the primary.
        #[arg(long)]
        standby: bool,
    },
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Encrypted backups and restore drills.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Restore a backup (`--from`) or the replica at an instant (`--at`)
    /// into a new data dir, or one workspace in place.
    Restore {
        /// The backup id (see `aura backup list`).
        #[arg(long, required_unless_present = "at", conflicts_with = "at")]
        from: Option<String>,
        /// Point-in-time recovery from the replica: an RFC 3339 instant
        /// (2026-12-04T10:15:00Z) or `latest`.
        #[arg(long)]
        at: Option<String>,
        /// The new data dir.
        #[arg(long)]
        to: Option<PathBuf>,
        /// Restore one workspace in place, beside a running server.
        #[arg(long)]
        workspace: Option<String>,
        /// The age identity file.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// The continuous replica: status.
    #[command(subcommand)]
    Replica(replica::ReplicaCommand),
    /// Verify, export and maintain the audit chains.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Declare, update and resolve incidents: owners are notified.
    #[command(subcommand)]
    Incident(incident::IncidentCommand),
    /// Check a saved /trust.json offline: its signature and (with --key) its origin.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Rotate the master key or a workspace's data key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check the config, key, data dir and schema; non-zero exit on any FAIL.
    Doctor,
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account; the password is read from stdin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Give this account access to the platform area.
        #[arg(long)]
        platform_admin: bool,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account: every session and API sign-in ends at once and its
    /// API tokens stop working.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Re-enable a disabled account (it signs in afresh).
    Enable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// Create a workspace owned by an existing account; prints its id.
    Create {
        #[arg(long)]
        name: String,
        /// Email of the owner (must already have an account).
        #[arg(long)]
        owner: String,
        /// Region label, e.g. EU or IN (default: the appliance's region).
        #[arg(long)]
        region: Option<String>,
    },
    /// List workspaces.
    List,
    /// Add an existing account to a workspace with a role.
    AddMember {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        email: String,
        /// owner, admin, manager, member or viewer.
        #[arg(long)]
        role: String,
    },
    /// Export the whole workspace as one archive (.tar.zst; .age with --recipient).
    Export {
        /// The workspace id (see `aura workspace list`).
        workspace: String,
        /// The archive to write (must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Encrypt the archive to this age recipient (age1...).
        #[arg(long)]
        recipient: Option<String>,
    },
    /// Carry out the deletions that are due now: destroy the keys of
    /// workspaces past their grace period (crypto-shredding) and delete the
    /// accounts past theirs. The server also does this on its own.
    PurgeDue,
    /// Write a workspace's sealed bundle for another appliance; the workspace
    /// turns read-only here until `move-confirm` or `move-cancel`.
    MoveOut {
        /// The workspace id.
        workspace: String,
        /// The target appliance's age recipient (age1...).
        #[arg(long)]
        to_recipient: String,
        /// Where to write the bundle (default: ./aura-move-<id>.age).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The target appliance's region (its /trust.json shows it); required
        /// when `residency` or the workspace's region is set, and carried in
        /// the bundle.
        #[arg(long)]
        target_region: Option<String>,
        /// Move to a region other than the workspace's anyway, for this
        /// reason (recorded in the audit log here and on the target).
        #[arg(long, value_name = "REASON")]
        allow_cross_region: Option<String>,
    },
    /// Import a bundle from `move-out`, with its data and audit chain.
    MoveIn {
        /// The bundle file.
        bundle: PathBuf,
        /// This appliance's age identity (the recipient's secret half); `-`
        /// reads it from stdin.
        #[arg(long)]
        identity: PathBuf,
        /// The source appliance's audit public key (64 hex characters), as
        /// `move-out` printed it there or its /trust.json shows it
        /// (`document.audit.public_key`). The bundle's checkpoints must verify against
        /// it: age does not authenticate who wrote a bundle.
        #[arg(long)]
        source_key: String,
        /// Import a bundle made for another region, or a workspace from
        /// another region that the source did not allow, for this reason
        /// (recorded in the audit log).
        #[arg(long, value_name = "REASON")]
        allow_cross_region: Option<String>,
    },
    /// After the target imported it: shred the moved workspace here.
    MoveConfirm {
        /// The workspace id.
        workspace: String,
    },
    /// Call a move off: the workspace is writable here again.
    MoveCancel {
        /// The workspace id.
        workspace: String,
    },
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let g = cli.global;
    match cli.command {
        Command::Version => {
            println!("aura {} {}", crate::VERSION, std::env::consts::ARCH);
            Ok(ExitCode::SUCCESS)
        }
        Command::Init => init::run(&g).await,
        Command::Serve { listen, standby } => serve::run(&g, listen, standby).await,
        Command::Doctor => doctor::run(&g).await,
        Command::User(cmd) => {
            crate::telemetry::init_cli();
            admin::user(&g, cmd).await
        }
        Command::Backup(cmd) => {
            crate::telemetry::init_cli();
            backup::run(&g, cmd).await
        }
        Command::Restore {
            from,
            at,
            to,
            workspace,
            identity,
        } => {
            crate::telemetry::init_cli();
            match (at, from) {
                (Some(at), _) => replica::restore(&g, &at, to, workspace, identity).await,
                (None, Some(from)) => backup::restore(&g, from, to, workspace, identity).await,
                (None, None) => Err(crate::error::Error::Usage(
                    "give --from BACKUP or --at TIME|latest".into(),
                )),
            }
        }
        Command::Replica(cmd) => {
            crate::telemetry::init_cli();
            replica::run(&g, cmd).await
        }
        Command::Audit(cmd) => {
            crate::telemetry::init_cli();
            audit::run(&g, cmd).await
        }
        Command::Keys(cmd) => keys::run(&g, cmd).await,
        Command::Trust(cmd) => trust::run(cmd),
        Command::Workspace(cmd) => {
            crate::telemetry::init_cli();
            admin::workspace(&g, cmd).await
        }
        Command::Incident(cmd) => {
            crate::telemetry::init_cli();
            incident::run(&g, cmd).await
        }
    }
}

pub(crate) fn overrides(g: &Global, listen: Option<String>) -> Overrides {
    Overrides {
        config_path: g.config.clone(),
        data_dir: g.data_dir.clone(),
        listen,
        dev: g.dev,
    }
}

/// Loads config and key and opens the state, as every command but `init` does.
pub(crate) fn open_state(g: &Global, cfg: Config, create: bool) -> Result<Arc<AppState>> {
    let (master, origin) = master_source::load(&cfg)?;
    if origin.is_dev() {
        eprintln!("{DEV_WARNING}");
        tracing::warn!(source = %origin.describe(), "using a dev master key");
    }
    let requested = std::env::var("AURA_TEST_CLOCK_OFFSET").ok();
    let offset = test_clock_offset(requested.as_deref(), g.dev || cfg!(debug_assertions));
    if requested.is_some() && offset == 0 {
        tracing::warn!(
            "AURA_TEST_CLOCK_OFFSET ignored: only dev mode and debug builds move the clock"
        );
    }
    let clock = Arc::new(SystemClock::with_offset(offset));
    Ok(Arc::new(AppState::open(cfg, master, clock, create)?))
}

pub(crate) fn load_config(g: &Global) -> Result<Config> {
    config::load(&overrides(g, None))
}

/// A `--workspace` argument, or an error that says where to find ids.
pub(crate) fn workspace_arg(ws: &str) -> Result<crate::ids::WorkspaceId> {
    ws.parse().map_err(|_| {
        crate::error::Error::Usage(format!(
            "--workspace: `{ws}` is not a workspace id; see `aura workspace list`"
        ))
    })
}
