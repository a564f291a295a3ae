//! SECURITY.md row ad, the attacks `tests/api_tokens.rs`
//! (`role_changes_and_removal_bite_on_the_next_request`) leaves out: two
//! owners stepping down or removing each other at the same moment still leave
//! an owner; an owner acting through an admin-scoped token is no owner for the
//! owner role; a promotion, like a demotion, holds from the very next request.

mod common;

use common::mfa::signed_in;
use common::{Env, bearer, open_db};
use serde_json::json;

fn owners(env: &Env, ws: &str) -> i64 {
    open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT count(*) FROM memberships WHERE workspace_id = ?1 AND role = 'owner'",
            [ws],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn row_ad_racing_owners_always_leave_an_owner() {
    let env = Env::new();
    let ada_id = env.create_user("ada@example.com", "Ada");
    let bea_id = env.create_user("bea@example.com", "Bea");
    let ws = env.create_workspace("Twin Keys", "ada@example.com");
    env.add_member(&ws, "bea@example.com", "owner");
    let server = env.start();
    let ada = signed_in(&server, "ada@example.com").await;
    let bea = signed_in(&server, "bea@example.com").await;
    let member = |id: &str| server.url(&format!("/api/v1/workspaces/{ws}/members/{id}"));
    for round in 0..10 {
        assert_eq!(owners(&env, &ws), 2, "round {round} starts with two owners");
        // Even rounds: each steps down at once. Odd rounds: each removes the other.
        let (a, b) = if round % 2 == 0 {
            (
                ada.put(member(&ada_id))
                    .json(&json!({"role": "admin"}))
                    .send(),
                bea.put(member(&bea_id))
                    .json(&json!({"role": "admin"}))
                    .send(),
            )
        } else {
            (
                ada.delete(member(&bea_id)).send(),
                bea.delete(member(&ada_id)).send(),
            )
        };
        let (a, b) = tokio::join!(a, b);
        let (a, b) = (a.unwrap().status().as_u16(), b.unwrap().status().as_u16());
        assert_eq!(owners(&env, &ws), 1, "round {round}: answers {a} and {b}");
        let mut answers = [a, b];
        answers.sort();
        assert!(
            answers == [204, 409] || answers == [204, 403] || answers == [204, 404],
            "round {round}: one change wins, the other is refused: {answers:?}"
        );
        // Put the pair back: whoever is still owner restores the other.
        let (owner, other, other_email) = if owners_is(&env, &ws, &ada_id) {
            (&ada, &bea_id, "bea@example.com")
        } else {
            (&bea, &ada_id, "ada@example.com")
        };
        if round % 2 == 1 {
            env.add_member(&ws, other_email, "owner");
        } else {
            let r = owner
                .put(member(other))
                .json(&json!({"role": "owner"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    }
    server.stop();
}

fn owners_is(env: &Env, ws: &str, user: &str) -> bool {
    open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT count(*) FROM memberships WHERE workspace_id = ?1 AND user_id = ?2 AND role = 'owner'",
            [ws, user],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

#[tokio::test]
async fn row_ad_an_owners_admin_token_does_not_touch_the_owner_role() {
    let env = Env::new();
    let ada_id = env.create_user("ada@example.com", "Ada");
    let dan_id = env.create_user("dan@example.com", "Dan");
    let ws = env.create_workspace("Scoped", "ada@example.com");
    env.add_member(&ws, "dan@example.com", "viewer");
    let server = env.start();
    let ada = signed_in(&server, "ada@example.com").await;
    let dan = signed_in(&server, "dan@example.com").await;
    let tokens = format!("/api/v1/workspaces/{ws}/tokens");
    let r = ada
        .post(server.url(&tokens))
        .json(&json!({"name": "ops", "scope": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let secret = r.json::<serde_json::Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = |who: &str, role: &str| {
        bearer(
            reqwest::Method::PUT,
            &server,
            &secret,
            &format!("/api/v1/workspaces/{ws}/members/{who}"),
        )
        .json(&json!({ "role": role }))
        .send()
    };
    assert_eq!(
        put(&dan_id, "owner").await.unwrap().status(),
        403,
        "made an owner"
    );
    assert_eq!(
        put(&ada_id, "admin").await.unwrap().status(),
        403,
        "demoted an owner"
    );
    assert_eq!(owners(&env, &ws), 1);
    // Admin work below the owner role is what the token is for.
    assert_eq!(put(&dan_id, "member").await.unwrap().status(), 204);

    // A promotion holds from the very next request, as a demotion does.
    assert_eq!(
        dan.get(server.url(&tokens)).send().await.unwrap().status(),
        403
    );
    let r = ada
        .put(server.url(&format!("/api/v1/workspaces/{ws}/members/{dan_id}")))
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        dan.get(server.url(&tokens)).send().await.unwrap().status(),
        200
    );
    server.stop();
}

/// An owner demoted while their own request is in flight does not act as an
/// owner in it: the role a change checks is read in the change's transaction,
/// not when the request came in. Rounds of "A demotes B" racing "B makes C an
/// owner": whenever B's demotion committed first, C must not become an owner.
#[tokio::test]
async fn row_ad_a_demotion_racing_the_demoted_owners_request_wins() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let bea_id = env.create_user("bea@example.com", "Bea");
    let cy_id = env.create_user("cy@example.com", "Cy");
    let ws = env.create_workspace("Race", "ada@example.com");
    env.add_member(&ws, "bea@example.com", "owner");
    env.add_member(&ws, "cy@example.com", "member");
    let server = env.start();
    let ada = signed_in(&server, "ada@example.com").await;
    let bea = signed_in(&server, "bea@example.com").await;
    let member = |id: &str| server.url(&format!("/api/v1/workspaces/{ws}/members/{id}"));
    let control = env.data_dir().join("control.db");
    // The seq of the newest role change of `target` to `role`.
    let changed = |target: &str, since: i64| -> Vec<(i64, String)> {
        let db = open_db(&control);
        let mut st = db
            .prepare(
                "SELECT seq, target_id FROM audit_log WHERE action = 'member.role_changed' \
                 AND seq > ?1 ORDER BY seq",
            )
            .unwrap();
        st.query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .filter(|(_, t): &(i64, String)| t == target)
            .collect()
    };
    let mut bea_late = 0;
    for round in 0..20 {
        let since: i64 = open_db(&control)
            .query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0))
            .unwrap();
        let demote = ada
            .put(member(&bea_id))
            .json(&json!({"role": "admin"}))
            .send();
        let promote = bea
            .put(member(&cy_id))
            .json(&json!({"role": "owner"}))
            .send();
        let (d, p) = tokio::join!(demote, promote);
        assert_eq!(d.unwrap().status(), 204, "round {round}");
        let p = p.unwrap().status().as_u16();
        let bea_at = changed(&bea_id, since);
        let cy_at = changed(&cy_id, since);
        if p == 204 {
            assert_eq!(cy_at.len(), 1);
            assert!(
                cy_at[0].0 < bea_at[0].0,
                "round {round}: Bea made Cy an owner after her demotion committed"
            );
        } else {
            assert_eq!(p, 403, "round {round}");
            assert!(cy_at.is_empty());
            bea_late += 1;
        }
        // Back to the start: Bea owner, Cy member.
        for (id, role) in [(&bea_id, "owner"), (&cy_id, "member")] {
            let r = ada
                .put(member(id))
                .json(&json!({ "role": role }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204, "round {round} reset");
        }
    }
    println!("Bea's promotion refused in {bea_late} of 20 rounds");
    server.stop();
}
