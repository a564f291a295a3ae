//! Hostile move bundles: any bytes and any age-sealed zstd tar of made-up
//! entries and manifests are refused with a clear error, never a panic.

use proptest::prelude::*;

use super::unpack;
use crate::backup::archive::proptests::{entries, sealed, staged};

const NAMES: &[&str] = &["bundle.json", "data.db"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let id = age::x25519::Identity::generate();
        let (_tmp, file, dir) = staged(&bytes);
        prop_assert!(unpack(&file, &id, &dir).is_err());
    }

    #[test]
    fn any_sealed_bundle_is_answered(entries in entries(NAMES)) {
        let id = age::x25519::Identity::generate();
        let (_tmp, file, dir) = staged(&sealed(&id, &entries));
        let _ = unpack(&file, &id, &dir);
    }
}
