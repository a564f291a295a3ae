//! `aura doctor`: every check prints `ok` or `FAIL` with what to do; the exit
//! code is non-zero if any check failed.

use std::process::ExitCode;

use super::{Global, load_config};
use crate::crypto::master_source;
use crate::error::Result;
use crate::store::{Db, DbOptions, migrations};

pub struct Report {
    failed: bool,
}

impl Report {
    pub fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("ok    {what:<12} {detail}");
    }

    /// Worth the operator's attention, but nothing is broken: exit code 0.
    pub fn warn(&self, what: &str, detail: impl std::fmt::Display) {
        println!("WARN  {what:<12} {detail}");
    }

    pub fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed = true;
        println!("FAIL  {what:<12} {detail}");
    }
}

fn now_unix() -> i64 {
    use crate::clock::Clock;
    crate::clock::SystemClock::with_offset(0).unix()
}

pub async fn run(g: &Global) -> Result<ExitCode> {
    crate::telemetry::init_cli();
    let mut r = Report { failed: false };
    let cfg = match load_config(g) {
        Ok(c) => {
            let src = c
                .source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in defaults".into());
            r.ok("config", src);
            c
        }
        Err(e) => {
            r.fail("config", e);
            return Ok(ExitCode::FAILURE);
        }
    };

    let master = match master_source::load(&cfg) {
        Ok((k, origin)) => {
            if origin.is_dev() {
                r.ok(
                    "key",
                    format!("{} — DEV KEY, not for real data", origin.describe()),
                );
            } else {
                r.ok("key", format!("{} (permissions ok)", origin.describe()));
            }
            Some(k)
        }
        Err(e) => {
            r.fail("key", e);
            None
        }
    };

    let probe = cfg.data_dir.join(format!(".doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"probe").and_then(|_| std::fs::remove_file(&probe)) {
        Ok(()) => r.ok(
            "data dir",
            format!("{} is writable", cfg.data_dir.display()),
        ),
        Err(e) => r.fail(
            "data dir",
            format!("{} is not writable: {e}", cfg.data_dir.display()),
        ),
    }

    let opts = DbOptions::from_config(&cfg.file.storage);
    let path = cfg.control_db_path();
    match Db::open_existing(&path, opts).and_then(|db| db.read(migrations::current_version)) {
        Ok(v) if v == migrations::latest(migrations::CONTROL) => {
            r.ok("schema", format!("control.db at version {v}"))
        }
        Ok(v) => r.fail(
            "schema",
            format!(
                "control.db at version {v}, this binary expects {}; start `aura serve` once to migrate",
                migrations::latest(migrations::CONTROL)
            ),
        ),
        Err(e) => r.fail("schema", e),
    }

    if let Some(master) = master {
        match crate::store::control::Control::open(&path, opts, master) {
            Ok(control) => {
                r.ok("key check", "the master key opens control.db");
                match control.db.read(crate::store::master_rotation::info) {
                    Ok(i) if i.pending_file.is_some() => {
                        r.fail("master key", super::keys::describe(&i, now_unix()))
                    }
                    Ok(i) => r.ok("master key", super::keys::describe(&i, now_unix())),
                    Err(e) => r.fail("master key", e),
                }
                super::doctor_ops::check_certificate(&cfg, &control.keys, &mut r);
            }
            Err(e) => r.fail("key check", e),
        }
    }

    super::doctor_ops::check(&cfg, &mut r);
    super::doctor_ops::check_subprocessor_notice(&cfg, &r);
    super::doctor_tls::check(&cfg, &mut r).await;

    if r.failed {
        println!("\nSome checks failed; fix the FAIL lines above and run `aura doctor` again.");
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}
