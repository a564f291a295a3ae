//! Why a workspace is read-only: it is being deleted or moved. Stored in
//! control.db (`workspace_lifecycle`), carried by a grant into the workspace
//! handle, which then refuses writes (`store::lifecycle::Kind`,
//! `access::Frozen`).

use crate::error::{Error, Result};

/// Why a workspace is read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frozen {
    Deleting,
    Moving,
}

impl Frozen {
    pub fn as_str(self) -> &'static str {
        match self {
            Frozen::Deleting => "deleting",
            Frozen::Moving => "moving",
        }
    }

    pub fn parse(s: &str) -> Result<Frozen> {
        match s {
            "deleting" => Ok(Frozen::Deleting),
            "moving" => Ok(Frozen::Moving),
            other => Err(Error::internal(format!("unknown lifecycle kind {other}"))),
        }
    }
}
