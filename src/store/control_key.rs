//! The master key check control.db gets before anything may write to it:
//! an `immutable` read of the main file (no locks, no WAL, nothing created),
//! read again when another process's checkpoint tore it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::control::KEY_CHECK;
use super::handle::{Sql, TOKEN};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};

fn open_immutable(path: &Path) -> Result<Connection> {
    let uri = format!("file:{}?immutable=1", path.display());
    Ok(Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )?)
}

/// A master key rotation committed but its new key file has not yet replaced
/// the configured one (a crash, or a sealed credential still to renew): the
/// new key, from the file the rotation recorded, if it opens control.db.
pub(super) fn pending_master_key(conn: &dyn Sql) -> Result<Option<MasterKey>> {
    let conn = conn.conn(TOKEN);
    let Some(file) = super::master_rotation::pending_file_readonly(conn)? else {
        return Ok(None);
    };
    let Ok(key) = crate::crypto::master_source::read_key_file(&file) else {
        return Ok(None);
    };
    let check: Vec<u8> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [KEY_CHECK], |r| {
            r.get(0)
        })?;
    if key.verify_key_check(&check).is_err() {
        return Ok(None);
    }
    tracing::warn!(
        file = %file.display(),
        "the configured master key is the one a rotation replaced; started with the new key \
         from the rotation's key file: run `aura keys rotate-master --new-key-file` with that \
         file again to finish"
    );
    Ok(Some(key))
}

/// How often the check before opening reads the file again when it failed.
const IMMUTABLE_TRIES: u32 = 10;

/// The master key that opens control.db, checked before anything may write
/// to it: the configured one, or the new key of a rotation still pending.
///
/// The read is `immutable` (no locks, no WAL, no `-shm` created), so
/// another process checkpointing into the file at the same moment can make
/// it see a torn page: SQLITE_CORRUPT, or a key check that seems not to
/// match. Such a read is not an answer: it is tried again, and only a
/// failure that persists is reported (four `aura workspace create` at once
/// failed about one run in a thousand with "database disk image is
/// malformed" before).
pub(super) fn key_before_opening(path: &Path, master: MasterKey) -> Result<MasterKey> {
    let mut tries = 0;
    loop {
        let found = match verify_master_key_readonly(path, &master) {
            Ok(()) => return Ok(master),
            Err(e) => open_immutable(path)
                .and_then(|c| pending_master_key(&c))
                .and_then(|pending| pending.ok_or(e)),
        };
        tries += 1;
        if found.is_ok() || tries >= IMMUTABLE_TRIES {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn verify_master_key_readonly(path: &Path, master: &MasterKey) -> Result<()> {
    let conn = open_immutable(path)?;
    let check: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [KEY_CHECK], |r| {
            r.get(0)
        })
        .optional()?;
    let check = check.ok_or(Error::Crypto(
        "control.db has no key check; was it initialised?",
    ))?;
    master.verify_key_check(&check)
}
