use super::*;

fn input(name: &str, kind: &str) -> FieldInput {
    FieldInput {
        name: name.into(),
        kind: kind.into(),
        ..Default::default()
    }
}

#[test]
fn builds_and_names_every_problem() {
    let none = HashSet::new();
    let d = build_definition("Guests", &[input("Name", "text")], None, &none).unwrap();
    assert_eq!(d.fields[0].kind, FieldType::Text);
    assert!(d.fields[0].id.starts_with("f_"));
    let Err(Error::Validation(e)) = build_definition(
        "",
        &[
            input("A", "nope"),
            input("B", "select"),
            input("b", "text"),
            input("R", "relation"),
            input("M", "money"),
        ],
        None,
        &none,
    ) else {
        panic!("expected validation errors")
    };
    let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"name"));
    assert!(fields.contains(&"fields[0].type"));
    assert!(fields.contains(&"fields[1].options"));
    assert!(fields.contains(&"fields[2].name"));
    assert!(fields.contains(&"fields[3].collection"));
    assert!(fields.contains(&"fields[4].currency"));
}

#[test]
fn changes_keep_ids_and_refuse_type_changes() {
    let none = HashSet::new();
    let d = build_definition("T", &[input("Amount", "integer")], None, &none).unwrap();
    let id = d.fields[0].id.clone();
    let mut rename = input("Total", "integer");
    rename.id = Some(id.clone());
    let d2 = apply_change(&d, None, Some(&[rename]), None, &none).unwrap();
    assert_eq!(d2.fields[0].id, id);
    assert_eq!(d2.fields[0].name, "Total");
    let mut retype = input("Total", "text");
    retype.id = Some(id);
    assert!(apply_change(&d2, None, Some(&[retype]), None, &none).is_err());
}
