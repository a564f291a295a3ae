//! Record search: one in-memory tantivy index per workspace (nothing reaches
//! the disk), caught up from the sealed rows before each query through the
//! `rev` change counter, and rebuilt whole after a schema change or a restore.
//! Each document carries its collection as a keyword and a query always
//! filters on it, inside the workspace's own index.

use std::collections::HashMap;
use std::time::Instant;

use crate::bounds::DataBounds;
use crate::error::Result;
use crate::search::{IndexDoc, IndexQuery, IndexRegistry, MemIndex, budget};
use crate::store::records as rstore;
use crate::store::tenant::TenantDb;
use crate::store::tenant_settings;

/// Changes read per catch-up step: bounded memory, and the time budget is
/// looked at between changes.
const BATCH: usize = 256;

/// What a search needs beyond the workspace: the appliance's indexes and
/// the search pool with its limits.
#[derive(Clone, Copy)]
pub struct Finder<'a> {
    pub indexes: &'a IndexRegistry,
    pub bounds: &'a DataBounds,
}

fn key(db: &TenantDb) -> String {
    format!("records:{}", db.id())
}

/// Brings the index up to date with committed rows, decrypting only the
/// definitions of collections that have changed rows (none when nothing
/// changed). Stops at `deadline`, keeping what it indexed so far.
fn catch_up(db: &TenantDb, idx: &mut MemIndex, deadline: Option<Instant>) -> Result<()> {
    db.read_blocking(|conn, sealer| {
        let generation = (tenant_settings::generation(conn)? << 32) | rstore::schema_version(conn)?;
        if idx.generation != generation {
            idx.reset(generation)?;
        }
        let mut defs: HashMap<String, Option<rstore::CollectionRow>> = HashMap::new();
        let mut through = idx.indexed_through;
        let mut changed = false;
        let mut out_of_time = false;
        loop {
            if budget::past(deadline) {
                out_of_time = true;
                break;
            }
            let changes = rstore::changes_since(conn, sealer, through, BATCH)?;
            if changes.is_empty() {
                break;
            }
            for (seq, rev, coll, values) in &changes {
                if budget::past(deadline) {
                    out_of_time = true;
                    break;
                }
                through = *rev;
                idx.remove(*seq);
                changed = true;
                let Some(values) = values else { continue };
                if !defs.contains_key(coll) {
                    defs.insert(coll.clone(), rstore::get_collection(conn, sealer, coll)?);
                }
                let Some(Some(c)) = defs.get(coll) else {
                    continue;
                };
                let text = super::values::search_text(&c.def, values);
                if text.is_empty() {
                    continue;
                }
                idx.add(&IndexDoc {
                    id: *seq,
                    time: 0,
                    text: &text,
                    keywords: &[format!("c:{coll}")],
                })?;
                if idx.should_commit() {
                    idx.indexed_through = through;
                    idx.commit()?;
                }
            }
            idx.indexed_through = through;
            if out_of_time {
                break;
            }
        }
        if changed {
            idx.commit()?;
        }
        idx.indexed_through = through;
        if out_of_time {
            return Err(budget::exceeded());
        }
        Ok(())
    })
}

/// Record seqs in one collection matching `q`, newest first, below `before`.
/// Runs in the search pool within the search time budget; the index's lock
/// is held only to catch up, and the query runs on a snapshot.
pub async fn search(
    finder: Finder<'_>,
    db: &TenantDb,
    collection: &str,
    q: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<i64>> {
    let registry = finder.indexes.clone();
    let disk = crate::search::index_dir(db.dir(), "records");
    let db = db.clone();
    let (collection, q) = (collection.to_owned(), q.to_owned());
    let max_terms = finder.bounds.limits.search_max_terms;
    let budget_len = finder.bounds.search_budget();
    finder
        .bounds
        .search
        .run(move || {
            let deadline = Some(Instant::now() + budget_len);
            // Opening decrypts the index files: here, on the search pool.
            let idx =
                registry.get_sealed(&key(&db), &disk, db.keys().search.clone(), db.liveness())?;
            let prepared = {
                let mut guard = crate::search::lock_until(&idx, deadline)?;
                catch_up(&db, &mut guard, deadline)?;
                guard.prepare(&IndexQuery {
                    text: Some(&q),
                    keywords: vec![format!("c:{collection}")],
                    before_id: before,
                    limit,
                    max_terms,
                    ..Default::default()
                })?
            };
            prepared.run(deadline)
        })
        .await
}
