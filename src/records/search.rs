//! Record search: one in-memory tantivy index per workspace (nothing reaches
//! the disk), caught up from the sealed rows before each query through the
//! `rev` change counter, and rebuilt whole after a schema change or a restore.
//! Each document carries its collection as a keyword and a query always
//! filters on it, inside the workspace's own index.

use std::sync::{Arc, Mutex};

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::search::{IndexDoc, IndexQuery, MemIndex};
use crate::store::records as rstore;
use crate::store::tenant::TenantDb;
use crate::store::tenant_settings;

const BATCH: usize = 2_000;

fn key(db: &TenantDb) -> String {
    format!("records:{}", db.id())
}

/// Brings the index up to date with committed rows.
fn catch_up(db: &TenantDb, idx: &mut MemIndex) -> Result<()> {
    db.read_blocking(|conn, sealer| {
        let generation = (tenant_settings::generation(conn)? << 32) | rstore::schema_version(conn)?;
        if idx.generation != generation {
            *idx = MemIndex::new()?;
            idx.generation = generation;
        }
        let defs: std::collections::HashMap<String, rstore::CollectionRow> =
            rstore::list_collections(conn, sealer)?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect();
        let mut through = idx.indexed_through;
        let mut changed = false;
        loop {
            let changes = rstore::changes_since(conn, sealer, through, BATCH)?;
            let Some(last) = changes.last() else { break };
            through = last.1;
            for (seq, _rev, coll, values) in &changes {
                idx.remove(*seq);
                changed = true;
                let (Some(values), Some(c)) = (values, defs.get(coll)) else {
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
            }
            idx.indexed_through = through;
        }
        if changed {
            idx.commit()?;
        }
        idx.indexed_through = through;
        Ok(())
    })
}

fn locked(idx: &Arc<Mutex<MemIndex>>) -> Result<std::sync::MutexGuard<'_, MemIndex>> {
    idx.lock()
        .map_err(|_| Error::internal("record index lock poisoned"))
}

/// Record seqs in one collection matching `q`, newest first, below `before`.
pub async fn search(
    state: &AppState,
    db: &TenantDb,
    collection: &str,
    q: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<i64>> {
    let idx = state.indexes.get(&key(db))?;
    let db = db.clone();
    let (collection, q) = (collection.to_owned(), q.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut guard = locked(&idx)?;
        catch_up(&db, &mut guard)?;
        guard.search(&IndexQuery {
            text: Some(&q),
            keywords: vec![format!("c:{collection}")],
            before_id: before,
            limit,
            ..Default::default()
        })
    })
    .await?
}
