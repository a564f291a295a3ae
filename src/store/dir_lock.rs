//! An advisory lock on the data dir: `aura serve` holds it shared for its
//! lifetime, so commands that must run alone (master key rotation, which
//! changes the key a running server holds in memory) can tell that a server
//! is running and refuse, instead of racing it.

use std::fs::File;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

pub struct DirLock(#[allow(dead_code)] Flock<File>);

/// The data dir itself is locked (flock on a directory), so taking the lock
/// creates no file: a server that then refuses to start (a wrong key, a
/// loose key file) leaves the data dir exactly as it was.
fn lock_file(data_dir: &Path) -> Result<File> {
    super::create_private_dir(data_dir)?;
    Ok(File::open(data_dir)?)
}

/// Held by a running server.
pub fn shared(data_dir: &Path) -> Result<DirLock> {
    Flock::lock(lock_file(data_dir)?, FlockArg::LockSharedNonblock)
        .map(DirLock)
        .map_err(|(_, e)| {
            Error::Config(format!(
                "{} is locked by a command that must run alone (a master key rotation?): {e}",
                data_dir.display()
            ))
        })
}

/// For a command that must run alone: refuses while a server runs.
pub fn exclusive(data_dir: &Path) -> Result<DirLock> {
    Flock::lock(lock_file(data_dir)?, FlockArg::LockExclusiveNonblock)
        .map(DirLock)
        .map_err(|_| {
            Error::Config(format!(
                "an Aura server is running on {}; stop it first (`systemctl stop aura`), then run \
                 this command again",
                data_dir.display()
            ))
        })
}
