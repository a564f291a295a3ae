//! A search's time budget (issue 27, finding 5): a collector that walks each
//! segment's matches itself and gives up when the deadline passes, so an
//! expensive query stops burning CPU instead of running on after its caller
//! gave up; and the error every stopped search returns.

use std::time::Instant;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;
use tantivy::{DocSet, SegmentReader, TERMINATED, TantivyError};

use crate::error::Error;

/// Matches walked between two looks at the clock.
const CHECK_EVERY: u32 = 1024;

/// What a search that ran out of time answers (503, logged).
pub fn exceeded() -> Error {
    Error::Unavailable("search time budget exceeded")
}

/// True once `deadline` (if any) has passed.
pub fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

pub struct Budgeted<C> {
    pub inner: C,
    pub deadline: Instant,
}

impl<C: Collector> Collector for Budgeted<C> {
    type Fruit = C::Fruit;
    type Child = C::Child;

    fn for_segment(
        &self,
        segment_local_id: u32,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        self.inner.for_segment(segment_local_id, segment)
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<<Self::Child as SegmentCollector>::Fruit>,
    ) -> tantivy::Result<Self::Fruit> {
        self.inner.merge_fruits(fruits)
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<<Self::Child as SegmentCollector>::Fruit> {
        let out_of_time = || TantivyError::InternalError("search time budget exceeded".into());
        if Instant::now() >= self.deadline {
            return Err(out_of_time());
        }
        let mut child = self.for_segment(segment_ord, reader)?;
        let scoring = self.requires_scoring();
        let alive = reader.alive_bitset();
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        let mut walked = 0u32;
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                let score = if scoring { scorer.score() } else { 0.0 };
                child.collect(doc, score);
            }
            walked = walked.wrapping_add(1);
            if walked % CHECK_EVERY == 0 && Instant::now() >= self.deadline {
                return Err(out_of_time());
            }
            doc = scorer.advance();
        }
        Ok(child.harvest())
    }
}
