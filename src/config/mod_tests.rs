use super::*;

/// The store opens every database with these (its own unit tests use the
/// same values through `store::test_options`).
#[test]
fn storage_defaults_are_durable() {
    let o = crate::store::DbOptions::from_config(&StorageConfig::default());
    assert_eq!(o.synchronous, Synchronous::Full);
    assert_eq!(o.busy_timeout, std::time::Duration::from_millis(5_000));
}

#[test]
fn documented_defaults_parse_to_the_built_in_defaults() {
    let parsed: FileConfig = Figment::from(Toml::string(DOCUMENTED_DEFAULTS))
        .extract()
        .unwrap();
    assert_eq!(parsed, FileConfig::default());
}

#[test]
fn unknown_key_names_key_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("aura.toml");
    std::fs::write(
        &p,
        "listen = \"127.0.0.1:1\"\n[storage]\nsynchronus = \"full\"\n",
    )
    .unwrap();
    let err = load(&Overrides {
        config_path: Some(p.clone()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("storage.synchronus"), "{err}");
    assert!(err.contains(&format!("{}:3", p.display())), "{err}");
}
