//! The keyed pseudonym that replaces a data subject's values: derived from the
//! identifier with the workspace's blind-index key, so the same person gets
//! the same pseudonym in every record and audit entry of the workspace (and
//! aggregates per person still work), while nobody without the key can link
//! it back to the identifier.

use serde_json::{Map, Value};

use crate::crypto::BlindIndex;
use crate::records::schema::{Definition, FieldType};
use crate::records::values::Values;

pub struct Pseudonym {
    token: String,
    digits: String,
}

/// A pii field by id, with its type (what its replacement must look like).
pub struct PiiField {
    pub id: String,
    pub kind: FieldType,
}

impl Pseudonym {
    pub fn new(blind: &BlindIndex, identifier: &str) -> Self {
        let d = blind.compute("subject.pseudonym", &identifier.trim().to_lowercase());
        let token = format!("anon-{}", hex::encode(d.get(..8).unwrap_or(&d)));
        let digits = d
            .iter()
            .skip(8)
            .take(10)
            .map(|b| char::from(b'0' + b % 10))
            .collect();
        Self { token, digits }
    }

    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// Every pii field of a collection, retired ones included (old versions
    /// and audit entries may still hold their values).
    pub fn pii_fields(&self, def: &Definition) -> Vec<PiiField> {
        def.fields
            .iter()
            .filter(|f| f.pii)
            .map(|f| PiiField {
                id: f.id.clone(),
                kind: f.kind,
            })
            .collect()
    }

    /// The value that stands in for the person in a field of this type; None
    /// where no pseudonym fits the type (dates, numbers, choices), and the
    /// value is removed instead.
    fn value_for(&self, kind: FieldType) -> Option<Value> {
        let t = &self.token;
        match kind {
            FieldType::Text | FieldType::LongText => Some(Value::String(t.clone())),
            FieldType::Email => Some(Value::String(format!("{t}@anonymised.invalid"))),
            FieldType::Phone => Some(Value::String(format!("+99{}", self.digits))),
            FieldType::Url => Some(Value::String(format!("https://anonymised.invalid/{t}"))),
            _ => None,
        }
    }

    /// Rewrites a record's values; true when anything changed.
    pub fn apply(&self, pii: &[PiiField], vals: &mut Values) -> bool {
        let mut changed = false;
        for f in pii {
            match (vals.get(&f.id), self.value_for(f.kind)) {
                (None | Some(Value::Null), _) => {}
                (Some(_), Some(v)) => {
                    vals.insert(f.id.clone(), v);
                    changed = true;
                }
                (Some(_), None) => {
                    vals.remove(&f.id);
                    changed = true;
                }
            }
        }
        changed
    }

    /// The same over the values an audit entry keeps (a JSON map by field id).
    pub fn apply_map(&self, pii: &[PiiField], m: &mut Map<String, Value>) -> bool {
        let mut vals: Values = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !self.apply(pii, &mut vals) {
            return false;
        }
        *m = vals.into_iter().collect();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;
    use crate::records::values::phone;

    #[test]
    fn keyed_stable_and_type_shaped() {
        let key = DataKey::generate(1);
        let blind = BlindIndex::new(&key);
        let a = Pseudonym::new(&blind, " Ada@Example.com ");
        let b = Pseudonym::new(&blind, "ada@example.com");
        assert_eq!(a.as_str(), b.as_str());
        assert!(a.as_str().starts_with("anon-") && a.as_str().len() == 21);
        let other = Pseudonym::new(&BlindIndex::new(&DataKey::generate(1)), "ada@example.com");
        assert_ne!(a.as_str(), other.as_str());
        let Some(Value::String(p)) = a.value_for(FieldType::Phone) else {
            panic!("phone pseudonym")
        };
        assert!(phone(&p).is_some(), "{p} is a valid phone");
        assert!(a.value_for(FieldType::Date).is_none());
    }
}
