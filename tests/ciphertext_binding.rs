//! SECURITY.md row e, checked as worded on real databases: a sealed value
//! copied by hand to another row, another column's table or another
//! workspace's data.db (or, in control.db, to another user's or workspace's
//! row under the same platform key) no longer opens. The API then answers an
//! error, never the moved value, and the server does not panic.

mod common;

use std::path::Path;

use common::mfa::signed_in;
use common::{Env, PASSWORD, client, login};
use serde_json::{Value, json};

async fn post(c: &reqwest::Client, url: String, body: Value) -> Value {
    let r = c.post(url).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// Copies `column` of the row where `key = from` onto the row where `key = to`
/// (in the same or another database file).
fn move_ct(src: &Path, dst: &Path, table: &str, column: &str, key: &str, from: &str, to: &str) {
    let s = rusqlite::Connection::open(src).unwrap();
    let ct: Vec<u8> = s
        .query_row(
            &format!("SELECT {column} FROM {table} WHERE {key} = ?1"),
            [from],
            |r| r.get(0),
        )
        .unwrap();
    drop(s);
    let d = rusqlite::Connection::open(dst).unwrap();
    let n = d
        .execute(
            &format!("UPDATE {table} SET {column} = ?1 WHERE {key} = ?2"),
            rusqlite::params![ct, to],
        )
        .unwrap();
    assert_eq!(n, 1, "{table}.{column} row {to} not found");
}

#[tokio::test]
async fn row_e_ciphertexts_moved_between_rows_tables_and_workspaces_fail_closed() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada Secretname");
    env.create_user("grace@example.com", "Grace");
    let ws_a = env.create_workspace("Alpha Workspace", "ada@example.com");
    let ws_b = env.create_workspace("Beta Workspace", "ada@example.com");
    env.add_member(&ws_b, "grace@example.com", "viewer");
    let server = env.start();
    let c = signed_in(&server, "ada@example.com").await;
    let base = server.base.clone();
    let api = |ws: &str, p: &str| format!("{base}/api/v1/workspaces/{ws}{p}");
    let def =
        json!({"name": "Ledger", "fields": [{"name": "Title", "type": "text", "required": true}]});
    let coll_a = post(&c, api(&ws_a, "/collections"), def.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let coll_a2 = post(
        &c,
        api(&ws_a, "/collections"),
        json!({"name": "Other", "fields": [{"name": "Title", "type": "text"}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let coll_b = post(&c, api(&ws_b, "/collections"), def).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = |ws: &str, coll: &str, title: &str| {
        let url = api(ws, &format!("/collections/{coll}/records"));
        let c = &c;
        let body = json!({"values": {"Title": title}});
        async move { post(c, url, body).await["id"].as_str().unwrap().to_owned() }
    };
    let r1 = rec(&ws_a, &coll_a, "alpha-moved-secret").await;
    let r2 = rec(&ws_a, &coll_a, "beta-stays").await;
    let r3 = rec(&ws_b, &coll_b, "gamma-other-workspace").await;
    let r4 = rec(&ws_a, &coll_a, "delta-target").await;
    server.stop();

    let control = env.data_dir().join("control.db");
    let (db_a, db_b) = (env.tenant_db(&ws_a), env.tenant_db(&ws_b));
    // Same table and column, another row.
    move_ct(&db_a, &db_a, "records", "values_ct", "id", &r1, &r2);
    // Same column, another workspace's data.db.
    move_ct(&db_a, &db_b, "records", "values_ct", "id", &r1, &r3);
    // A collection definition onto another collection.
    move_ct(
        &db_a,
        &db_a,
        "collections",
        "def_ct",
        "id",
        &coll_a,
        &coll_a2,
    );
    // Another table: a kept version of r1 as r4's current values.
    {
        let d = rusqlite::Connection::open(&db_a).unwrap();
        let n = d
            .execute(
                "UPDATE records SET values_ct = (SELECT v.values_ct FROM record_versions v \
                 JOIN records r ON r.seq = v.record_seq WHERE r.id = ?1 LIMIT 1) WHERE id = ?2",
                [&r1, &r4],
            )
            .unwrap();
        assert_eq!(n, 1);
        let null: bool = d
            .query_row(
                "SELECT values_ct IS NULL FROM records WHERE id = ?1",
                [&r4],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!null, "record_versions holds r1's values");
    }
    // control.db: one platform key, so only the binding tells rows apart.
    let ada_id: String = common::open_db(&control)
        .query_row(
            "SELECT id FROM users ORDER BY created_at LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let grace_id: String = common::open_db(&control)
        .query_row("SELECT id FROM users WHERE id != ?1", [&ada_id], |r| {
            r.get(0)
        })
        .unwrap();
    move_ct(
        &control, &control, "users", "name_ct", "id", &ada_id, &grace_id,
    );
    move_ct(
        &control,
        &control,
        "workspaces",
        "name_ct",
        "id",
        &ws_a,
        &ws_b,
    );

    let server = env.start();
    let base = server.base.clone();
    let api = |ws: &str, p: &str| format!("{base}/api/v1/workspaces/{ws}{p}");
    let c = signed_in(&server, "ada@example.com").await;
    let get = |url: String| {
        let c = &c;
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let refused = |what: &str, (status, body): (u16, String), moved: &str| {
        assert!(status >= 400, "{what}: {status} {body}");
        assert!(
            !body.contains(moved),
            "{what} answered the moved value: {body}"
        );
    };
    // The untouched row still opens.
    let (s, body) = get(api(&ws_a, &format!("/collections/{coll_a}/records/{r1}"))).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("alpha-moved-secret"));
    let rec_url =
        |ws: &str, coll: &str, r: &str| api(ws, &format!("/collections/{coll}/records/{r}"));
    refused(
        "another row",
        get(rec_url(&ws_a, &coll_a, &r2)).await,
        "alpha-moved-secret",
    );
    refused(
        "another workspace",
        get(rec_url(&ws_b, &coll_b, &r3)).await,
        "alpha-moved-secret",
    );
    refused(
        "another table",
        get(rec_url(&ws_a, &coll_a, &r4)).await,
        "alpha-moved-secret",
    );
    refused(
        "a listing over the moved rows",
        get(api(&ws_a, &format!("/collections/{coll_a}/records"))).await,
        "delta-target",
    );
    refused(
        "another collection",
        get(api(&ws_a, &format!("/collections/{coll_a2}"))).await,
        "Ledger",
    );

    // control.db: Ada's name on Grace's row, workspace A's name on B's row.
    let g = client(&server);
    // Grace's sign-in reads her name: it fails closed, or /me must.
    let r = login(&g, &server, "grace@example.com", PASSWORD).await;
    let r = if r.status() == 200 {
        g.get(server.url("/api/v1/me")).send().await.unwrap()
    } else {
        r
    };
    refused(
        "another user's name",
        (r.status().as_u16(), r.text().await.unwrap()),
        "Secretname",
    );
    let r = c.get(server.url("/api/v1/me")).send().await.unwrap();
    let (s, body) = (r.status().as_u16(), r.text().await.unwrap());
    assert!(s == 200 || s >= 500, "{s} {body}");
    if s == 200 {
        let me: Value = serde_json::from_str(&body).unwrap();
        for w in me["workspaces"].as_array().unwrap() {
            if w["id"] == ws_b.as_str() {
                assert_ne!(w["name"], "Alpha Workspace", "{body}");
            }
        }
    }

    let logs = String::from_utf8_lossy(&server.stop()).to_string();
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
}

/// Row b's mechanism, as stored: a sealed email is `[1][key id][24-byte
/// nonce][ciphertext][16-byte tag]` (the XChaCha20-Poly1305 layout), a fresh
/// nonce each time, and opens to the address with the master key; the lookup
/// column is a 32-byte keyed digest (HMAC-SHA256 size) that is not a plain
/// hash of the address and differs between two appliances for the same one.
#[test]
fn row_b_sealed_emails_have_the_xchacha_layout_and_the_index_is_keyed() {
    use sha2::{Digest, Sha256};
    let email = "layout.check@example.com";
    let (a, b) = (Env::new(), Env::new());
    let rows = |env: &Env| -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        env.create_user(email, "Same Name");
        common::open_db(&env.data_dir().join("control.db"))
            .query_row("SELECT email_ct, email_bidx, name_ct FROM users", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap()
    };
    let (ct_a, idx_a, name_a) = rows(&a);
    let (ct_b, idx_b, name_b) = rows(&b);
    for ct in [&ct_a, &ct_b] {
        assert_eq!(ct[0], 1, "version byte");
        assert_eq!(
            ct.len(),
            5 + 24 + email.len() + 16,
            "header, nonce, text, tag"
        );
    }
    assert_ne!(name_a[5..29], name_b[5..29], "a fresh nonce per value");
    for idx in [&idx_a, &idx_b] {
        assert_eq!(idx.len(), 32);
        assert_ne!(idx.as_slice(), Sha256::digest(email.as_bytes()).as_slice());
    }
    assert_ne!(idx_a, idx_b, "the index depends on the appliance's key");
    // And it opens to the address, with the master key, as the server does.
    let master =
        aura::crypto::keys::parse_master_key(&std::fs::read(a.key_path()).unwrap()).unwrap();
    let opts = aura::store::DbOptions::from_config(&aura::config::StorageConfig::default());
    let control =
        aura::store::control::Control::open(&a.data_dir().join("control.db"), opts, master)
            .unwrap();
    let found = control
        .db
        .read(|c| aura::store::control::find_user_by_email(c, &control.keys, email))
        .unwrap()
        .expect("found through the blind index");
    assert_eq!(found.email, email);
}
