//! Embedded, numbered migrations. Each database records what it has applied in
//! `schema_migrations`, and `PRAGMA user_version` mirrors the latest number.

use rusqlite::Connection;

use super::handle::{Sql, TOKEN};
use crate::error::{Error, Result};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const CONTROL: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("migrations/control/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sql: include_str!("migrations/control/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "tokens",
        sql: include_str!("migrations/control/0003_tokens.sql"),
    },
    Migration {
        version: 4,
        name: "mfa",
        sql: include_str!("migrations/control/0004_mfa.sql"),
    },
    Migration {
        version: 5,
        name: "platform",
        sql: include_str!("migrations/control/0005_platform.sql"),
    },
    Migration {
        version: 6,
        name: "invitations",
        sql: include_str!("migrations/control/0006_invitations.sql"),
    },
    Migration {
        version: 7,
        name: "magic_links",
        sql: include_str!("migrations/control/0007_magic_links.sql"),
    },
    Migration {
        version: 8,
        name: "password_reset",
        sql: include_str!("migrations/control/0008_password_reset.sql"),
    },
    Migration {
        version: 9,
        name: "passkeys",
        sql: include_str!("migrations/control/0009_passkeys.sql"),
    },
    Migration {
        version: 10,
        name: "lifecycle",
        sql: include_str!("migrations/control/0010_lifecycle.sql"),
    },
    Migration {
        version: 12,
        name: "audit_redaction",
        sql: include_str!("migrations/control/0012_audit_redaction.sql"),
    },
    Migration {
        version: 13,
        name: "checkpoint_chain",
        sql: include_str!("migrations/control/0013_checkpoint_chain.sql"),
    },
    Migration {
        version: 14,
        name: "token_revocation",
        sql: include_str!("migrations/control/0014_token_revocation.sql"),
    },
    Migration {
        version: 15,
        name: "key_rotation",
        sql: include_str!("migrations/control/0015_key_rotation.sql"),
    },
    Migration {
        version: 16,
        name: "notices",
        sql: include_str!("migrations/control/0016_notices.sql"),
    },
    Migration {
        version: 17,
        name: "sign_in_device",
        sql: include_str!("migrations/control/0017_sign_in_device.sql"),
    },
    Migration {
        version: 18,
        name: "sso",
        sql: include_str!("migrations/control/0018_sso.sql"),
    },
    Migration {
        version: 19,
        name: "scim",
        sql: include_str!("migrations/control/0019_scim.sql"),
    },
    Migration {
        version: 20,
        name: "retention",
        sql: include_str!("migrations/control/0020_retention.sql"),
    },
    Migration {
        version: 21,
        name: "cache_changes",
        sql: include_str!("migrations/control/0021_cache_changes.sql"),
    },
    Migration {
        version: 22,
        name: "idle_stamps",
        sql: include_str!("migrations/control/0022_idle_stamps.sql"),
    },
];

pub const TENANT: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("migrations/tenant/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "audit_indexes",
        sql: include_str!("migrations/tenant/0002_audit_indexes.sql"),
    },
    Migration {
        version: 3,
        name: "records",
        sql: include_str!("migrations/tenant/0003_records.sql"),
    },
    Migration {
        version: 4,
        name: "audit_redaction",
        sql: include_str!("migrations/tenant/0004_audit_redaction.sql"),
    },
    Migration {
        version: 5,
        name: "integrations",
        sql: include_str!("migrations/tenant/0005_integrations.sql"),
    },
    Migration {
        version: 6,
        name: "key_rotation",
        sql: include_str!("migrations/tenant/0006_key_rotation.sql"),
    },
    Migration {
        version: 7,
        name: "incident_acks",
        sql: include_str!("migrations/tenant/0007_incident_acks.sql"),
    },
    Migration {
        version: 8,
        name: "files",
        sql: include_str!("migrations/tenant/0008_files.sql"),
    },
];

pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

pub fn current_version(conn: &dyn Sql) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// True when every migration is recorded: `PRAGMA user_version` (in the
/// header, no table read) is the latest, and the recorded versions include
/// each one. Opening a cold workspace then takes no write lock and runs no
/// DDL (issue 23: the first request to a cold workspace stays cheap).
pub(in crate::store) fn up_to_date(conn: &Connection, migrations: &[Migration]) -> Result<bool> {
    if current_version(conn)? != latest(migrations) {
        return Ok(false);
    }
    let mut stmt = conn.prepare("SELECT version FROM schema_migrations")?;
    let applied: std::collections::HashSet<i64> = stmt
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(migrations.iter().all(|m| applied.contains(&m.version)))
}

pub(in crate::store) fn apply(conn: &mut Connection, migrations: &[Migration]) -> Result<()> {
    if up_to_date(conn, migrations)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT;",
    )?;
    let have: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if have > latest(migrations) {
        return Err(Error::Config(format!(
            "database schema version {have} is newer than this binary knows ({}); upgrade aura",
            latest(migrations)
        )));
    }
    // Every migration not yet recorded, in order, not only those above the
    // newest: branches numbered theirs side by side (13 beside 14), and a
    // database that got the higher one first must still get the lower one.
    let applied: std::collections::HashSet<i64> = {
        let mut stmt = tx.prepare("SELECT version FROM schema_migrations")?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, now],
        )?;
        tx.pragma_update(None, "user_version", m.version.max(have))?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Migration = Migration {
        version: 1,
        name: "one",
        sql: "CREATE TABLE one (x INTEGER) STRICT;",
    };
    const SECOND: Migration = Migration {
        version: 2,
        name: "two",
        sql: "CREATE TABLE two (x INTEGER) STRICT;",
    };
    const THIRD: Migration = Migration {
        version: 3,
        name: "three",
        sql: "CREATE TABLE three (x INTEGER) STRICT;",
    };

    #[test]
    fn a_lower_migration_added_later_is_still_applied() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, &[FIRST, THIRD]).unwrap();
        apply(&mut conn, &[FIRST, SECOND, THIRD]).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        conn.execute("INSERT INTO two (x) VALUES (1)", []).unwrap();
        assert_eq!(current_version(&conn).unwrap(), 3);
        // Applying again changes nothing.
        apply(&mut conn, &[FIRST, SECOND, THIRD]).unwrap();
    }

    #[test]
    fn a_current_database_is_not_migrated_again_but_a_missing_lower_one_is() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, &[FIRST, THIRD]).unwrap();
        assert!(up_to_date(&conn, &[FIRST, THIRD]).unwrap());
        // user_version is already 3, yet 2 is missing: not up to date.
        assert!(!up_to_date(&conn, &[FIRST, SECOND, THIRD]).unwrap());
        apply(&mut conn, &[FIRST, SECOND, THIRD]).unwrap();
        assert!(up_to_date(&conn, &[FIRST, SECOND, THIRD]).unwrap());
    }

    #[test]
    fn every_control_and_tenant_migration_applies_in_order() {
        for set in [CONTROL, TENANT] {
            let mut conn = Connection::open_in_memory().unwrap();
            apply(&mut conn, set).unwrap();
            assert_eq!(current_version(&conn).unwrap(), latest(set));
            let listed: Vec<i64> = set.iter().map(|m| m.version).collect();
            let mut sorted = listed.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                listed, sorted,
                "migrations must be listed in order, once each"
            );
        }
    }
}
