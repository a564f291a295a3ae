//! A collection's record permissions now live in `model::rights` (part of a
//! stored definition); this path re-exports them for the domain code.

pub use crate::model::rights::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::permissions::{Action, Resource, roles_for};

    /// The model sits below the permission table, so it spells the record
    /// defaults out; this keeps them equal to the table's record rows.
    #[test]
    fn record_defaults_follow_the_permission_table() {
        let d = Permissions::default();
        assert_eq!(d.read, roles_for(Resource::Record, Action::Read));
        assert_eq!(d.create, roles_for(Resource::Record, Action::Create));
        assert_eq!(d.update, roles_for(Resource::Record, Action::Update));
        assert_eq!(d.delete, roles_for(Resource::Record, Action::Delete));
    }
}
