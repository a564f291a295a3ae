//! The types a collection's field may have, by their stored names.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Every type's name, as errors list them.
pub const TYPE_NAMES: &str = "text, long_text, integer, decimal, money, boolean, date, datetime, \
email, phone, url, select, multi_select, relation, member, file";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    Money,
    Boolean,
    Date,
    Datetime,
    Email,
    Phone,
    Url,
    Select,
    MultiSelect,
    Relation,
    Member,
    /// Files attached to the record (`model::file_ref`), sealed on disk.
    File,
}

impl FieldType {
    pub const ALL: [FieldType; 16] = [
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Money,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::Select,
        FieldType::MultiSelect,
        FieldType::Relation,
        FieldType::Member,
        FieldType::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Money => "money",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Select => "select",
            FieldType::MultiSelect => "multi_select",
            FieldType::Relation => "relation",
            FieldType::Member => "member",
            FieldType::File => "file",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self> {
        FieldType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::field(field, format!("must be one of {TYPE_NAMES}")))
    }

    /// Types whose values can be unique (equality on a normalised value).
    pub fn can_be_unique(self) -> bool {
        !matches!(
            self,
            FieldType::Boolean | FieldType::MultiSelect | FieldType::LongText | FieldType::File
        )
    }
}
