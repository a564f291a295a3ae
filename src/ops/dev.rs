//! `aura serve --dev`: a demo owner and a demo workspace, so a person can sign
//! in right away. The password is generated fresh at every start and printed.

use crate::app::AppState;
use crate::audit::{Actor, RequestMeta};
use crate::crypto::token::random_password;
use crate::error::Result;
use crate::identity::users::{CreateUser, create_user, set_password};
use crate::store::control;
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
            set_password(state, u.id, password.clone(), Actor::System, &meta).await?;
            u.id
        }
        None => {
            create_user(
                state,
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
    if list_for_user(state, user).await?.is_empty() {
        create_workspace(
            state,
            CreateWorkspace {
                name: DEMO_WORKSPACE.into(),
                owner_email: DEMO_EMAIL.into(),
                region: None,
            },
            Actor::System,
            &meta,
        )
        .await?;
    }
    Ok(DemoLogin {
        email: DEMO_EMAIL,
        password,
    })
}
