//! Compiles a build id into the binary and the tests: a SHA-256 over every
//! source the binary is built from (src/, assets/, Cargo.toml, Cargo.lock,
//! this file). `aura --version` prints it and the test harness refuses a
//! binary whose id differs from its own, so a target dir shared between
//! checkouts (or `TEST_AURA_BIN`) can never test another checkout's binary.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const INPUTS: [&str; 5] = ["src", "assets", "Cargo.toml", "Cargo.lock", "build.rs"];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = Vec::new();
    for input in INPUTS {
        println!("cargo:rerun-if-changed={input}");
        collect(&root.join(input), &mut files);
    }
    // Sorted relative paths: the id depends on content, not on where the
    // checkout lives or the order the file system lists entries in.
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        let bytes = std::fs::read(file).unwrap_or_default();
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let id = hex(&hash.finalize()[..8]);
    // Not `AURA_*`: cargo also sets this in the environment of what
    // `cargo run` and `cargo test` run, and the config reads `AURA_*`.
    println!("cargo:rustc-env=SOURCES_BUILD_ID={id}");
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect(&entry.path(), out);
        }
    } else if path.is_file() {
        out.push(path.to_owned());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
