//! Hostile config files: any text, and TOML of real and unknown keys with
//! values of every type, are loaded or refused with an error naming the
//! problem, never a panic.

use proptest::prelude::*;

use super::{Overrides, load};
use crate::error::Error;

fn toml_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        proptest::sample::select(vec![
            "listen",
            "public_url",
            "data_dir",
            "region",
            "residency",
            "master_key_file",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,12}",
    ];
    let value = prop_oneof![
        "\"[^\"\\\\\n]{0,30}\"",
        "-?[0-9]{1,25}",
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        "\\[[0-9, \"a-z]{0,20}\\]",
    ];
    let section = prop_oneof![
        Just(String::new()),
        proptest::sample::select(vec![
            "[limits]",
            "[limits.rate]",
            "[auth]",
            "[audit]",
            "[backup]",
            "[tls]",
            "[mail]",
            "[log]",
            "[integrations]",
            "[data_limits]",
            "[lifecycle]",
        ])
        .prop_map(str::to_owned),
        "\\[[a-z.]{1,12}\\]",
    ];
    proptest::collection::vec((section, key, value), 0..6).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(s, k, v)| format!("{s}\n{k} = {v}\n"))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_config_file_is_loaded_or_refused(text in prop_oneof![".{0,200}", toml_text()]) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("aura.toml");
        std::fs::write(&path, &text).unwrap();
        let ov = Overrides {
            config_path: Some(path),
            data_dir: Some(tmp.path().join("data")),
            listen: None,
            dev: false,
        };
        match load(&ov) {
            Ok(_) => {}
            Err(Error::Config(message)) => prop_assert!(!message.is_empty()),
            Err(e) => prop_assert!(false, "not a config error: {e:?}"),
        }
    }
}
