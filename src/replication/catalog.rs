//! Reading the replica's layout without decrypting anything:
//! `<db>/<generation>/snapshot-<ms>.age` and `<db>/<generation>/seg-<seq>-<ms>.age`,
//! where `<db>` is `control` or `ws-<id>` and a generation (`<start ms>-<random>`)
//! is one snapshot followed by the segments shipped after it. Point-in-time
//! recovery to T takes the newest generation whose snapshot is at or before T
//! and applies its segments up to the last one read at or before T.

use crate::clock::rfc3339_ms;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub name: String,
    pub at_ms: i64,
    pub size: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Generation {
    pub id: String,
    pub snapshot: Option<Object>,
    /// By sequence number (1, 2, ...).
    pub segments: Vec<(u64, Object)>,
}

impl Generation {
    pub fn newest_ms(&self) -> i64 {
        self.segments
            .last()
            .map(|(_, o)| o.at_ms)
            .or(self.snapshot.as_ref().map(|s| s.at_ms))
            .unwrap_or(0)
    }
}

pub fn snapshot_name(db: &str, generation: &str, at_ms: i64) -> String {
    format!("{db}/{generation}/snapshot-{at_ms:013}.age")
}

pub fn segment_name(db: &str, generation: &str, seq: u64, at_ms: i64) -> String {
    format!("{db}/{generation}/seg-{seq:010}-{at_ms:013}.age")
}

/// Groups one database's objects into generations, oldest first; only
/// generations with a snapshot count.
pub fn parse(objects: &[(String, u64)]) -> Vec<Generation> {
    let mut gens: std::collections::BTreeMap<String, Generation> = Default::default();
    for (name, size) in objects {
        let parts: Vec<&str> = name.rsplitn(3, '/').collect();
        let [file, generation, _db] = parts[..] else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".age") else {
            continue;
        };
        let g = gens
            .entry(generation.to_owned())
            .or_insert_with(|| Generation {
                id: generation.to_owned(),
                ..Default::default()
            });
        if let Some(ms) = stem.strip_prefix("snapshot-").and_then(|m| m.parse().ok()) {
            g.snapshot = Some(Object {
                name: name.clone(),
                at_ms: ms,
                size: *size,
            });
        } else if let Some((seq, ms)) = stem
            .strip_prefix("seg-")
            .and_then(|r| r.split_once('-'))
            .and_then(|(s, m)| Some((s.parse::<u64>().ok()?, m.parse::<i64>().ok()?)))
        {
            g.segments.push((
                seq,
                Object {
                    name: name.clone(),
                    at_ms: ms,
                    size: *size,
                },
            ));
        }
    }
    let mut out: Vec<Generation> = gens
        .into_values()
        .filter(|g| g.snapshot.is_some())
        .collect();
    for g in &mut out {
        g.segments.sort_by_key(|(s, _)| *s);
    }
    out.sort_by_key(|g| g.snapshot.as_ref().map(|s| s.at_ms).unwrap_or(0));
    out
}

/// The instants point-in-time recovery reaches: from the older of the first
/// snapshot and the retention cutoff, to the newest replicated read.
pub fn window(gens: &[Generation], cutoff_ms: i64) -> Option<(i64, i64)> {
    let first = gens.first()?.snapshot.as_ref()?.at_ms;
    let newest = gens.iter().map(Generation::newest_ms).max()?;
    Some((first.max(cutoff_ms).min(newest), newest))
}

/// What to fetch for the state at `at` (`None`: the newest): the snapshot,
/// then segments in order, and the instant that state was read. `Ok(None)`:
/// the database did not exist yet at `at` (the caller names the window).
pub fn plan(
    db: &str,
    gens: &[Generation],
    at: Option<i64>,
    cutoff_ms: i64,
) -> Result<Option<(Vec<String>, i64)>> {
    let Some((oldest, newest)) = window(gens, cutoff_ms) else {
        return Ok(None);
    };
    let t = at.unwrap_or(i64::MAX);
    if at.is_some() && t < cutoff_ms {
        return Err(outside(db, t, oldest, newest));
    }
    let Some(g) = gens
        .iter()
        .rev()
        .find(|g| g.snapshot.as_ref().is_some_and(|s| s.at_ms <= t))
    else {
        return Ok(None);
    };
    let snap = g
        .snapshot
        .as_ref()
        .ok_or_else(|| Error::internal("no snapshot"))?;
    let mut names = vec![snap.name.clone()];
    let mut state_ms = snap.at_ms;
    for (i, (seq, o)) in g.segments.iter().enumerate() {
        if o.at_ms > t {
            break;
        }
        if *seq != i as u64 + 1 {
            return Err(Error::Usage(format!(
                "the replica of {db} is missing segment {} of generation {}; restore to an instant before {}",
                i + 1,
                g.id,
                rfc3339_ms(o.at_ms)
            )));
        }
        names.push(o.name.clone());
        state_ms = o.at_ms;
    }
    Ok(Some((names, state_ms)))
}

pub fn outside(db: &str, t: i64, oldest: i64, newest: i64) -> Error {
    Error::Usage(format!(
        "{} is outside the point-in-time recovery window of {db}: {} to {} (see `replication.retention_days`)",
        rfc3339_ms(t),
        rfc3339_ms(oldest),
        rfc3339_ms(newest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_takes_the_last_generation_and_segments_at_or_before_the_instant() {
        let objs: Vec<(String, u64)> = vec![
            (snapshot_name("ws-a", "0000000000100-aa", 100), 1),
            (segment_name("ws-a", "0000000000100-aa", 1, 150), 1),
            (snapshot_name("ws-a", "0000000000200-bb", 200), 1),
            (segment_name("ws-a", "0000000000200-bb", 1, 250), 1),
            (segment_name("ws-a", "0000000000200-bb", 2, 300), 1),
        ];
        let gens = parse(&objs);
        assert_eq!(gens.len(), 2);
        let (names, at) = plan("ws-a", &gens, Some(260), 0).unwrap().unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(at, 250);
        let (names, _) = plan("ws-a", &gens, Some(199), 0).unwrap().unwrap();
        assert_eq!(names.len(), 2);
        assert!(plan("ws-a", &gens, Some(99), 0).unwrap().is_none());
        assert!(plan("ws-a", &gens, Some(150), 160).is_err());
        assert_eq!(plan("ws-a", &gens, None, 0).unwrap().unwrap().1, 300);
    }
}
