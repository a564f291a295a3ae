//! The fixture the in-process benches share: a fresh appliance in a temp dir
//! with one owner and one workspace.
#![allow(dead_code)]

use std::sync::Arc;

use aura::app::AppState;
use aura::audit::{Actor, RequestMeta};
use aura::clock::SystemClock;
use aura::config::{self, Overrides};
use aura::crypto::MasterKey;
use aura::ids::WorkspaceId;

pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub state: Arc<AppState>,
    pub ws: WorkspaceId,
}

pub fn fixture() -> Fixture {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::load(&Overrides {
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    })
    .unwrap();
    let state = Arc::new(
        AppState::open(
            cfg,
            MasterKey::generate(),
            Arc::new(SystemClock::new()),
            true,
        )
        .unwrap(),
    );
    let ws = rt.block_on(async {
        let meta = RequestMeta::default();
        aura::identity::create_user(
            &state.deps(),
            aura::identity::users::CreateUser {
                email: "bench@example.com".into(),
                name: None,
                password: "bench password 123".into(),
                platform_admin: false,
            },
            Actor::System,
            &meta,
        )
        .await
        .unwrap();
        aura::workspace::create_workspace(
            state.platform(),
            aura::workspace::CreateWorkspace {
                name: "Bench".into(),
                owner_email: "bench@example.com".into(),
                region: None,
            },
            Actor::System,
            &meta,
        )
        .await
        .unwrap()
    });
    Fixture { rt, dir, state, ws }
}
