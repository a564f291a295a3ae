//! The `aura` binary: parse the command line and hand over to `aura::cli`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a request allocates and frees many
/// small objects across threads, where glibc's arenas showed as ~15 % of the
/// server's time in profiles (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = aura::cli::Cli::parse();
    // Test builds only: SQLite files on a layer that loses unsynced writes
    // when the process dies (tests/durability.rs). Before any connection opens.
    #[cfg(debug_assertions)]
    match aura::store::power_cut::install_if_requested() {
        Ok(true) => eprintln!(
            "warning: {} is set: unsynced SQLite writes are lost at exit (test layer)",
            aura::store::power_cut::ENV
        ),
        Ok(false) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    // No transparent huge pages: mimalloc asks for them on its arenas, and
    // a 2 MiB page stays resident whole while a few KiB of it are in use.
    // With them, ~20-30 MiB of an idle server's RSS was mostly-free huge
    // pages (issue 23, docs/benchmarks.md).
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("warning: cannot turn transparent huge pages off: {e}");
    }
    // Workers run under SCHED_BATCH like the reader threads (see
    // `store::readers::batch_policy`): measured 23 % more creates at 64
    // clients and 15 % more `GET /me` on one core (docs/benchmarks.md).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(aura::store::readers::batch_policy)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(aura::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_disk_full() {
                eprintln!(
                    "the disk is full: free space (see \"When the disk fills\" in docs/operations.md), then run the command again"
                );
            }
            ExitCode::FAILURE
        }
    }
}
