//! In-process limit for the record list: the same SELECT of one page of 20
//! records plus decrypting each, in a loop on one thread, with no HTTP and no
//! access checks. `scripts/bench` compares `GET .../records?limit=20` with it.
//! Also measures the in-memory search index's rebuild over N records (the
//! cost a restart or a schema change pays; see docs/search.md).
//!
//! Prints `name value unit` lines.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aura::access::SystemTask;
use aura::records::schema::{FieldInput, build_definition};
use aura::store::records::{self as rstore, CollectionRow, Sort};
use serde_json::json;

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let index_records: usize = std::env::var("BENCH_INDEX_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let f = common::fixture();
    let state = &f.state;
    let db = state
        .tenants
        .open(&state.control, &SystemTask::Benchmark.grant(f.ws))
        .unwrap();
    let field = |name: &str, kind: &str| FieldInput {
        name: name.into(),
        kind: kind.into(),
        searchable: kind == "text",
        ..Default::default()
    };
    let def = build_definition(
        "Bench",
        &[
            field("Title", "text"),
            field("Count", "integer"),
            field("Notes", "long_text"),
        ],
        None,
        &HashSet::new(),
    )
    .unwrap();
    let coll = CollectionRow {
        id: uuid::Uuid::now_v7().to_string(),
        team_id: None,
        def: def.clone().into(),
        created_at: 0,
        updated_at: 0,
    };
    let ids: Vec<String> = def.fields.iter().map(|f| f.id.clone()).collect();
    db.write_blocking(|t| {
        rstore::save_collection(t, t.sealer, &coll)?;
        for i in 0..index_records {
            let mut vals = aura::records::values::Values::new();
            vals.insert(
                ids[0].clone(),
                json!(format!("bench record {i} lorem ipsum")),
            );
            vals.insert(ids[1].clone(), json!(i));
            vals.insert(
                ids[2].clone(),
                json!("dolor sit amet, consectetur adipiscing elit"),
            );
            rstore::insert_record(t, &coll, vals, i as i64, None)?;
        }
        Ok(())
    })
    .unwrap();

    let budget = Duration::from_secs(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        let page = db
            .read_blocking(|c, s| {
                rstore::list_page(c, s, &coll.id, Sort::CreatedDesc, None, 20, true)
            })
            .unwrap()
            .0;
        assert_eq!(page.len(), 20);
        n += 1;
    }
    println!(
        "list_inprocess {:.0} lists/s",
        n as f64 / start.elapsed().as_secs_f64()
    );

    // Search: the first query builds the in-memory index from the sealed rows.
    let rss = || -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    };
    let finder = aura::records::search::Finder {
        indexes: &state.indexes,
        bounds: &state.bounds,
    };
    let before = rss();
    let start = Instant::now();
    let hits =
        f.rt.block_on(aura::records::search::search(
            finder, &db, &coll.id, "lorem", None, 10,
        ))
        .unwrap();
    let build = start.elapsed();
    assert_eq!(hits.len(), 10);
    let start = Instant::now();
    let q = 200;
    for i in 0..q {
        f.rt.block_on(aura::records::search::search(
            finder,
            &db,
            &coll.id,
            &format!("{}", i * 7),
            None,
            10,
        ))
        .unwrap();
    }
    println!(
        "search_index_build {:.2} s for {index_records} records",
        build.as_secs_f64()
    );
    println!(
        "search_index_rss {:.0} MiB for {index_records} records",
        rss().saturating_sub(before) as f64 / 1024.0
    );
    println!(
        "search_query {:.2} ms per query",
        start.elapsed().as_secs_f64() * 1000.0 / q as f64
    );
}
