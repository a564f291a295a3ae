//! What continuous replication needs of a workspace's `files` table
//! (docs/replication.md, "Files"): the rows added since a rowid (the new
//! sealed files to ship, without listing the files directory), and every
//! file a database names with what it is bound to (what a point-in-time
//! restore fetches and checks).

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, TOKEN};
use crate::error::Result;

/// A file a database names: its id and the record and field it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub record: String,
    pub field: String,
}

/// Rows added (rowid, file id), and the id at the rowid asked after.
pub type Added = (Vec<(i64, String)>, Option<String>);

fn has_files(c: &dyn Sql) -> Result<bool> {
    let c = c.conn(TOKEN);
    Ok(c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'files'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0)
}

/// The rows whose rowid is above `after` (ascending), and the id of the row
/// at `after` now: when that is not the id last seen there, the newest rows
/// were removed and their rowids may have been given to new files (SQLite
/// reuses the highest rowid once its row is gone), so the caller compares
/// everything instead.
pub fn added_since(c: &dyn Sql, after: i64) -> Result<Added> {
    if !has_files(c)? {
        return Ok((Vec::new(), None));
    }
    let conn = c.conn(TOKEN);
    let mut stmt =
        conn.prepare_cached("SELECT rowid, id FROM files WHERE rowid > ?1 ORDER BY rowid")?;
    let rows = stmt.query_map(params![after], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let added = rows.collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
    let at = conn
        .query_row(
            "SELECT id FROM files WHERE rowid = ?1",
            params![after],
            |r| r.get(0),
        )
        .optional()?;
    Ok((added, at))
}

/// Every file the database names, by id.
pub fn named(c: &dyn Sql) -> Result<Vec<Named>> {
    if !has_files(c)? {
        return Ok(Vec::new());
    }
    let conn = c.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT id, record_id, field_id FROM files ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Named {
            id: r.get(0)?,
            record: r.get(1)?,
            field: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Detached;

    fn insert(c: &Detached, id: &str) {
        c.conn(TOKEN)
            .execute(
                "INSERT INTO files (id, record_id, field_id, size, key_ct, created_at)
                 VALUES (?1, 'r', 'f', 1, x'00', 0)",
                [id],
            )
            .unwrap();
    }

    /// SQLite gives a removed highest rowid to the next row: `added_since`
    /// then finds nothing above it, and the id at it changed, which is what
    /// tells the shipper to compare the whole table.
    #[test]
    fn a_reused_highest_rowid_shows_as_another_id_at_it() {
        let c = Detached::memory(crate::store::migrations::TENANT).unwrap();
        insert(&c, "fl_a");
        insert(&c, "fl_b");
        let (added, _) = added_since(&c, 0).unwrap();
        assert_eq!(added, vec![(1, "fl_a".into()), (2, "fl_b".into())]);
        c.conn(TOKEN)
            .execute("DELETE FROM files WHERE id = 'fl_b'", [])
            .unwrap();
        insert(&c, "fl_c");
        let (added, at) = added_since(&c, 2).unwrap();
        assert!(added.is_empty(), "nothing above the old highest rowid");
        assert_eq!(at.as_deref(), Some("fl_c"), "another id at it");
        assert_eq!(named(&c).unwrap().len(), 2);
    }
}
