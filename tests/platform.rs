//! The platform area end to end: workspace health, creation, suspension, and
//! impersonation, which is the only way staff reach a workspace's data. It is
//! recorded in the platform log and in the workspace's own audit log (where
//! its owner reads it), every entry staff cause inside names them as staff,
//! a banner shows while it lasts, and it ends by itself.

mod common;

use common::{Env, PASSWORD, client, login};
use serde_json::{Value, json};

struct World {
    env: Env,
    ws: String,
    owner: reqwest::Client,
    staff: reqwest::Client,
    server: common::Server,
}

async fn world() -> World {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Supported Ltd", "owner@example.com");
    let out = env.cli(
        &[
            "user",
            "create",
            "--email",
            "staff@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success());
    let server = env.start();
    let owner = client(&server);
    assert_eq!(
        login(&owner, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let staff = client(&server);
    assert_eq!(
        login(&staff, &server, "staff@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    World {
        env,
        ws,
        owner,
        staff,
        server,
    }
}

impl World {
    fn api(&self, p: &str) -> String {
        self.server.url(&format!("/api/v1{p}"))
    }

    async fn status(&self, c: &reqwest::Client, method: &str, p: &str, body: Value) -> u16 {
        let req = c.request(method.parse().unwrap(), self.api(p));
        let req = if body.is_null() { req } else { req.json(&body) };
        req.send().await.unwrap().status().as_u16()
    }

    async fn ws_audit(&self, action: &str) -> Vec<Value> {
        let url = self.api(&format!("/workspaces/{}/audit?action={action}", self.ws));
        let v: Value = common::get_json(&self.owner, url).await;
        v["items"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn health_creation_and_suspension() {
    let w = world().await;
    let canary = "PLATFORMCANARY-record-text";
    let coll: Value = w
        .owner
        .post(w.api(&format!("/workspaces/{}/collections", w.ws)))
        .json(&json!({"name": "Notes", "fields": [{"name": "Text", "type": "text"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = coll["id"].as_str().unwrap();
    let r = w
        .owner
        .post(w.api(&format!("/workspaces/{}/collections/{cid}/records", w.ws)))
        .json(&json!({"values": {"Text": canary}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Health, never content.
    let r = w
        .staff
        .get(w.api("/platform/workspaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(canary) && !text.contains("Notes"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let row = &list["items"][0];
    assert_eq!(row["id"], w.ws.as_str());
    assert_eq!(row["state"], "active");
    assert_eq!(row["members"], 1);
    assert!(row["size_bytes"].as_u64().unwrap() > 0);
    // Staff alone do not reach the data.
    let coll_url = format!("/workspaces/{}/collections", w.ws);
    assert_eq!(w.status(&w.staff, "GET", &coll_url, Value::Null).await, 404);
    // Members are not platform staff.
    assert_eq!(
        w.status(&w.owner, "GET", "/platform/workspaces", Value::Null)
            .await,
        403
    );

    // Creation: the owner must exist; the field is named.
    let r = w
        .staff
        .post(w.api("/platform/workspaces"))
        .json(&json!({"name": "New", "owner_email": "nobody@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("owner"));
    let body = json!({"name": "Second", "owner_email": "owner@example.com", "region": "EU"});
    assert_eq!(
        w.status(&w.staff, "POST", "/platform/workspaces", body)
            .await,
        201
    );
    let me: Value = common::get_json(&w.owner, w.api("/me")).await;
    assert_eq!(me["workspaces"].as_array().unwrap().len(), 2);

    // Suspension: the members' next request is a 404; resuming restores it.
    let suspend = format!("/platform/workspaces/{}/suspend", w.ws);
    assert_eq!(w.status(&w.staff, "POST", &suspend, Value::Null).await, 204);
    assert_eq!(w.status(&w.owner, "GET", &coll_url, Value::Null).await, 404);
    let resume = format!("/platform/workspaces/{}/resume", w.ws);
    assert_eq!(w.status(&w.staff, "POST", &resume, Value::Null).await, 204);
    assert_eq!(w.status(&w.owner, "GET", &coll_url, Value::Null).await, 200);
    assert_eq!(w.ws_audit("workspace.suspended").await.len(), 1);
    assert_eq!(w.ws_audit("workspace.resumed").await.len(), 1);
    drop(w.env);
}

#[tokio::test]
async fn impersonation_is_recorded_attributed_bannered_and_ends() {
    let w = world().await;
    let coll_url = format!("/workspaces/{}/collections", w.ws);
    let imp = format!("/platform/workspaces/{}/impersonate", w.ws);

    // A reason is required, and the expiry is bounded.
    let r = w
        .staff
        .post(w.api(&imp))
        .json(&json!({"reason": "x", "minutes": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("reason") && text.contains("minutes"),
        "{text}"
    );
    assert_eq!(
        w.status(
            &w.staff,
            "POST",
            &imp,
            json!({"reason": "Ticket 17: owner asked", "role": "owner"})
        )
        .await,
        422,
        "never as owner"
    );

    let reason = "Ticket 4711: the owner cannot see a collection";
    let r = w
        .staff
        .post(w.api(&imp))
        .json(&json!({"reason": reason, "minutes": 1, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let started: Value = r.json().await.unwrap();
    assert!(started["expires_at"].is_string());

    // Inside: the member role, no more.
    assert_eq!(w.status(&w.staff, "GET", &coll_url, Value::Null).await, 200);
    let body = json!({"name": "By staff", "fields": [{"name": "N", "type": "text"}]});
    assert_eq!(w.status(&w.staff, "POST", &coll_url, body).await, 403);
    // Other workspaces stay closed.
    let other = w.env.create_workspace("Elsewhere", "owner@example.com");
    let other_url = format!("/workspaces/{other}/collections");
    assert_eq!(
        w.status(&w.staff, "GET", &other_url, Value::Null).await,
        404
    );

    // The banner, on every workspace page.
    let page = common::get_text(&w.staff, w.server.url(&format!("/w/{}", w.ws))).await;
    assert!(page.contains("impersonation-banner"), "{page}");
    assert!(page.contains(reason));

    // The owner reads it in the workspace's own audit log, with the reason
    // and the staff member as actor; the refusal above is attributed too.
    let started_entries = w.ws_audit("impersonation.started").await;
    assert_eq!(started_entries.len(), 1);
    let e = &started_entries[0];
    assert_eq!(e["actor_type"], "staff");
    assert!(e.to_string().contains(reason), "{e}");
    let denied = w.ws_audit("access.denied").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["actor_type"], "staff");
    // And the platform log has it too.
    let plat: Value = common::get_json(
        &w.staff,
        w.api("/platform/audit?action=impersonation.started"),
    )
    .await;
    assert_eq!(plat["items"].as_array().unwrap().len(), 1);

    // Ending it closes the workspace again, recorded in both logs.
    assert_eq!(
        w.status(&w.staff, "POST", "/platform/impersonation/end", Value::Null)
            .await,
        204
    );
    assert_eq!(w.status(&w.staff, "GET", &coll_url, Value::Null).await, 404);
    assert_eq!(w.ws_audit("impersonation.ended").await.len(), 1);

    // An impersonation expires by itself: two minutes later it is over.
    let body = json!({"reason": reason, "minutes": 1});
    assert_eq!(w.status(&w.staff, "POST", &imp, body).await, 201);
    assert_eq!(w.status(&w.staff, "GET", &coll_url, Value::Null).await, 200);
    let World {
        env, staff, server, ..
    } = w;
    server.stop();
    let later = env.start_with(&[("AURA_TEST_CLOCK_OFFSET", "120")]);
    let r = staff
        .get(later.url(&format!("/api/v1{coll_url}")))
        .send()
        .await
        .unwrap();
    // The staff session itself is still valid (idle timeout 60 minutes).
    let me = staff.get(later.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(r.status(), 404, "the impersonation expired");
}
