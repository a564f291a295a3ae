//! Backup throughput, in-process: fills a workspace with N audit entries
//! (sealed details), then measures in the same run
//! - `vacuum_into`: a raw `VACUUM INTO` of the same databases (the limit),
//! - `backup`: a full Aura backup (snapshot, manifest, tar, zstd, age),
//!   in MB/s of database bytes, with its ratio to the raw copy,
//! - read latency (p50/p99) of point reads while the backup runs, next to the
//!   same reads without it.
//!
//! `BENCH_BACKUP_ENTRIES` sets N (default 300,000).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use aura::access::SystemTask;
use aura::audit::{Actor, NewEntry, RequestMeta};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("BENCH_BACKUP_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    // Backups go to an age recipient made here, set before the config loads.
    let id = age::x25519::Identity::generate();
    // SAFETY: no other thread runs yet.
    unsafe {
        std::env::set_var(
            "AURA_BACKUP__RECIPIENTS",
            format!("[\"{}\"]", id.to_public()),
        )
    };
    let common::Fixture { rt, dir, state, ws } = common::fixture();
    let _guard = rt.enter();
    let tenant = state
        .tenants
        .open(&state.control, &SystemTask::Benchmark.grant(ws))
        .unwrap();
    let meta = RequestMeta::default();
    let mut written = 0;
    while written < n {
        let batch = (n - written).min(20_000);
        tenant
            .write_blocking(|t| {
                for i in 0..batch {
                    t.audit(
                        1_700_000_000 + (written + i) as i64,
                        &NewEntry::new(Actor::System, "record.updated", &meta)
                            .after(serde_json::json!({ "title": format!("invoice {} for guest {}", written + i, i * 7), "amount": i })),
                    )?;
                }
                Ok(())
            })
            .unwrap();
        written += batch;
    }
    let db_bytes: u64 = ["control.db".to_owned(), format!("tenants/{ws}/data.db")]
        .iter()
        .map(|p| {
            std::fs::metadata(dir.path().join("data").join(p))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    let mb = db_bytes as f64 / 1_048_576.0;

    // The limit: a raw VACUUM INTO of the same databases.
    let raw = Instant::now();
    let out = dir.path().join("raw");
    std::fs::create_dir_all(&out).unwrap();
    state
        .control
        .db
        .read(|c| aura::store::vacuum_into_private(c, &out.join("c.db")))
        .unwrap();
    tenant
        .read_blocking(|c, _| aura::store::vacuum_into_private(c, &out.join("t.db")))
        .unwrap();
    let raw_mbs = mb / raw.elapsed().as_secs_f64();

    // Point reads alone, then during a backup.
    let reads = |stop: &AtomicBool, max: usize| {
        let mut lat = Vec::new();
        let mut k = 1i64;
        while !stop.load(Ordering::Relaxed) && lat.len() < max {
            let t = Instant::now();
            tenant
                .read_blocking(|c, _| aura::store::audit::entry(c, k))
                .unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            k = (k * 7919) % n as i64 + 1;
        }
        lat
    };
    let never = AtomicBool::new(false);
    let mut alone = reads(&never, 20_000);

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (summary, mut during) = std::thread::scope(|s| {
        let stop2 = Arc::clone(&stop);
        let reader = s.spawn(move || reads(&stop2, usize::MAX));
        let sum = aura::backup::archive::run(state.backup_deps(), &|_| {}).unwrap();
        stop.store(true, Ordering::Relaxed);
        (sum, reader.join().unwrap())
    });
    let backup_mbs = mb / started.elapsed().as_secs_f64();
    println!("backup_db_size {mb:.1} MiB ({n} entries)");
    println!(
        "backup_archive_size {:.1} MiB",
        summary.size as f64 / 1_048_576.0
    );
    println!("vacuum_into {raw_mbs:.1} MB/s");
    println!(
        "backup_rate {backup_mbs:.1} MB/s (ratio to vacuum_into {:.2})",
        backup_mbs / raw_mbs
    );
    println!("read_p50_alone {:.3} ms", percentile(&mut alone, 0.50));
    println!("read_p99_alone {:.3} ms", percentile(&mut alone, 0.99));
    if !during.is_empty() {
        println!(
            "read_p50_during_backup {:.3} ms",
            percentile(&mut during, 0.50)
        );
        println!(
            "read_p99_during_backup {:.3} ms",
            percentile(&mut during, 0.99)
        );
    }
    let _ = &id;
}
