//! The attached files of a workspace on the move: `move-out` copies the
//! sealed files its snapshot names into the bundle (listed with their
//! SHA-256); `move-in` checks that the bundle's files are exactly those its
//! database names, then places them in this appliance's storage (local or
//! the S3 bucket) before the database goes live. The files stay sealed all
//! the way: their keys are in the database, under the workspace's data keys,
//! which travel in the bundle as the database's do.

use std::path::Path;

use super::bundle::{File, Manifest};
use crate::error::Result;
use crate::store::Detached;
use crate::store::blobs::Blobs;
use crate::store::tenant::TenantDb;

/// Copies into `<scratch>/files/` the sealed files the snapshot `data`
/// names, and lists them.
pub fn gather(tenant: &TenantDb, data: &Path, scratch: &Path) -> Result<Vec<File>> {
    let ids =
        crate::store::files::snapshot_into(&Detached::read_only(data)?, &tenant.files(), scratch)?;
    ids.into_iter()
        .map(|id| {
            let p = crate::store::files::path(scratch, &id)
                .ok_or(crate::error::Error::NotFound("file"))?;
            Ok(File {
                sha256: crate::backup::target::sha256_file(&p)?,
                size: std::fs::metadata(&p)?.len(),
                id,
            })
        })
        .collect()
}

/// The bundle's files are exactly the ones its database names (a file
/// removed since the snapshot could be missing, but a workspace on the move
/// is read-only, so none is).
pub fn check_rows(data: &Detached, m: &Manifest) -> std::result::Result<(), String> {
    let named = crate::store::files::all_ids(data).map_err(|e| e.to_string())?;
    for f in &m.files {
        if !named.contains(&f.id) {
            return Err(format!("file {} is named by no row of its data.db", f.id));
        }
    }
    if let Some(missing) = named
        .iter()
        .find(|id| !m.files.iter().any(|f| &f.id == *id))
    {
        return Err(format!(
            "data.db names file {missing}, which the bundle lacks"
        ));
    }
    Ok(())
}

/// Places the unpacked files (beside `data`, in `files/`) in this
/// appliance's storage.
pub fn place(blobs: &Blobs, data: &Path, m: &Manifest) -> Result<usize> {
    if m.files.is_empty() {
        return Ok(0);
    }
    let from = data.parent().unwrap_or(Path::new("."));
    crate::store::files::restore_from(from, blobs)
}

/// Undoes a failed import: the workspace's directory, and its objects in a
/// bucket.
pub fn remove(blobs: &Blobs, dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    crate::store::files::remove_all(blobs).map(|_| ())
}
