//! In-process limits that the HTTP figures are compared against, measured in
//! the same run on the same machine (see scripts/bench):
//! - `sqlite_full_insert`: a raw rusqlite single-row insert loop, one
//!   transaction per row, WAL + synchronous=FULL, the same pragmas Aura uses;
//! - `argon2_ceiling`: argon2id hashes per second at Aura's default cost, on
//!   one core.
//!
//! Prints one `name value unit` line per figure.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

fn sqlite_full_insert(budget: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;
         CREATE TABLE t (id TEXT PRIMARY KEY, payload BLOB NOT NULL, created_at INTEGER NOT NULL);",
    )
    .unwrap();
    // About the size of a sealed small record: header + nonce + 200 bytes + tag.
    let payload = vec![0xA5u8; 245];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        conn.execute(
            "INSERT INTO t (id, payload, created_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![uuid::Uuid::now_v7().to_string(), payload, n as i64],
        )
        .unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn argon2_ceiling(budget: Duration) -> f64 {
    let params = Params::new(19_456, 2, 1, None).unwrap();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let budget = Duration::from_secs(secs);
    println!(
        "sqlite_full_insert {:.1} rows/s",
        sqlite_full_insert(budget)
    );
    println!("argon2_ceiling {:.2} hashes/s", argon2_ceiling(budget));
}
