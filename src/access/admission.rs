//! A verified `Grant` is the only source of the store's `Admission` (leave to
//! open one workspace's database): the store takes the plain value, so it
//! need not import this layer, and scripts/check-layers keeps
//! `Admission::new` inside src/access/.

use super::Grant;
use crate::store::admission::Admission;

impl From<&Grant> for Admission {
    fn from(g: &Grant) -> Self {
        Admission::new(g.workspace(), g.frozen())
    }
}

impl From<Grant> for Admission {
    fn from(g: Grant) -> Self {
        Admission::from(&g)
    }
}
