//! `aura init`: the first thing an operator runs. Idempotent: it never replaces
//! an existing config, key or database.
//!
//! `aura init --dev` writes nothing outside the dev data dir (no config file,
//! nothing under /etc/aura): it creates the data dir, its dev key inside it
//! and control.db, which is what `aura serve --dev` does by itself anyway.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Global, overrides};
use crate::config::{self, DEFAULT_CONFIG_PATH, DOCUMENTED_DEFAULTS};
use crate::crypto::master_source;
use crate::error::{Error, Result};
use crate::store::DbOptions;
use crate::store::control::Control;

pub async fn run(g: &Global) -> Result<ExitCode> {
    crate::telemetry::init_cli();
    if g.dev {
        return run_dev(g);
    }
    let config_path = g
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    // What the file should say: the defaults, with the data dir and key path the
    // operator chose through flags or the environment.
    let pre = config::load(&config::Overrides {
        config_path: config_path.exists().then(|| config_path.clone()),
        ..overrides(g, None)
    })?;
    if config_path.exists() {
        println!("config      {} (kept)", config_path.display());
    } else {
        write_config(&config_path, &pre.data_dir, &pre.file.master_key_file)?;
        println!("config      {} (written)", config_path.display());
    }
    let cfg = config::load(&config::Overrides {
        config_path: Some(config_path.clone()),
        ..overrides(g, None)
    })?;

    let key_path = cfg.file.master_key_file.clone();
    if key_path.starts_with(&cfg.data_dir) {
        eprintln!(
            "warning: the master key {} is inside the data dir; backups of the data dir would carry their own key",
            key_path.display()
        );
    }
    if key_path.exists() {
        master_source::check_mode(&key_path)?;
        println!("master key  {} (kept)", key_path.display());
    } else {
        if let Some(parent) = key_path.parent() {
            crate::store::create_private_dir(parent)?;
        }
        master_source::create_key_file(&key_path)?;
        println!("master key  {} (created, mode 0600)", key_path.display());
    }
    let master = master_source::read_key_file(&key_path)?;

    crate::store::create_private_dir(&cfg.data_dir)?;
    crate::store::create_private_dir(&cfg.tenants_dir())?;
    let db_path = cfg.control_db_path();
    let opts = DbOptions::from_config(&cfg.file.storage);
    if db_path.exists() {
        Control::open(&db_path, opts, master)?;
        println!("control.db  {} (kept; the key matches)", db_path.display());
    } else {
        Control::initialize(&db_path, opts, master)?;
        println!("control.db  {} (created)", db_path.display());
    }
    let c = config_path.display();
    println!();
    println!("Next steps:");
    println!(
        "  1. Back up {} somewhere safe and offline. Without it the data cannot be read.",
        key_path.display()
    );
    println!("  2. Review {c} (listen address, public_url, region).");
    println!("  3. Create the first account:");
    println!(
        "       aura --config {c} user create --email you@example.com --platform-admin --password-stdin"
    );
    println!("  4. Create a workspace:");
    println!(
        "       aura --config {c} workspace create --name \"My company\" --owner you@example.com"
    );
    println!("  5. Start the service: systemctl enable --now aura   (or: aura --config {c} serve)");
    println!("  6. Check everything:  aura --config {c} doctor");
    Ok(ExitCode::SUCCESS)
}

/// `init --dev`: the dev data dir alone. Dev mode keeps its key inside its
/// data dir and reads no default config, so nothing here touches a path
/// outside the data dir.
fn run_dev(g: &Global) -> Result<ExitCode> {
    let cfg = config::load(&overrides(g, None))?;
    crate::store::create_private_dir(&cfg.data_dir)?;
    crate::store::create_private_dir(&cfg.tenants_dir())?;
    let (master, origin) = master_source::load(&cfg)?;
    if origin.is_dev() {
        eprintln!("{}", master_source::DEV_WARNING);
    }
    println!("master key  {}", origin.describe());
    let db_path = cfg.control_db_path();
    let opts = DbOptions::from_config(&cfg.file.storage);
    if db_path.exists() {
        Control::open(&db_path, opts, master)?;
        println!("control.db  {} (kept; the key matches)", db_path.display());
    } else {
        Control::initialize(&db_path, opts, master)?;
        println!("control.db  {} (created)", db_path.display());
    }
    println!();
    println!("Dev mode writes nothing outside its data dir: no config file, no key in /etc/aura.");
    println!(
        "`aura serve --dev` needs no init (it creates the dev data dir itself); start it with:"
    );
    println!("  aura serve --dev --data-dir {}", cfg.data_dir.display());
    Ok(ExitCode::SUCCESS)
}

fn write_config(path: &Path, data_dir: &Path, key_file: &Path) -> Result<()> {
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let text = DOCUMENTED_DEFAULTS
        .replace(
            "data_dir = \"/var/lib/aura\"",
            &format!("data_dir = {}", quote(data_dir)),
        )
        .replace(
            "master_key_file = \"/etc/aura/master.key\"",
            &format!("master_key_file = {}", quote(key_file)),
        );
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Config(format!("cannot create {}: {e}", parent.display())))?;
        }
    }
    std::fs::write(path, text)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}
