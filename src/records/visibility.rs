//! The one rule for record values wherever they travel: a person sees a
//! record's values only where they may read that record. `may_read` is the
//! records API's own read check (the collection is visible to the caller, then
//! its record permissions let the caller's role read), and every other place
//! that shows values it holds about records (the audit log's entries, search
//! and export, the workspace export, data-subject search and export) asks the
//! same question through a `ReadScope` built from it. A workspace owner or
//! admin who needs a team's data joins the team, which is itself audited.

use std::collections::HashSet;

use super::effective_role_by;
use super::schema::RecordAction;
use crate::access::enter::TenantHandle;
use crate::access::{Grant, Role, TeamPlace};
use crate::crypto::Sealer;
use crate::error::Result;
use crate::store::Sql;
use crate::store::cache::{self, DefCache};
use crate::store::records::CollectionRow;

/// May a reader whose team-aware role is `role_with` (see
/// `records::effective_role`: raised by a team place, capped by a token's
/// scope), on `teams` (team id, team role), read the records of `coll`? The
/// records API answers exactly this: 404 when `effective_role` finds the
/// collection is not theirs to see, 403 when the collection's own
/// permissions do not let that role read.
pub fn may_read(
    coll: &CollectionRow,
    teams: &[(String, String)],
    role_with: impl Fn(Option<TeamPlace>) -> Role,
) -> bool {
    effective_role_by(coll, teams, role_with)
        .is_some_and(|r| coll.def.permissions.allows(r, RecordAction::Read))
}

/// Who reads: the request's user (for their teams), role and grant (whose
/// token scope caps every role).
#[derive(Clone, Debug)]
pub struct Reader {
    user: String,
    role: Role,
    grant: Grant,
}

impl Reader {
    pub fn of(ctx: &TenantHandle) -> Self {
        Self {
            user: ctx.user.to_string(),
            role: ctx.role,
            grant: ctx.grant.clone(),
        }
    }

    fn role_with(&self, place: Option<TeamPlace>) -> Role {
        self.grant.role_with(place).unwrap_or(self.role)
    }

    /// The collections this reader may read, as of this read (blocking; call
    /// it inside the same read as what it filters). `defs` is the
    /// workspace's definition cache (`TenantDb::defs`).
    pub fn scope(&self, conn: &dyn Sql, sealer: &Sealer, defs: &DefCache) -> Result<ReadScope> {
        let teams = crate::store::teams::teams_of(conn, &self.user)?;
        let readable = cache::list_collections(conn, sealer, defs)?
            .into_iter()
            .filter(|c| may_read(c, &teams, |p| self.role_with(p)))
            .map(|c| c.id)
            .collect();
        Ok(ReadScope {
            readable: Some(readable),
        })
    }
}

/// The collections whose record values a reader may see. A collection that no
/// longer exists (deleted) is nobody's to read.
#[derive(Clone, Debug)]
pub struct ReadScope {
    /// `None`: everything (the operator at the server's shell).
    readable: Option<HashSet<String>>,
}

impl ReadScope {
    /// No reader to limit: the operator's own exports and moves.
    pub fn everything() -> Self {
        Self { readable: None }
    }

    /// `reader`'s scope, or everything when there is no reader.
    pub fn of(
        reader: Option<&Reader>,
        conn: &dyn Sql,
        sealer: &Sealer,
        defs: &DefCache,
    ) -> Result<Self> {
        match reader {
            Some(r) => r.scope(conn, sealer, defs),
            None => Ok(Self::everything()),
        }
    }

    pub fn may_read(&self, collection_id: &str) -> bool {
        self.readable
            .as_ref()
            .is_none_or(|set| set.contains(collection_id))
    }

    /// The readable collections' ids, or `None` when every one is.
    pub fn readable(&self) -> Option<&HashSet<String>> {
        self.readable.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_reads_every_collection_and_a_scope_only_its_own() {
        assert!(ReadScope::everything().may_read("any"));
        let s = ReadScope {
            readable: Some(["a".to_owned()].into_iter().collect()),
        };
        assert!(s.may_read("a"));
        assert!(!s.may_read("b"));
        assert!(!s.may_read(""));
    }
}
