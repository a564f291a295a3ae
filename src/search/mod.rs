//! Full-text search without plaintext on disk: an in-memory tantivy index per
//! workspace (and per purpose), rebuilt from the sealed rows when missing and
//! caught up from committed rows before each query. Nothing is written to a
//! file; the cost is RAM and a rebuild after restart (see docs/search.md).

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::schema::{FAST, Field, INDEXED, STORED, Schema, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, Order, Term, doc};

use crate::error::{Error, Result};

/// tantivy's minimum arena per writer thread.
const WRITER_ARENA_BYTES: usize = 15_000_000;

fn search_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("search index: {e}"))
}

/// One in-memory index of (id, text) documents, where `id` is a row's
/// monotonically increasing number (audit seq, record rowid).
pub struct MemIndex {
    index: Index,
    writer: IndexWriter,
    reader: IndexReader,
    id: Field,
    text: Field,
    /// Everything up to and including this id is indexed.
    pub indexed_through: i64,
    pub docs: u64,
}

impl MemIndex {
    pub fn new() -> Result<Self> {
        let mut sb = Schema::builder();
        let id = sb.add_u64_field("id", INDEXED | FAST | STORED);
        let text = sb.add_text_field("text", TEXT);
        let index = Index::create_in_ram(sb.build());
        let writer = index
            .writer_with_num_threads(1, WRITER_ARENA_BYTES)
            .map_err(search_err)?;
        let reader = index.reader().map_err(search_err)?;
        Ok(Self {
            index,
            writer,
            reader,
            id,
            text,
            indexed_through: 0,
            docs: 0,
        })
    }

    pub fn add(&mut self, id: i64, text: &str) -> Result<()> {
        let id_u = u64::try_from(id).map_err(search_err)?;
        self.writer
            .add_document(doc!(self.id => id_u, self.text => text))
            .map_err(search_err)?;
        self.indexed_through = self.indexed_through.max(id);
        self.docs += 1;
        Ok(())
    }

    /// Removes a document (an erased or anonymised row).
    pub fn remove(&mut self, id: i64) {
        if let Ok(id_u) = u64::try_from(id) {
            self.writer.delete_term(Term::from_field_u64(self.id, id_u));
        }
    }

    pub fn commit(&mut self) -> Result<()> {
        self.writer.commit().map_err(search_err)?;
        self.reader.reload().map_err(search_err)?;
        Ok(())
    }

    /// Ids matching the free-text `q` (all words must match), below `before`,
    /// newest first, at most `limit`.
    pub fn search(&self, q: &str, before: Option<i64>, limit: usize) -> Result<Vec<i64>> {
        let mut parser = QueryParser::for_index(&self.index, vec![self.text]);
        parser.set_conjunction_by_default();
        let (text_query, _errors) = parser.parse_query_lenient(q);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query)];
        if let Some(b) = before {
            let upper = u64::try_from(b).unwrap_or(0);
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Excluded(Term::from_field_u64(self.id, upper)),
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let hits = self
            .reader
            .searcher()
            .search(
                &query,
                &TopDocs::with_limit(limit.max(1)).order_by_fast_field::<u64>("id", Order::Desc),
            )
            .map_err(search_err)?;
        Ok(hits
            .into_iter()
            .filter_map(|(id, _)| i64::try_from(id).ok())
            .collect())
    }
}

/// Open indexes by key (e.g. `audit:<workspace-id>`), capped in number; an
/// evicted index is rebuilt from the sealed rows on its next use.
pub struct IndexRegistry {
    cap: usize,
    open: Mutex<HashMap<String, Arc<Mutex<MemIndex>>>>,
}

impl IndexRegistry {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &str) -> Result<Arc<Mutex<MemIndex>>> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| Error::internal("index registry lock poisoned"))?;
        if let Some(i) = open.get(key) {
            return Ok(Arc::clone(i));
        }
        if open.len() >= self.cap {
            open.retain(|_, i| Arc::strong_count(i) > 1);
        }
        let idx = Arc::new(Mutex::new(MemIndex::new()?));
        open.insert(key.to_owned(), Arc::clone(&idx));
        Ok(idx)
    }

    /// Forgets an index (after retention or a restore), so it is rebuilt.
    pub fn drop_index(&self, key: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_words_newest_first_below_a_cursor() {
        let mut i = MemIndex::new().unwrap();
        i.add(1, "record.created invoice Acme").unwrap();
        i.add(2, "member.role_changed Ada").unwrap();
        i.add(3, "record.updated invoice Acme Corp").unwrap();
        i.commit().unwrap();
        assert_eq!(i.search("invoice", None, 10).unwrap(), vec![3, 1]);
        assert_eq!(i.search("invoice", Some(3), 10).unwrap(), vec![1]);
        assert_eq!(i.search("acme corp", None, 10).unwrap(), vec![3]);
        assert!(i.search("nothing", None, 10).unwrap().is_empty());
        i.remove(3);
        i.commit().unwrap();
        assert_eq!(i.search("invoice", None, 10).unwrap(), vec![1]);
    }
}
