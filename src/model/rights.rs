//! A collection's own record permissions: which roles may read, create,
//! update and delete its records (defaults from the permission table).
//! Part of a stored definition, so it sits in the model, below the store.

use serde::{Deserialize, Serialize};

use super::role::Role;

/// Which roles may do what with a collection's records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    pub read: Vec<Role>,
    pub create: Vec<Role>,
    pub update: Vec<Role>,
    pub delete: Vec<Role>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordAction {
    Read,
    Create,
    Update,
    Delete,
}

impl RecordAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordAction::Read => "record.read",
            RecordAction::Create => "record.create",
            RecordAction::Update => "record.update",
            RecordAction::Delete => "record.delete",
        }
    }
}

impl Default for Permissions {
    /// The permission table's defaults for records (`access::permissions`),
    /// spelled out here because the model sits below the table; a test in
    /// `records::rights_table` keeps the two equal.
    fn default() -> Self {
        use Role::*;
        Self {
            read: vec![Owner, Admin, Manager, Member, Viewer],
            create: vec![Owner, Admin, Manager, Member],
            update: vec![Owner, Admin, Manager, Member],
            delete: vec![Owner, Admin, Manager],
        }
    }
}

impl Permissions {
    pub fn allows(&self, role: Role, action: RecordAction) -> bool {
        let list = match action {
            RecordAction::Read => &self.read,
            RecordAction::Create => &self.create,
            RecordAction::Update => &self.update,
            RecordAction::Delete => &self.delete,
        };
        list.contains(&role)
    }

    pub(super) fn normalize(mut self) -> Self {
        for l in [
            &mut self.read,
            &mut self.create,
            &mut self.update,
            &mut self.delete,
        ] {
            l.sort();
            l.dedup();
        }
        self
    }
}
