//! Hostile backup archives: any bytes, any age file, and any age-sealed
//! zstd tar of made-up entries and manifests are refused with a clear error
//! (or, for a consistent made-up archive, unpacked only inside the target
//! dir), never a panic. `sealed` also serves the move-bundle tests.

use std::io::Write;

use proptest::prelude::*;

use super::unpack;

/// An entry: its path (hostile ones included) and its bytes.
pub fn entries(names: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        proptest::sample::select(names).prop_map(str::to_owned),
        "(\\.\\./|/|tenants/)[a-z0-9./-]{0,24}",
        ".{0,16}",
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        manifest().prop_map(String::into_bytes),
    ];
    proptest::collection::vec((name, body), 0..5)
}

/// Manifest-shaped JSON with made-up values.
pub fn manifest() -> impl Strategy<Value = String> {
    (
        any::<i64>(),
        ".{0,12}",
        proptest::collection::vec(("[a-z./]{0,20}", any::<u64>(), "[0-9a-f]{0,64}"), 0..3),
    )
        .prop_map(|(format, id, files)| {
            let files: Vec<serde_json::Value> = files
                .into_iter()
                .map(|(path, size, sha)| serde_json::json!({"path": path, "size": size, "sha256": sha}))
                .collect();
            serde_json::json!({"format": format, "id": id, "files": files, "workspaces": []}).to_string()
        })
}

/// The entries as a zstd tar, sealed with age to `identity`.
pub fn sealed(identity: &age::x25519::Identity, entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..` and absolute paths: write the raw name.
        let raw = name.as_bytes();
        let n = raw.len().min(99);
        h.as_old_mut().name[..n].copy_from_slice(&raw[..n]);
        h.set_cksum();
        tar.append(&h, body.as_slice()).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let z = zstd::encode_all(tar.as_slice(), 1).unwrap();
    let recipient = identity.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(&z).unwrap();
    w.finish().unwrap();
    out
}

/// Hostile bytes in a file of a temp dir, and the dir to unpack into.
pub fn staged(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.age");
    std::fs::write(&file, bytes).unwrap();
    let dir = tmp.path().join("out");
    (tmp, file, dir)
}

const NAMES: &[&str] = &[
    "manifest.json",
    "control.db",
    "tenants/01a24416-bb05-7573-96af-0264cd7f5222/data.db",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..1024), sealed_raw in any::<bool>()) {
        let id = age::x25519::Identity::generate();
        let bytes = if sealed_raw { seal_raw(&id, &bytes) } else { bytes };
        let (tmp, file, dir) = staged(&bytes);
        prop_assert!(unpack(&file, &id, &dir, None).is_err());
        drop(tmp);
    }

    #[test]
    fn any_sealed_archive_is_refused_or_stays_inside(entries in entries(NAMES)) {
        let id = age::x25519::Identity::generate();
        let (tmp, file, dir) = staged(&sealed(&id, &entries));
        if unpack(&file, &id, &dir, None).is_ok() {
            // Nothing was written outside the target dir.
            let outside: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten()
                .map(|e| e.file_name()).filter(|n| n != "in.age" && n != "out").collect();
            prop_assert!(outside.is_empty(), "{outside:?}");
        }
    }
}

/// `bytes` sealed with age as they are (not a zstd tar).
fn seal_raw(identity: &age::x25519::Identity, bytes: &[u8]) -> Vec<u8> {
    let recipient = identity.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap();
    out
}
