//! `aura serve`: open storage, bind, print how to sign in (dev), serve.

use std::process::ExitCode;

use super::{Global, open_state, overrides};
use crate::config;
use crate::error::Result;

pub async fn run(g: &Global, listen: Option<String>) -> Result<ExitCode> {
    let mut cfg = config::load(&overrides(g, listen))?;
    crate::telemetry::init(&cfg.file.log);
    let (listener, addr) = crate::app::bind(&cfg).await?;
    if cfg.file.public_url.is_empty() {
        cfg.public_url = format!("http://{addr}");
    }
    let dev = cfg.dev;
    let url = cfg.public_url.clone();
    let state = open_state(g, cfg, dev)?;
    if dev {
        let demo = crate::ops::dev::bootstrap(&state).await?;
        println!();
        println!(
            "  Aura {} is running in DEV mode.",
            env!("CARGO_PKG_VERSION")
        );
        println!("  Sign in at  {url}/login");
        println!("  Email       {}", demo.email);
        println!("  Password    {}", demo.password);
        println!("  Data dir    {}", state.config.data_dir.display());
        println!();
    }
    tracing::info!(addr = %addr, url = %url, "listening");
    crate::app::serve(state, listener).await?;
    Ok(ExitCode::SUCCESS)
}
