//! Text fields that several request bodies share, each a type whose schema
//! states its length and pattern once: a body that takes a name declares
//! `pub name: Name`, not the pattern again. `JsonBody` reads them with serde
//! (`#[serde(transparent)]`, so the domain's own checks answer with the
//! field's name); poem-openapi's parser, where it runs, checks the schema.

use std::borrow::Cow;
use std::ops::Deref;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::validation::{MaxLength, MinLength, Pattern, Validator, ValidatorMeta};
use serde::Deserialize;
use serde_json::Value;

/// At least one visible character and no control characters.
const VISIBLE: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// An address as `identity::users::validate_email` takes it: something, `@`,
/// a domain with a dot, white space around allowed.
const EMAIL: &str = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@]+@[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@.][^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@]*\.[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@.][\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

/// Declares a text field type: `Name(min..=max, PATTERN)`.
macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident($min:expr, $max:expr, $pattern:expr)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            const MIN: Option<usize> = $min;
            const MAX: usize = $max;
            const PATTERN: &'static str = $pattern;
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = String;
            type RawElementValueType = String;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            /// What `#[oai(validator(min_length, max_length, pattern))]` on
            /// a `String` field would give.
            fn schema_ref() -> MetaSchemaRef {
                let mut schema = MetaSchema::new("string");
                if let Some(min) = Self::MIN {
                    MinLength::new(min).update_meta(&mut schema);
                }
                MaxLength::new(Self::MAX).update_meta(&mut schema);
                Pattern::new(Self::PATTERN).update_meta(&mut schema);
                MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&String> {
                Some(&self.0)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
                Box::new(std::iter::once(&self.0))
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                let s = String::parse_from_json(value).map_err(ParseError::propagate)?;
                let fits = Self::MIN.is_none_or(|min| MinLength::new(min).check(&s))
                    && MaxLength::new(Self::MAX).check(&s)
                    && Pattern::new(Self::PATTERN).check(&s);
                if fits {
                    Ok(Self(s))
                } else {
                    Err(ParseError::custom("does not match the field's schema"))
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

text_field!(
    /// A name a person gives something (a workspace, a token, a passkey, a
    /// person's own): 1 to 200 characters, no control characters.
    Name(None, 200, VISIBLE)
);

text_field!(
    /// A collection's or a team's name: 1 to 64 characters, no control
    /// characters.
    ShortName(None, 64, VISIBLE)
);

text_field!(
    /// An email address (at most 254 characters).
    Email(None, 254, EMAIL)
);

text_field!(
    /// `https://...` (`http://` only to an IP the operator allow-listed).
    HttpsUrl(None, 2048, r"^https://[^\s/?#]+[^\s]*$")
);

text_field!(
    /// A secret an integration sends (an API key or token): 8 to 4096
    /// characters, no control characters.
    SecretValue(Some(8), 4096, VISIBLE)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_checks_what_the_schema_says() {
        let ok = |v: &str| Name::parse_from_json(Some(Value::String(v.into()))).is_ok();
        assert!(ok("Acme"));
        assert!(!ok(" "));
        assert!(!ok("a\u{7}b"));
        assert!(!ok(&"x".repeat(201)));
        let secret = |v: &str| SecretValue::parse_from_json(Some(Value::String(v.into()))).is_ok();
        assert!(!secret("short"));
        assert!(secret("long enough"));
    }
}
