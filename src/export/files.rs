//! The attached files of one page of records, into the export archive:
//! `collections/<c>/files/<record>/<file id>/<name>`, opened with each
//! file's key and streamed (a chunk at a time, never a whole file in
//! memory), each listed in the manifest with its SHA-256. The hash the
//! record's reference names is checked as the bytes pass; a file that does
//! not match stops the export with an integrity error.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::Builder;
use crate::crypto::file_seal::FileBinding;
use crate::error::{Error, Result};
use crate::model::file_ref;
use crate::records::schema::{Definition, FieldType};
use crate::store::files as fstore;
use crate::store::records::RecordRow;
use crate::store::tenant::TenantDb;

/// Appends every file the records of `page` hold; the number of files.
pub(super) fn append<W: Write>(
    b: &mut Builder<W>,
    db: &TenantDb,
    coll_id: &str,
    def: &Definition,
    page: &[RecordRow],
) -> Result<u64> {
    let ws = db.id().to_string();
    let blobs = db.files();
    let mut n = 0;
    for rec in page {
        for field in def.fields.iter().filter(|f| f.kind == FieldType::File) {
            for file in file_ref::refs(rec.values.get(&field.id)) {
                let (rid, fid, id) = (rec.id.clone(), field.id.clone(), file.id.clone());
                let Some(key) =
                    db.read_blocking(move |c, s| fstore::file_key(c, s, &rid, &fid, &id))?
                else {
                    // A reference whose file is gone (its row removed with
                    // it) has nothing to carry; the record still lists it.
                    continue;
                };
                let binding = FileBinding {
                    workspace: &ws,
                    record: &rec.id,
                    field: &field.id,
                    file: &file.id,
                };
                let mut reader = Hashing {
                    inner: fstore::open(&blobs, &key, binding)?,
                    hasher: Sha256::new(),
                };
                let want = hex::decode(&file.sha256)
                    .map_err(|_| Error::internal("export: a file reference's hash"))?;
                let path = format!(
                    "collections/{coll_id}/files/{}/{}/{}",
                    rec.id, file.id, file.name
                );
                b.add_streamed(&path, file.size, &want, (&mut reader).take(file.size))?;
                if reader.hasher.finalize().as_slice() != want.as_slice() {
                    return Err(Error::Integrity("a file"));
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

/// A reader that hashes what passes through.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.hasher.update(&out[..n]);
        Ok(n)
    }
}
