//! The SQL of the operator's views: readiness and watchdog probes, and the
//! counts and times the public trust page states.

use super::handle::{Sql, TOKEN};
use crate::error::Result;

/// How many platform key sets control.db holds (ready once there is one).
pub fn platform_key_count(c: &dyn Sql) -> Result<i64> {
    let c = c.conn(TOKEN);
    Ok(c.query_row("SELECT count(*) FROM platform_keys", [], |r| r.get(0))?)
}

/// The cheapest read that proves the database answers.
pub fn ping(c: &dyn Sql) -> Result<i64> {
    let c = c.conn(TOKEN);
    Ok(c.query_row("SELECT 1", [], |r| r.get(0))?)
}

/// When the platform's first key set was made.
pub fn first_platform_key_at(c: &dyn Sql) -> Result<Option<i64>> {
    let c = c.conn(TOKEN);
    Ok(
        c.query_row("SELECT min(created_at) FROM platform_keys", [], |r| {
            r.get(0)
        })?,
    )
}

/// The newest verification round: its time, and whether every chain in it
/// passed.
pub fn latest_verification_round(c: &dyn Sql) -> Result<Option<(i64, bool)>> {
    let c = c.conn(TOKEN);
    let (t, ok) = c.query_row(
        "SELECT max(time), min(ok) FROM audit_verifications WHERE time = (SELECT max(time) FROM audit_verifications)",
        [],
        |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<bool>>(1)?)),
    )?;
    Ok(t.zip(ok))
}

pub fn shredded_count(c: &dyn Sql) -> Result<i64> {
    let c = c.conn(TOKEN);
    Ok(c.query_row("SELECT count(*) FROM shredded_workspaces", [], |r| r.get(0))?)
}

/// Active workspaces that require two-factor sign-in.
pub fn requiring_mfa_count(c: &dyn Sql) -> Result<i64> {
    let c = c.conn(TOKEN);
    Ok(c.query_row(
        "SELECT count(*) FROM workspaces WHERE require_mfa = 1 AND state = 'active'",
        [],
        |r| r.get(0),
    )?)
}

pub fn workspace_count(c: &dyn Sql) -> Result<i64> {
    let c = c.conn(TOKEN);
    Ok(c.query_row("SELECT count(*) FROM workspaces", [], |r| r.get(0))?)
}
