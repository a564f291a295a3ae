//! `aura serve --dev`: a demo owner and a demo workspace, so a person can sign
//! in right away. The password is generated fresh at every start and printed.

use std::collections::HashSet;

use serde_json::json;

use crate::access::SystemTask;
use crate::app::AppState;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::random_password;
use crate::error::Result;
use crate::identity::users::{CreateUser, create_user, set_password};
use crate::ids::WorkspaceId;
use crate::records::schema::{FieldInput, build_definition};
use crate::store::control;
use crate::store::records::{self as rstore, CollectionRow};
use crate::workspace::{CreateWorkspace, create_workspace, list_for_user};

pub const DEMO_EMAIL: &str = "demo@aura.localhost";
pub const DEMO_WORKSPACE: &str = "Demo workspace";

pub struct DemoLogin {
    pub email: &'static str,
    pub password: String,
}

pub async fn bootstrap(state: &AppState) -> Result<DemoLogin> {
    let meta = RequestMeta::default();
    let password = random_password();
    let keys = state.control.keys.clone();
    let existing = state
        .control
        .db
        .read_async(move |c| control::find_user_by_email(c, &keys, DEMO_EMAIL))
        .await?;
    let user = match existing {
        Some(u) => {
            set_password(&state.deps(), u.id, password.clone(), Actor::System, &meta).await?;
            u.id
        }
        None => {
            create_user(
                &state.deps(),
                CreateUser {
                    email: DEMO_EMAIL.into(),
                    name: Some("Demo Owner".into()),
                    password: password.clone(),
                    platform_admin: true,
                },
                Actor::System,
                &meta,
            )
            .await?
        }
    };
    if list_for_user(&state.control, user).await?.is_empty() {
        let ws = create_workspace(
            state.platform(),
            CreateWorkspace {
                name: DEMO_WORKSPACE.into(),
                owner_email: DEMO_EMAIL.into(),
                region: None,
            },
            Actor::System,
            &meta,
        )
        .await?;
        demo_records(state, ws, &meta).await?;
    }
    Ok(DemoLogin {
        email: DEMO_EMAIL,
        password,
    })
}

/// A small guest ledger, so the records UI has something to show.
async fn demo_records(state: &AppState, ws: WorkspaceId, meta: &RequestMeta) -> Result<()> {
    let field = |name: &str, kind: &str, options: &[&str]| FieldInput {
        name: name.into(),
        kind: kind.into(),
        searchable: matches!(kind, "text" | "email"),
        pii: matches!(kind, "email"),
        required: name == "Guest",
        options: options.iter().map(|o| o.to_string()).collect(),
        currency: (kind == "money").then(|| "EUR".into()),
        ..Default::default()
    };
    let def = build_definition(
        "Guest ledger",
        &[
            field("Guest", "text", &[]),
            field("Email", "email", &[]),
            field("Arrival", "date", &[]),
            field("Nights", "integer", &[]),
            field("Deposit", "money", &[]),
            field("Status", "select", &["Booked", "Checked in", "Checked out"]),
        ],
        None,
        &HashSet::new(),
    )?;
    let ids: Vec<String> = def.fields.iter().map(|f| f.id.clone()).collect();
    let coll = CollectionRow {
        id: uuid::Uuid::now_v7().to_string(),
        team_id: None,
        def: def.into(),
        created_at: crate::records::now_ms(&state.clock),
        updated_at: crate::records::now_ms(&state.clock),
    };
    let rows = [
        (
            "Ada Lovelace",
            "ada@example.com",
            "2026-12-01",
            3,
            15000,
            "Booked",
        ),
        (
            "Grace Hopper",
            "grace@example.com",
            "2026-12-03",
            2,
            9900,
            "Checked in",
        ),
        (
            "Alan Turing",
            "alan@example.com",
            "2026-11-20",
            5,
            25000,
            "Checked out",
        ),
    ];
    let db = state
        .tenants
        .open_async(&state.control, SystemTask::DevSeed.grant(ws))
        .await?;
    let now = state.clock.unix();
    let ms = coll.created_at;
    let meta = meta.clone();
    db.write(move |t| {
        rstore::save_collection(t, t.sealer, &coll)?;
        t.audit(
            now,
            &NewEntry::new(Actor::System, "collection.created", &meta)
                .target("collection", &coll.id),
        )?;
        for (i, (guest, email, arrival, nights, deposit, status)) in rows.into_iter().enumerate() {
            let mut v = crate::records::values::Values::new();
            v.insert(ids[0].clone(), json!(guest));
            v.insert(ids[1].clone(), json!(email));
            v.insert(ids[2].clone(), json!(arrival));
            v.insert(ids[3].clone(), json!(nights));
            v.insert(
                ids[4].clone(),
                json!({"amount_minor": deposit, "currency": "EUR"}),
            );
            v.insert(ids[5].clone(), json!(status));
            let rec = rstore::insert_record(t, &coll, v, ms + i as i64, None)?;
            t.audit(
                now,
                &NewEntry::new(Actor::System, "record.created", &meta)
                    .target("record", &rec.id)
                    .after(json!({"collection": coll.id, "version": 1})),
            )?;
        }
        Ok(())
    })
    .await
}
