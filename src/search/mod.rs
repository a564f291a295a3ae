//! Full-text search without plaintext on disk: a tantivy index per workspace
//! (and per purpose), persisted sealed under the workspace's search subkey
//! (`sealed_dir`; the platform's stays in memory), rebuilt from the sealed
//! rows when missing or unreadable and caught up from committed rows before
//! each query, from the watermark its last commit recorded (docs/search.md).

pub mod budget;
mod persist;
pub mod sealed_dir;
mod sealed_file;

mod registry;
pub use persist::{index_dir, rebuilds};
pub use registry::IndexRegistry;

use std::any::Any;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, Query, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, Order, Searcher, TantivyDocument, Term};

use crate::error::{Error, Result};

/// tantivy's minimum arena per writer thread.
const WRITER_ARENA_BYTES: usize = 15_000_000;

fn search_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("search index: {e}"))
}

/// One document: a row's monotonically increasing number (audit seq, record
/// rowid), its time, free text, and exact keywords (`actor:<id>`, ...).
pub struct IndexDoc<'a> {
    pub id: i64,
    pub time: i64,
    pub text: &'a str,
    pub keywords: &'a [String],
}

/// Most words in one free-text query unless the caller says otherwise.
pub const DEFAULT_MAX_TERMS: usize = 16;

/// A query: optional free text (all words must match), keywords that must all
/// be present, keywords of which one must be present, an optional keyword
/// regex, a time range, and a cursor.
///
/// Free text has a deliberately small grammar: it is split into words by the
/// index's own tokenizer and every word must match, as a whole word or (from
/// `MIN_PREFIX_CHARS` characters) as the start of one. Nothing in it is
/// syntax (no ranges, fields, wildcards, fuzzy or boolean operators), so a
/// query costs at most `max_terms` prefix walks of the term dictionary; more
/// words get 422 on `q`. Keywords always match exactly.
#[derive(Default)]
pub struct IndexQuery<'a> {
    pub text: Option<&'a str>,
    pub keywords: Vec<String>,
    /// `Some`: a document must carry at least one of these (none matches
    /// when the list is empty).
    pub any_keywords: Option<Vec<String>>,
    pub keyword_regex: Option<String>,
    pub time_from: Option<i64>,
    pub time_to: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: usize,
    /// 0 means `DEFAULT_MAX_TERMS`.
    pub max_terms: usize,
}

/// A query ready to run on a snapshot of the index, without its lock: a
/// tantivy searcher is a cheap clone of the committed segments, so searches
/// of one workspace do not wait for each other.
pub struct Prepared {
    searcher: Searcher,
    query: BooleanQuery,
    limit: usize,
}

impl Prepared {
    /// Ids matching, newest first; stops with `budget::exceeded()` at the
    /// deadline.
    pub fn run(self, deadline: Option<Instant>) -> Result<Vec<i64>> {
        let top =
            TopDocs::with_limit(self.limit.max(1)).order_by_fast_field::<u64>("id", Order::Desc);
        let hits = match deadline {
            None => self.searcher.search(&self.query, &top),
            Some(deadline) => self.searcher.search(
                &self.query,
                &budget::Budgeted {
                    inner: top,
                    deadline,
                },
            ),
        };
        let hits = match hits {
            Ok(h) => h,
            Err(_) if budget::past(deadline) => return Err(budget::exceeded()),
            Err(e) => return Err(search_err(e)),
        };
        Ok(hits
            .into_iter()
            .filter_map(|(id, _)| i64::try_from(id).ok())
            .collect())
    }
}

/// Locks an index, waiting at most until `deadline`: a search never queues
/// behind another one's catch-up for longer than its own budget.
pub fn lock_until(
    idx: &Mutex<MemIndex>,
    deadline: Option<Instant>,
) -> Result<MutexGuard<'_, MemIndex>> {
    loop {
        match idx.try_lock() {
            Ok(g) => return Ok(g),
            Err(TryLockError::Poisoned(_)) => {
                return Err(Error::internal("search index lock poisoned"));
            }
            Err(TryLockError::WouldBlock) => {
                if budget::past(deadline) {
                    return Err(budget::exceeded());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// One in-memory index, newest-first queries over ids.
pub struct MemIndex {
    index: Index,
    writer: IndexWriter,
    reader: IndexReader,
    id: Field,
    time: Field,
    text: Field,
    keyword: Field,
    /// Everything up to and including this id is indexed.
    pub indexed_through: i64,
    /// The source's restore generation this index was built from.
    pub generation: u64,
    pub docs: u64,
    /// Text bytes added since the last commit.
    uncommitted_bytes: usize,
    /// `Some` for an index persisted sealed on disk.
    pub(super) sealed: Option<sealed_dir::SealedDir>,
}

/// A catch-up commits after this much text, so the work it has queued in
/// tantivy's indexing thread stays small and a time budget is honoured.
const COMMIT_EVERY_BYTES: usize = 2 << 20;

impl MemIndex {
    /// An index held only in memory.
    pub fn new() -> Result<Self> {
        Self::create(None)
    }

    fn schema() -> Schema {
        let mut sb = Schema::builder();
        sb.add_u64_field("id", INDEXED | FAST | STORED);
        sb.add_i64_field("time", INDEXED | FAST);
        sb.add_text_field("text", TEXT);
        sb.add_text_field("kw", STRING);
        sb.build()
    }

    /// A new empty index, in memory or in `dir`.
    fn create(dir: Option<sealed_dir::SealedDir>) -> Result<Self> {
        let index = match &dir {
            None => Index::create_in_ram(Self::schema()),
            Some(d) => Index::create(d.clone(), Self::schema(), tantivy::IndexSettings::default())
                .map_err(search_err)?,
        };
        Self::with_index(index, dir)
    }

    fn with_index(index: Index, sealed: Option<sealed_dir::SealedDir>) -> Result<Self> {
        let schema = index.schema();
        let field = |name: &str| schema.get_field(name).map_err(search_err);
        let (id, time, text, keyword) =
            (field("id")?, field("time")?, field("text")?, field("kw")?);
        let writer = index
            .writer_with_num_threads(1, WRITER_ARENA_BYTES)
            .map_err(search_err)?;
        let reader = index.reader().map_err(search_err)?;
        Ok(Self {
            index,
            writer,
            reader,
            id,
            time,
            text,
            keyword,
            indexed_through: 0,
            generation: 0,
            docs: 0,
            uncommitted_bytes: 0,
            sealed,
        })
    }

    pub fn add(&mut self, d: &IndexDoc<'_>) -> Result<()> {
        let id_u = u64::try_from(d.id).map_err(search_err)?;
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.id, id_u);
        doc.add_i64(self.time, d.time);
        doc.add_text(self.text, d.text);
        for k in d.keywords {
            doc.add_text(self.keyword, k);
        }
        self.writer.add_document(doc).map_err(search_err)?;
        self.uncommitted_bytes += d.text.len();
        self.indexed_through = self.indexed_through.max(d.id);
        self.docs += 1;
        Ok(())
    }

    /// Removes a document (an erased or anonymised row).
    pub fn remove(&mut self, id: i64) {
        if let Ok(id_u) = u64::try_from(id) {
            self.writer.delete_term(Term::from_field_u64(self.id, id_u));
        }
    }

    /// True once enough text was added that a catch-up should commit (and
    /// so wait for tantivy's indexing thread) before going on.
    pub fn should_commit(&self) -> bool {
        self.uncommitted_bytes >= COMMIT_EVERY_BYTES
    }

    /// Commits, recording in the commit what the index holds (its
    /// watermark and generation): a reopened index goes on from there.
    pub fn commit(&mut self) -> Result<()> {
        self.uncommitted_bytes = 0;
        let payload = persist::Payload::of(self).to_json();
        let mut prepared = self.writer.prepare_commit().map_err(search_err)?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(search_err)?;
        self.reader.reload().map_err(search_err)?;
        Ok(())
    }

    /// Ids matching the query, newest first (no time budget).
    pub fn search(&self, q: &IndexQuery<'_>) -> Result<Vec<i64>> {
        self.prepare(q)?.run(None)
    }

    /// The free text as a conjunction of plain terms.
    fn text_query(&self, text: &str, max_terms: usize) -> Result<Box<dyn Query>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.text)
            .map_err(search_err)?;
        let mut words: Vec<String> = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while let Some(t) = stream.next() {
            if !words.contains(&t.text) {
                words.push(t.text.clone());
            }
            if words.len() > max_terms {
                return Err(Error::field(
                    "q",
                    format!("must have at most {max_terms} words"),
                ));
            }
        }
        if words.is_empty() {
            return Ok(Box::new(EmptyQuery));
        }
        let mut terms: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(words.len());
        for w in &words {
            let q: Box<dyn Query> = if w.chars().count() >= MIN_PREFIX_CHARS {
                Box::new(
                    RegexQuery::from_pattern(&prefix_pattern(w), self.text).map_err(search_err)?,
                )
            } else {
                Box::new(TermQuery::new(
                    Term::from_field_text(self.text, w),
                    IndexRecordOption::Basic,
                ))
            };
            terms.push((Occur::Must, q));
        }
        Ok(Box::new(BooleanQuery::new(terms)))
    }

    /// Builds the query against the current snapshot; run it after the
    /// index's lock is released.
    pub fn prepare(&self, q: &IndexQuery<'_>) -> Result<Prepared> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(AllQuery))];
        if let Some(text) = q.text.map(str::trim).filter(|t| !t.is_empty()) {
            let max = if q.max_terms == 0 {
                DEFAULT_MAX_TERMS
            } else {
                q.max_terms
            };
            clauses.push((Occur::Must, self.text_query(text, max)?));
        }
        for k in &q.keywords {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.keyword, k),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(any) = &q.any_keywords {
            let should: Vec<(Occur, Box<dyn Query>)> = any
                .iter()
                .map(|k| {
                    let t: Box<dyn Query> = Box::new(TermQuery::new(
                        Term::from_field_text(self.keyword, k),
                        IndexRecordOption::Basic,
                    ));
                    (Occur::Should, t)
                })
                .collect();
            // No readable scope at all: nothing may match.
            let any: Box<dyn Query> = if should.is_empty() {
                Box::new(EmptyQuery)
            } else {
                Box::new(BooleanQuery::new(should))
            };
            clauses.push((Occur::Must, any));
        }
        if let Some(re) = &q.keyword_regex {
            let rq = RegexQuery::from_pattern(re, self.keyword).map_err(search_err)?;
            clauses.push((Occur::Must, Box::new(rq)));
        }
        if q.time_from.is_some() || q.time_to.is_some() {
            let lo = q
                .time_from
                .map(|t| Bound::Included(Term::from_field_i64(self.time, t)))
                .unwrap_or(Bound::Unbounded);
            let hi = q
                .time_to
                .map(|t| Bound::Included(Term::from_field_i64(self.time, t)))
                .unwrap_or(Bound::Unbounded);
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        if let Some(b) = q.before_id {
            let upper = u64::try_from(b).unwrap_or(0);
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Excluded(Term::from_field_u64(self.id, upper)),
                )),
            ));
        }
        Ok(Prepared {
            searcher: self.reader.searcher(),
            query: BooleanQuery::new(clauses),
            limit: q.limit,
        })
    }
}

/// A free-text word this long or longer matches as the prefix of indexed
/// words ("noeth" finds "Noether"); a shorter one only as a whole word, as a
/// one-letter prefix would expand to a large part of the term dictionary.
pub const MIN_PREFIX_CHARS: usize = 2;

/// A regex matching the indexed terms that start with `word` (a token of
/// the index's own tokenizer): every character a literal, so nothing in the
/// query is regex syntax. tantivy runs it as an automaton over the term
/// dictionary, walking only the terms under the prefix.
fn prefix_pattern(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 3);
    for c in word.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
        }
    }
    out.push_str(".*");
    out
}

/// Escapes a literal for use inside a keyword regex.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// Dead once the workspace an index belongs to is closed (its pooled handle
/// evicted and no request holding it): the index goes with it.
pub type Liveness = Weak<dyn Any + Send + Sync>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::Sealer;

    fn add(i: &mut MemIndex, id: i64, time: i64, text: &str, kw: &[&str]) {
        let kw: Vec<String> = kw.iter().map(|k| k.to_string()).collect();
        i.add(&IndexDoc {
            id,
            time,
            text,
            keywords: &kw,
        })
        .unwrap();
    }

    fn q<'a>(text: Option<&'a str>, kw: &[&str]) -> IndexQuery<'a> {
        IndexQuery {
            text,
            keywords: kw.iter().map(|k| k.to_string()).collect(),
            limit: 10,
            ..Default::default()
        }
    }

    #[test]
    fn finds_words_and_keywords_newest_first_below_a_cursor() {
        let mut i = MemIndex::new().unwrap();
        add(
            &mut i,
            1,
            100,
            "invoice Acme",
            &["action:record.created", "actor:u1"],
        );
        add(
            &mut i,
            2,
            200,
            "Ada",
            &["action:member.role_changed", "actor:u2"],
        );
        add(
            &mut i,
            3,
            300,
            "invoice Acme Corp",
            &["action:record.updated", "actor:u1"],
        );
        i.commit().unwrap();
        assert_eq!(i.search(&q(Some("invoice"), &[])).unwrap(), vec![3, 1]);
        assert_eq!(
            i.search(&IndexQuery {
                before_id: Some(3),
                ..q(Some("invoice"), &[])
            })
            .unwrap(),
            vec![1]
        );
        assert_eq!(i.search(&q(Some("acme corp"), &[])).unwrap(), vec![3]);
        assert!(i.search(&q(Some("nothing"), &[])).unwrap().is_empty());
        assert_eq!(i.search(&q(None, &["actor:u1"])).unwrap(), vec![3, 1]);
        assert_eq!(
            i.search(&q(Some("invoice"), &["action:record.created"]))
                .unwrap(),
            vec![1]
        );
        let re = IndexQuery {
            keyword_regex: Some(format!("action:{}.*", regex_escape("rec"))),
            ..q(None, &[])
        };
        assert_eq!(i.search(&re).unwrap(), vec![3, 1]);
        let t = IndexQuery {
            time_from: Some(150),
            time_to: Some(250),
            ..q(None, &[])
        };
        assert_eq!(i.search(&t).unwrap(), vec![2]);
        let any = |ks: &[&str]| IndexQuery {
            any_keywords: Some(ks.iter().map(|k| k.to_string()).collect()),
            ..q(Some("invoice"), &[])
        };
        assert_eq!(
            i.search(&any(&["actor:u2", "action:record.created"]))
                .unwrap(),
            vec![1]
        );
        assert!(i.search(&any(&[])).unwrap().is_empty());
        i.remove(3);
        i.commit().unwrap();
        assert_eq!(i.search(&q(Some("invoice"), &[])).unwrap(), vec![1]);
    }

    #[test]
    fn a_sealed_index_reopens_and_leaves_memory_with_its_workspace() {
        let tmp = tempfile::tempdir().unwrap();
        let key = crate::crypto::DataKey::generate(1);
        let sealer =
            Arc::new(Sealer::under_subkey("ws", &[key], 1, "aura/v1/search-index").unwrap());
        let reg = IndexRegistry::new(8);
        let workspace: Arc<dyn Any + Send + Sync> = Arc::new(());
        let disk = tmp.path().join("audit");
        let idx = reg
            .get_sealed(
                "audit:ws",
                &disk,
                Arc::clone(&sealer),
                Arc::downgrade(&workspace),
            )
            .unwrap();
        {
            let mut i = idx.lock().unwrap();
            add(&mut i, 7, 100, "persisted words", &[]);
            i.commit().unwrap();
        }
        drop(idx);
        // The workspace closes: the idle-close job's prune drops its index
        // (and its decrypted chunks) without waiting for another search.
        let _ = reg.get("audit:platform").unwrap();
        assert_eq!(reg.prune_closed(), 0, "an open workspace's index stays");
        drop(workspace);
        let other: Arc<dyn Any + Send + Sync> = Arc::new(());
        assert_eq!(reg.prune_closed(), 1);
        assert!(!reg.open.lock().unwrap().contains_key("audit:ws"));
        assert!(reg.open.lock().unwrap().contains_key("audit:platform"));
        // Reopened from its sealed files, watermark and all.
        let before = rebuilds();
        let idx = reg
            .get_sealed("audit:ws", &disk, sealer, Arc::downgrade(&other))
            .unwrap();
        let i = idx.lock().unwrap();
        assert_eq!(i.indexed_through, 7);
        assert_eq!(i.search(&q(Some("persisted"), &[])).unwrap(), vec![7]);
        assert_eq!(rebuilds(), before);
    }

    #[test]
    fn free_text_is_plain_words_with_a_word_limit_and_a_budget() {
        let mut i = MemIndex::new().unwrap();
        add(&mut i, 1, 100, "alpha beta", &[]);
        add(&mut i, 2, 200, "gamma to z", &[]);
        i.commit().unwrap();
        // Range, wildcard and field syntax are words, not operators.
        assert!(i.search(&q(Some("[a TO z]"), &[])).unwrap().is_empty());
        assert_eq!(i.search(&q(Some("[gamma TO z]"), &[])).unwrap(), vec![2]);
        // A word is a prefix: the `*` is no wildcard but a separator.
        assert_eq!(i.search(&q(Some("alph*"), &[])).unwrap(), vec![1]);
        assert!(i.search(&q(Some("al*ha"), &[])).unwrap().is_empty());
        assert_eq!(i.search(&q(Some("GAM"), &[])).unwrap(), vec![2]);
        // One letter matches whole words only.
        assert!(i.search(&q(Some("g"), &[])).unwrap().is_empty());
        assert_eq!(i.search(&q(Some("z"), &[])).unwrap(), vec![2]);
        // Regex syntax in a word is literal.
        assert_eq!(prefix_pattern("ab"), "ab.*");
        assert_eq!(prefix_pattern("é_"), "é\\x{5f}.*");
        assert_eq!(
            i.search(&q(Some("text:alpha"), &[])).unwrap(),
            Vec::<i64>::new()
        );
        // More words than allowed: 422 on q.
        let many: Vec<String> = (0..17).map(|n| format!("w{n}")).collect();
        let err = i.search(&q(Some(&many.join(" ")), &[])).unwrap_err();
        assert!(
            matches!(err, Error::Validation(ref v) if v[0].field == "q"),
            "{err}"
        );
        // A budget already spent stops the query.
        let past = Instant::now() - Duration::from_millis(1);
        let err = i
            .prepare(&q(Some("alpha"), &[]))
            .unwrap()
            .run(Some(past))
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        let later = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            i.prepare(&q(Some("alpha"), &[]))
                .unwrap()
                .run(Some(later))
                .unwrap(),
            vec![1]
        );
    }
}
