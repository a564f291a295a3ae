//! The bookkeeping behind `TenantPool`: which workspace handles are open, in
//! order of last use, so the pool can close the least recently used idle one
//! when it is full and every handle idle for a while (issue 23: ten thousand
//! workspaces on one appliance, at most `storage.tenant_pool_size` open).
//!
//! "Idle" is decided by the caller (`busy`): the pool passes "some request
//! still holds a clone", so a database in use is never closed under it. A
//! removed handle is returned, not dropped, so the caller can close it
//! (checkpoint, close the files) after releasing its lock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::WorkspaceId;

struct Slot<V> {
    value: V,
    /// Order of last use (higher is more recent).
    tick: u64,
    used: Instant,
}

pub(crate) struct Lru<V> {
    map: HashMap<WorkspaceId, Slot<V>>,
    tick: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            tick: 0,
        }
    }
}

impl<V> Lru<V> {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The handle of `id`, marked as just used.
    pub fn get(&mut self, id: &WorkspaceId) -> Option<&V> {
        let tick = self.next_tick();
        let slot = self.map.get_mut(id)?;
        slot.tick = tick;
        slot.used = Instant::now();
        Some(&slot.value)
    }

    /// The handle already pooled for `id` (another caller opened it
    /// meanwhile) or else `value`, marked as just used. The unused `value`
    /// comes back for the caller to close outside its lock.
    pub fn insert(&mut self, id: WorkspaceId, value: V) -> (&V, Option<V>) {
        let tick = self.next_tick();
        let now = Instant::now();
        let mut spare = None;
        let slot = match self.map.entry(id) {
            std::collections::hash_map::Entry::Occupied(o) => {
                spare = Some(value);
                o.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Slot {
                value,
                tick,
                used: now,
            }),
        };
        slot.tick = tick;
        slot.used = now;
        (&slot.value, spare)
    }

    /// Removes idle handles, least recently used first, until fewer than
    /// `capacity` remain (room for one more). Busy handles stay, so the pool
    /// may hold more than `capacity` while that many are in use at once.
    pub fn make_room(&mut self, capacity: usize, busy: impl Fn(&V) -> bool) -> Vec<V> {
        if self.map.len() < capacity {
            return Vec::new();
        }
        let excess = self.map.len() + 1 - capacity;
        let mut idle: Vec<(u64, WorkspaceId)> = self
            .map
            .iter()
            .filter(|(_, s)| !busy(&s.value))
            .map(|(id, s)| (s.tick, *id))
            .collect();
        idle.sort_unstable_by_key(|(tick, _)| *tick);
        idle.into_iter()
            .take(excess)
            .filter_map(|(_, id)| self.map.remove(&id).map(|s| s.value))
            .collect()
    }

    /// Removes every idle handle not used for `idle` or longer.
    pub fn take_idle(&mut self, idle: Duration, busy: impl Fn(&V) -> bool) -> Vec<V> {
        let stale: Vec<WorkspaceId> = self
            .map
            .iter()
            .filter(|(_, s)| s.used.elapsed() >= idle && !busy(&s.value))
            .map(|(id, _)| *id)
            .collect();
        stale
            .into_iter()
            .filter_map(|id| self.map.remove(&id).map(|s| s.value))
            .collect()
    }

    pub fn contains(&self, id: &WorkspaceId) -> bool {
        self.map.contains_key(id)
    }

    /// Removes `id`'s handle if `ok` says so.
    pub fn remove_if(&mut self, id: &WorkspaceId, ok: impl Fn(&V) -> bool) -> Option<V> {
        if self.map.get(id).is_some_and(|s| ok(&s.value)) {
            return self.remove(id);
        }
        None
    }

    pub fn remove(&mut self, id: &WorkspaceId) -> Option<V> {
        self.map.remove(id).map(|s| s.value)
    }

    pub fn ids(&self) -> Vec<WorkspaceId> {
        self.map.keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn drain(&mut self) -> Vec<V> {
        self.map.drain().map(|(_, s)| s.value).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<WorkspaceId> {
        (0..n).map(|_| WorkspaceId::generate()).collect()
    }

    #[test]
    fn the_least_recently_used_idle_handle_goes_first() {
        let w = ids(3);
        let mut lru = Lru::default();
        for (i, id) in w.iter().enumerate() {
            lru.insert(*id, i);
        }
        // w[0] used again: w[1] is now the least recently used.
        assert_eq!(lru.get(&w[0]), Some(&0));
        let out = lru.make_room(3, |_| false);
        assert_eq!(out, vec![1]);
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn a_busy_handle_is_never_taken() {
        let w = ids(3);
        let mut lru = Lru::default();
        for (i, id) in w.iter().enumerate() {
            lru.insert(*id, i);
        }
        // Everything busy: nothing goes, the pool overflows instead.
        assert!(lru.make_room(2, |_| true).is_empty());
        assert!(lru.take_idle(Duration::ZERO, |_| true).is_empty());
        assert_eq!(lru.len(), 3);
        // Only the idle one goes.
        let out = lru.take_idle(Duration::ZERO, |v| *v != 2);
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn a_second_insert_keeps_the_first_handle() {
        let id = WorkspaceId::generate();
        let mut lru = Lru::default();
        lru.insert(id, 1);
        let (kept, spare) = lru.insert(id, 2);
        assert_eq!((*kept, spare), (1, Some(2)));
    }
}
