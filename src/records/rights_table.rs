//! The model sits below the permission table (`access::permissions`), so
//! `model::rights` spells the record defaults out; this keeps them equal to
//! the table's record rows.

use crate::access::permissions::{Action, Resource, roles_for};
use crate::model::rights::Permissions;

#[test]
fn record_defaults_follow_the_permission_table() {
    let d = Permissions::default();
    assert_eq!(d.read, roles_for(Resource::Record, Action::Read));
    assert_eq!(d.create, roles_for(Resource::Record, Action::Create));
    assert_eq!(d.update, roles_for(Resource::Record, Action::Update));
    assert_eq!(d.delete, roles_for(Resource::Record, Action::Delete));
}
