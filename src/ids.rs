//! Identifier newtypes, so a user id can never be passed where a workspace id
//! belongs. They are UUIDv7 (time-ordered, good for SQLite b-trees) and render
//! in their hyphenated form on disk and in URLs.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($name:ident, $what:literal) => {
        id_type!(@def $name, $what, false);
    };
    // Only the hyphenated lower-case form names one: another spelling of the
    // same UUID answers 404, as it did while these ids were plain strings.
    ($name:ident, $what:literal, canonical) => {
        id_type!(@def $name, $what, true);
    };
    (@def $name:ident, $what:literal, $canonical:expr) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::error::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .ok()
                    .filter(|u| !$canonical || u.hyphenated().to_string() == s)
                    .map(Self)
                    .ok_or(crate::error::Error::NotFound($what))
            }
        }
    };
}

id_type!(WorkspaceId, "workspace");
id_type!(UserId, "user");
id_type!(CollectionId, "collection", canonical);
id_type!(RecordId, "record", canonical);
id_type!(ExportId, "export", canonical);
id_type!(TeamId, "team");
id_type!(TokenId, "token");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let w = WorkspaceId::generate();
        assert_eq!(w.to_string().parse::<WorkspaceId>().ok(), Some(w));
        assert!("../etc/passwd".parse::<WorkspaceId>().is_err());
    }

    #[test]
    fn record_ids_take_only_the_canonical_spelling() {
        let c = CollectionId::generate();
        assert_eq!(c.to_string().parse::<CollectionId>().ok(), Some(c));
        let upper = c.to_string().to_uppercase();
        assert!(upper.parse::<CollectionId>().is_err());
        let simple = c.as_uuid().simple().to_string();
        assert!(simple.parse::<RecordId>().is_err());
        assert!(matches!(
            "x".parse::<ExportId>(),
            Err(crate::error::Error::NotFound("export"))
        ));
    }
}
