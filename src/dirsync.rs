//! "Create, then fsync the parent": a new file or directory survives a power
//! cut only once the directory entry naming it is on disk, and fsync of the
//! file itself does not write that entry (ext4, xfs). Every place that creates
//! something that must outlive a crash (the master key file, the data and
//! tenant directories, a new database, a placed backup or moved workspace,
//! the ACME cache) calls this right after creating it.

use std::path::Path;

/// Syncs the directory that holds `path` (the current directory for a bare
/// name). A file system that cannot sync a directory at all (EINVAL, as
/// some network and FUSE ones answer) is not an error: there is nothing more
/// to do there, as SQLite also decides for its own directory syncs.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::File::open(parent)?.sync_all() {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}
