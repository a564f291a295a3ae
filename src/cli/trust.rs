//! `aura trust verify FILE [--key KEY]`: checks a saved /trust.json offline.
//! Without `--key` it proves only that the file is intact (signed by the key
//! it carries); with the key the buyer pinned earlier it also proves origin.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::error::{Error, Result};
use crate::ops::trust_sign::{self, fingerprint, public_key_b64};

#[derive(Subcommand, Debug)]
pub enum TrustCommand {
    /// Check a saved /trust.json: its signature, and (with --key) that it
    /// came from the appliance whose key you pinned.
    Verify {
        /// The saved /trust.json (`-` for stdin).
        file: PathBuf,
        /// The public key you pinned: base64 (as /trust shows it), 64 hex
        /// characters (the audit public key), or a file holding either.
        #[arg(long, value_name = "BASE64_OR_FILE")]
        key: Option<String>,
    },
}

fn read(path: &Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))
}

/// A key given inline, or the path of a file that holds one.
fn pinned_key(arg: &str) -> Result<[u8; 32]> {
    if let Some(k) = trust_sign::parse_key(arg) {
        return Ok(k);
    }
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("--key: cannot read {}: {e}", path.display())))?;
        if let Some(k) = trust_sign::parse_key(&text) {
            return Ok(k);
        }
        return Err(Error::Usage(format!(
            "--key: {} does not hold an Ed25519 public key (base64 or 64 hex characters)",
            path.display()
        )));
    }
    Err(Error::Usage(
        "--key: not an Ed25519 public key (base64 or 64 hex characters) nor a file holding one"
            .into(),
    ))
}

pub fn run(cmd: TrustCommand) -> Result<ExitCode> {
    match cmd {
        TrustCommand::Verify { file, key } => {
            let pinned = key.as_deref().map(pinned_key).transpose()?;
            let text = read(&file)?;
            match trust_sign::verify(&text, pinned.as_ref()) {
                Ok(v) => {
                    let who = v
                        .organisation
                        .as_deref()
                        .unwrap_or("(no organisation named)");
                    let from = v.public_url.as_deref().unwrap_or("?");
                    let at = v.generated_at.as_deref().unwrap_or("?");
                    if v.pinned {
                        println!(
                            "OK: {} is signed by the pinned key {} ({who}, {from}, generated {at})",
                            file.display(),
                            fingerprint(&v.public_key)
                        );
                    } else {
                        println!(
                            "OK (integrity only): {} is intact and signed by the key it carries, {} ({who}, {from}, generated {at})",
                            file.display(),
                            fingerprint(&v.public_key)
                        );
                        eprintln!(
                            "This proves the file was not changed after it was signed, NOT who signed it: anyone can sign a file with their own key. Compare the fingerprint with one you obtained from the appliance by a channel you trust, and pin the key for next time:\n  aura trust verify {} --key {}",
                            file.display(),
                            public_key_b64(&v.public_key)
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    eprintln!("FAILED: {}: {why}", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
