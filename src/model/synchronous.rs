//! SQLite's `synchronous` setting, as `[storage] synchronous` names it: a
//! config value the store applies to every connection it opens.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Full,
    Extra,
    Normal,
}
