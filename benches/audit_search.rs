//! Audit search at scale, in-process: fills one workspace chain with N entries
//! (default 1,000,000), then measures
//! - the index build from the sealed rows (time, RSS growth, sealed files),
//! - the first search after a restart (the sealed files reopened, no rebuild),
//! - search latency p50/p95 over a mix of free-text and filtered queries,
//! - durable single-entry append rate with and without a concurrent
//!   search/indexing loop (the indexing must cost writes under 20%).
//!
//! Prints `name value unit` lines. `BENCH_AUDIT_ENTRIES` sets N.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aura::access::SystemTask;
use aura::audit::search::{self, SearchParams};
use aura::audit::{Actor, NewEntry, RequestMeta};
use aura::records::visibility::ReadScope;
use aura::store::audit::SqlFilter;
use rand::Rng;

const WORDS: &[&str] = &[
    "invoice",
    "ledger",
    "guest",
    "reservation",
    "lead",
    "ticket",
    "refund",
    "room",
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "lisbon",
    "mumbai",
    "berlin",
    "paid",
    "overdue",
    "vip",
];
const ACTIONS: &[&str] = &[
    "record.created",
    "record.updated",
    "record.deleted",
    "member.added",
    "member.role_changed",
    "auth.login",
    "auth.login_failed",
    "collection.created",
    "settings.changed",
    "token.created",
];

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let n: usize = std::env::var("BENCH_AUDIT_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let common::Fixture {
        rt: _rt,
        dir: _dir,
        state,
        ws,
    } = common::fixture();
    let tenant = state
        .tenants
        .open(&state.control, &SystemTask::Benchmark.grant(ws))
        .unwrap();
    let meta = RequestMeta {
        ip: Some("10.0.0.7".into()),
        user_agent: Some("bench".into()),
        request_id: None,
    };
    let start_time = state.clock.unix() - 3600 * 24 * 300;

    // Fill in big transactions (the fill itself is not what is measured).
    let fill = Instant::now();
    let mut rng = rand::thread_rng();
    let mut written = 0usize;
    while written < n {
        let batch = (n - written).min(20_000);
        let rows: Vec<(String, String, String)> = (0..batch)
            .map(|_| {
                let a = ACTIONS[rng.gen_range(0..ACTIONS.len())].to_owned();
                let w1 = WORDS[rng.gen_range(0..WORDS.len())];
                let w2 = WORDS[rng.gen_range(0..WORDS.len())];
                (
                    a,
                    format!("{w1} {w2} {}", rng.gen_range(0..100_000)),
                    uuid::Uuid::now_v7().to_string(),
                )
            })
            .collect();
        let base = written;
        tenant
            .write_blocking(|t| {
                for (i, (action, text, target)) in rows.iter().enumerate() {
                    let when = start_time + ((base + i) as i64 * 25_920_000 / n as i64);
                    t.audit(
                        when,
                        &NewEntry::new(Actor::System, action, &meta)
                            .target("record", target)
                            .after(serde_json::json!({ "title": text })),
                    )?;
                }
                Ok(())
            })
            .unwrap();
        written += batch;
    }
    println!(
        "audit_fill {:.0} entries/s ({n} entries)",
        n as f64 / fill.elapsed().as_secs_f64()
    );

    // Build the index from the sealed rows (persisted sealed, as served).
    let key = format!("audit:{ws}");
    let disk = aura::search::index_dir(tenant.dir(), "audit");
    let open_index = || {
        state
            .indexes
            .get_sealed(&key, &disk, tenant.keys().search.clone(), tenant.liveness())
            .unwrap()
    };
    let index = open_index();
    let rss_before = rss_kib();
    let build = Instant::now();
    tenant
        .read_blocking(|c, s| {
            let mut idx = index.lock().unwrap();
            search::catch_up(c, s, &mut idx, None)
        })
        .unwrap();
    println!("audit_index_build {:.1} s", build.elapsed().as_secs_f64());
    println!(
        "audit_index_rss {} MiB",
        (rss_kib().saturating_sub(rss_before)) / 1024
    );

    let on_disk: u64 = std::fs::read_dir(&disk)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    println!("audit_index_files {} MiB", on_disk >> 20);

    // A restart: the index leaves memory, then the first search reopens its
    // sealed files (decrypting them) and catches up; nothing is rebuilt.
    drop(index);
    state.indexes.drop_index(&key);
    let rebuilds = aura::search::rebuilds();
    let rss_before = rss_kib();
    let first = Instant::now();
    let index = open_index();
    let opened = first.elapsed();
    tenant
        .read_blocking(|c, s| {
            let p = SearchParams {
                q: Some("invoice".into()),
                limit: 50,
                ..Default::default()
            };
            search::search(c, s, &index, &p, &ReadScope::everything())
        })
        .unwrap();
    println!(
        "audit_first_search_after_restart {:.0} ms (open and decrypt {:.0} ms)",
        first.elapsed().as_secs_f64() * 1000.0,
        opened.as_secs_f64() * 1000.0
    );
    assert_eq!(aura::search::rebuilds(), rebuilds, "a restart rebuilt");
    println!(
        "audit_index_ram_after_restart {} MiB (decrypted files {} MiB)",
        (rss_kib().saturating_sub(rss_before)) / 1024,
        index.lock().unwrap().file_bytes() >> 20
    );

    // Query mix.
    let mut lat = Vec::new();
    let mut by_kind: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for i in 0..300 {
        let w = WORDS[i % WORDS.len()];
        let p = match i % 5 {
            0 => SearchParams {
                q: Some(w.into()),
                limit: 50,
                ..Default::default()
            },
            1 => SearchParams {
                q: Some(format!("{w} {}", WORDS[(i * 7) % WORDS.len()])),
                limit: 50,
                ..Default::default()
            },
            2 => SearchParams {
                q: Some(w.into()),
                filter: SqlFilter {
                    action: Some("record".into()),
                    ..Default::default()
                },
                limit: 50,
                ..Default::default()
            },
            3 => SearchParams {
                filter: SqlFilter {
                    action: Some(ACTIONS[i % ACTIONS.len()].into()),
                    ..Default::default()
                },
                limit: 50,
                ..Default::default()
            },
            _ => SearchParams {
                filter: SqlFilter {
                    from: Some(start_time + 3600 * 24 * 100),
                    to: Some(start_time + 3600 * 24 * 101),
                    ip: Some("10.0.0.7".into()),
                    ..Default::default()
                },
                limit: 50,
                ..Default::default()
            },
        };
        let t = Instant::now();
        let page = tenant
            .read_blocking(|c, s| search::search(c, s, &index, &p, &ReadScope::everything()))
            .unwrap();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        lat.push(ms);
        by_kind[i % 5].push(ms);
        assert!(!page.items.is_empty(), "query {i} found nothing");
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let kinds = [
        "q_word",
        "q_two_words",
        "q_and_action",
        "action_only",
        "time_and_ip",
    ];
    for (k, mut v) in kinds.iter().zip(by_kind) {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("audit_search_p95_{k} {:.2} ms", percentile(&v, 0.95));
    }
    println!("audit_search_p50 {:.2} ms", percentile(&lat, 0.50));
    println!("audit_search_p95 {:.2} ms", percentile(&lat, 0.95));

    // Durable single-entry appends, alone and beside a searching/indexing loop.
    let append_rate = |secs: u64| {
        let t = Instant::now();
        let mut k = 0u64;
        while t.elapsed() < Duration::from_secs(secs) {
            tenant
                .write_blocking(|tx| {
                    tx.audit(
                        state.clock.unix(),
                        &NewEntry::new(Actor::System, "record.updated", &meta)
                            .after(serde_json::json!({ "title": "invoice vip" })),
                    )
                })
                .unwrap();
            k += 1;
        }
        k as f64 / t.elapsed().as_secs_f64()
    };
    let alone = append_rate(3);
    let stop = Arc::new(AtomicBool::new(false));
    let searcher = {
        let stop = Arc::clone(&stop);
        let tenant = tenant.clone();
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let p = SearchParams {
                    q: Some("invoice".into()),
                    limit: 20,
                    ..Default::default()
                };
                let _ = tenant.read_blocking(|c, s| {
                    search::search(c, s, &index, &p, &ReadScope::everything())
                });
            }
        })
    };
    let with_index = append_rate(3);
    stop.store(true, Ordering::Relaxed);
    let _ = searcher.join();
    println!("audit_append {alone:.1} entries/s");
    println!("audit_append_while_indexing {with_index:.1} entries/s");
    println!(
        "audit_indexing_write_cost {:.1} %",
        (1.0 - with_index / alone) * 100.0
    );
}
