//! Deletion with a grace period and crypto-shredding, account deletion, and
//! moving a workspace between two appliances (two data dirs, two master
//! keys), driven through the real binary, real HTTP and a real SMTP sink;
//! time moves with `AURA_TEST_CLOCK_OFFSET`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use age::secrecy::ExposeSecret;
use common::{Env, PASSWORD, Server, client, login, open_db, send};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

struct AgeKeys {
    identity_file: PathBuf,
    recipient: String,
}

fn age_keys(dir: &Path, name: &str) -> AgeKeys {
    let id = age::x25519::Identity::generate();
    let identity_file = dir.join(format!("{name}.txt"));
    std::fs::write(
        &identity_file,
        format!("{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    AgeKeys {
        identity_file,
        recipient: id.to_public().to_string(),
    }
}

/// A CLI command with the backup recipient set and the clock moved by `days`.
fn cli(env: &Env, keys: &AgeKeys, days: i64, args: &[&str]) -> Output {
    env.command(args)
        .env(
            "AURA_BACKUP__RECIPIENTS",
            format!("[\"{}\"]", keys.recipient),
        )
        .env("AURA_TEST_CLOCK_OFFSET", (days * DAY).to_string())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

async fn signed_in(server: &Server, email: &str) -> reqwest::Client {
    let c = client(server);
    assert_eq!(login(&c, server, email, PASSWORD).await.status(), 200);
    c
}

fn api(server: &Server, ws: &str, path: &str) -> String {
    server.url(&format!("/api/v1/workspaces/{ws}{path}"))
}

fn count(db: &Path, sql: &str, arg: &str) -> i64 {
    open_db(db).query_row(sql, [arg], |r| r.get(0)).unwrap()
}

fn actions(db: &Path, action: &str) -> i64 {
    count(
        db,
        "SELECT count(*) FROM audit_log WHERE action = ?1",
        action,
    )
}

#[tokio::test]
async fn deletion_is_read_only_cancellable_then_shreds_the_key_in_every_backup() {
    let env = Env::new();
    let keys = age_keys(env.root(), "backup-identity");
    let sink = common::smtp::Sink::start();
    env.create_user("owner@example.com", "Owner");
    env.create_user("admin@example.com", "Admin");
    env.create_user("keeper@example.com", "Keeper");
    let doomed = env.create_workspace("Doomed Ltd", "owner@example.com");
    let kept = env.create_workspace("Keeper Ltd", "keeper@example.com");
    env.add_member(&doomed, "admin@example.com", "admin");
    let mut vars: Vec<(String, String)> = sink.env();
    vars.push((
        "AURA_BACKUP__RECIPIENTS".into(),
        format!("[\"{}\"]", keys.recipient),
    ));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = env.start_with(&vars);
    let owner = signed_in(&server, "owner@example.com").await;
    let admin = signed_in(&server, "admin@example.com").await;
    let keeper = signed_in(&server, "keeper@example.com").await;
    for (c, ws, name) in [
        (&owner, &doomed, "Doomed team"),
        (&keeper, &kept, "Keeper team"),
    ] {
        let (s, _) = send(
            c.post(api(&server, ws, "/teams"))
                .json(&json!({"name": name})),
        )
        .await;
        assert_eq!(s, 201);
    }
    // A backup holding both workspaces, taken before the deletion.
    let backup = ok(&cli(&env, &keys, 0, &["backup", "run"]))
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();

    let deletion = api(&server, &doomed, "/deletion");
    let control = env.data_dir().join("control.db");
    // The name must be typed right; nothing is written otherwise.
    let (s, p) = send(
        owner
            .post(&deletion)
            .json(&json!({"confirm_name": "Doomed"})),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(p["errors"][0]["field"], "confirm_name");
    // Owners only.
    let (s, _) = send(
        admin
            .post(&deletion)
            .json(&json!({"confirm_name": "Doomed Ltd"})),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(actions(&control, "workspace.deletion_scheduled"), 0);

    let (s, d) = send(
        owner
            .post(&deletion)
            .json(&json!({"confirm_name": "Doomed Ltd"})),
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["state"], "deleting");
    let due = time::OffsetDateTime::parse(
        d["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((due - now - 14 * DAY).abs() < 120, "14 days by default");
    sink.wait_for("owner@example.com", "scheduled for deletion");

    // Read-only: changes get 409 naming the state, reads go on.
    let (s, p) = send(
        owner
            .post(api(&server, &doomed, "/teams"))
            .json(&json!({"name": "More"})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(p["type"], "urn:aura:problem:workspace-deleting");
    let (s, p) = send(
        owner
            .put(api(&server, &doomed, "/mfa-policy"))
            .json(&json!({"required": true})),
    )
    .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (409, Some("urn:aura:problem:workspace-deleting"))
    );
    let (s, teams) = send(admin.get(api(&server, &doomed, "/teams"))).await;
    assert_eq!(s, 200);
    assert_eq!(teams["items"][0]["name"], "Doomed team");
    let page = common::get_text(&owner, server.url(&format!("/w/{doomed}/settings"))).await;
    assert!(
        page.contains("deletion-cancel") && page.contains("deletion-due"),
        "{page}"
    );
    let platform: Value = {
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
        let staff = signed_in(&server, "staff@example.com").await;
        common::get_json(&staff, server.url("/api/v1/platform/workspaces")).await
    };
    let row = platform["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == doomed.as_str())
        .unwrap();
    assert_eq!(row["state"], "deleting");
    assert_eq!(row["deletion_due_at"], d["due_at"]);

    // Cancel: writable again; then schedule once more.
    let (s, d) = send(owner.delete(&deletion)).await;
    assert_eq!((s, d["state"].as_str()), (200, Some("active")));
    sink.wait_for("owner@example.com", "cancelled");
    let (s, _) = send(
        owner
            .post(api(&server, &doomed, "/teams"))
            .json(&json!({"name": "After"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = send(owner.delete(&deletion)).await;
    assert_eq!(s, 409, "nothing to cancel");
    let (s, _) = send(
        owner
            .post(&deletion)
            .json(&json!({"confirm_name": "Doomed Ltd"})),
    )
    .await;
    assert_eq!(s, 200);

    // Not due yet: nothing happens. 15 days later: shredded.
    let out = ok(&cli(&env, &keys, 0, &["workspace", "purge-due"]));
    assert!(out.contains("0 workspace(s) shredded"), "{out}");
    assert!(env.tenant_db(&doomed).exists());
    let out = ok(&cli(&env, &keys, 15, &["workspace", "purge-due"]));
    assert!(out.contains("1 workspace(s) shredded"), "{out}");
    assert!(out.contains("1 escrow(s) rewritten"), "{out}");
    assert!(!env.data_dir().join("tenants").join(&doomed).exists());
    let q = "SELECT count(*) FROM workspace_keys WHERE workspace_id = ?1";
    assert_eq!(count(&control, q, &doomed), 0);
    assert_eq!(actions(&control, "workspace.shredded"), 1);
    assert_eq!(actions(&control, "workspace.deletion_scheduled"), 2);
    assert_eq!(actions(&control, "workspace.deletion_cancelled"), 1);
    // The running server answers as for a workspace that never existed.
    let (s, _) = send(owner.get(api(&server, &doomed, "/teams"))).await;
    assert_eq!(s, 404);
    let (s, _) = send(keeper.get(api(&server, &kept, "/teams"))).await;
    assert_eq!(s, 200);
    server.stop();
    ok(&env.cli(&["audit", "verify"], None));

    // The old backup: its drill passes, knowing the shredded workspace; it
    // restores every other workspace, and the shredded one's rows are there
    // only as ciphertext whose key no longer exists anywhere.
    let id = keys.identity_file.to_str().unwrap();
    ok(&cli(
        &env,
        &keys,
        15,
        &["backup", "verify", &backup, "--identity", id],
    ));
    let out = cli(
        &env,
        &keys,
        15,
        &[
            "restore",
            "--from",
            &backup,
            "--workspace",
            &doomed,
            "--identity",
            id,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key destroyed"));
    let restored = env.root().join("restored");
    let out = ok(&cli(
        &env,
        &keys,
        15,
        &[
            "restore",
            "--from",
            &backup,
            "--to",
            restored.to_str().unwrap(),
            "--identity",
            id,
        ],
    ));
    assert!(out.contains("skipped 1 workspace"), "{out}");
    assert!(
        restored
            .join("tenants")
            .join(&kept)
            .join("data.db")
            .exists()
    );
    assert!(!restored.join("tenants").join(&doomed).exists());
    ok(&env.cli_at(&restored, &["audit", "verify"]));
    let mut cmd = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.arg("--data-dir").arg(&restored);
    let server = Server::start(cmd);
    let keeper = signed_in(&server, "keeper@example.com").await;
    let (s, teams) = send(keeper.get(api(&server, &kept, "/teams"))).await;
    assert_eq!(
        (s, teams["items"][0]["name"].as_str()),
        (200, Some("Keeper team"))
    );
    let owner = signed_in(&server, "owner@example.com").await;
    let (s, _) = send(owner.get(api(&server, &doomed, "/teams"))).await;
    assert_eq!(s, 404);
    server.stop();

    let backups = env.data_dir().join("backups");
    let identity = aura::backup::read_identity(&keys.identity_file).unwrap();
    let unpacked = env.root().join("unpacked");
    aura::backup::archive::unpack(
        &backups.join(format!("{backup}.tar.zst.age")),
        &identity,
        &unpacked,
        Some(&backup),
    )
    .unwrap();
    let in_archive = unpacked.join("tenants").join(&doomed).join("data.db");
    let teams_ct: Vec<u8> = open_db(&in_archive)
        .query_row("SELECT name_ct FROM teams LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert!(!teams_ct.windows(11).any(|w| w == b"Doomed team"));
    let escrow =
        aura::backup::archive::read_escrow(&backups.join("keys-latest.age"), &identity).unwrap();
    assert!(escrow.keys.iter().all(|k| k.workspace != doomed));
    assert!(escrow.keys.iter().any(|k| k.workspace == kept));
    assert!(escrow.shredded.contains(&doomed));
}

#[tokio::test]
async fn account_deletion_ends_memberships_and_never_leaves_a_workspace_ownerless() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    env.create_user("owner@example.com", "Owner");
    let member_id = env.create_user("member@example.com", "Member");
    let ws = env.create_workspace("Acme Widgets", "owner@example.com");
    env.add_member(&ws, "member@example.com", "admin");
    let server = env.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let member = signed_in(&server, "member@example.com").await;
    let me = server.url("/api/v1/me/deletion");

    // The last owner cannot go: 409 naming the workspace.
    let (s, p) = send(owner.post(&me).json(&json!({"password": PASSWORD}))).await;
    assert_eq!(s, 409);
    assert!(
        p["detail"].as_str().unwrap().contains("Acme Widgets"),
        "{p}"
    );
    // A wrong password is an error on the field.
    let (s, p) = send(member.post(&me).json(&json!({"password": "not it at all"}))).await;
    assert_eq!(
        (s, p["errors"][0]["field"].as_str()),
        (422, Some("password"))
    );

    let (s, d) = send(member.post(&me).json(&json!({"password": PASSWORD}))).await;
    assert_eq!((s, d["scheduled"].as_bool()), (200, Some(true)));
    let (s, _) = send(member.post(&me).json(&json!({"password": PASSWORD}))).await;
    assert_eq!(s, 409, "already scheduled");
    let (_, d) = send(member.delete(&me)).await;
    assert_eq!(d["scheduled"], false);
    let (_, d) = send(member.get(&me)).await;
    assert_eq!(d["scheduled"], false);
    let (s, _) = send(member.post(&me).json(&json!({"password": PASSWORD}))).await;
    assert_eq!(s, 200);
    let page = common::get_text(&member, server.url("/account")).await;
    assert!(page.contains("account-deletion-due"), "{page}");
    // Still works through the grace period.
    let (s, _) = send(member.get(api(&server, &ws, "/teams"))).await;
    assert_eq!(s, 200);

    let out = ok(&cli(&env, &keys, 15, &["workspace", "purge-due"]));
    assert!(out.contains("1 account(s) deleted"), "{out}");
    let control = env.data_dir().join("control.db");
    assert_eq!(
        count(
            &control,
            "SELECT count(*) FROM users WHERE id = ?1",
            &member_id
        ),
        0
    );
    assert_eq!(
        count(
            &control,
            "SELECT count(*) FROM memberships WHERE user_id = ?1",
            &member_id
        ),
        0
    );
    assert_eq!(actions(&control, "user.deletion_scheduled"), 2);
    assert_eq!(actions(&control, "user.deletion_cancelled"), 1);
    assert_eq!(actions(&control, "user.deleted"), 1);
    assert_eq!(actions(&env.tenant_db(&ws), "member.removed"), 1);
    let (s, _) = send(member.get(api(&server, &ws, "/teams"))).await;
    assert_eq!(s, 401, "the account's sessions are gone");
    assert_eq!(
        login(&client(&server), &server, "member@example.com", PASSWORD)
            .await
            .status(),
        401
    );
    let (_, people) = send(owner.get(api(&server, &ws, "/members"))).await;
    assert_eq!(people["items"].as_array().unwrap().len(), 1);
    server.stop();
    ok(&env.cli(&["audit", "verify"], None));
}

#[tokio::test]
async fn a_workspace_moves_between_two_appliances_with_its_data_and_chain() {
    let source = Env::new();
    let target = Env::new();
    let target_keys = age_keys(target.root(), "target-identity");
    source.create_user("owner@example.com", "Owner");
    let bob = source.create_user("bob@example.com", "Bob");
    target.create_user("owner@example.com", "Owner on the target");
    let ws = source.create_workspace("Mover GmbH", "owner@example.com");
    source.add_member(&ws, "bob@example.com", "viewer");
    let server = source.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let (s, _) = send(
        owner
            .post(api(&server, &ws, "/teams"))
            .json(&json!({"name": "Residency team"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = send(
        owner
            .put(api(&server, &ws, "/audit/settings"))
            .json(&json!({"retention_days": 123})),
    )
    .await;
    assert_eq!(s, 200);

    let bundle = source.root().join("mover.age");
    let out = ok(&source.cli(
        &[
            "workspace",
            "move-out",
            &ws,
            "--to-recipient",
            &target_keys.recipient,
            "--out",
            bundle.to_str().unwrap(),
        ],
        None,
    ));
    assert!(out.contains("read-only"), "{out}");
    let source_key = printed_source_key(&out);
    // Read-only at the source until the operator confirms.
    let (s, p) = send(
        owner
            .post(api(&server, &ws, "/teams"))
            .json(&json!({"name": "Late"})),
    )
    .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (409, Some("urn:aura:problem:workspace-moving"))
    );
    let (s, _) = send(owner.get(api(&server, &ws, "/teams"))).await;
    assert_eq!(s, 200);

    // Only the target's identity opens the bundle.
    let other = age_keys(source.root(), "someone-else");
    let out = target.cli(
        &[
            "workspace",
            "move-in",
            bundle.to_str().unwrap(),
            "--identity",
            other.identity_file.to_str().unwrap(),
            "--source-key",
            &source_key,
        ],
        None,
    );
    assert!(!out.status.success());
    let id = target_keys.identity_file.to_str().unwrap();
    let out = ok(&target.cli(
        &[
            "workspace",
            "move-in",
            bundle.to_str().unwrap(),
            "--identity",
            id,
            "--source-key",
            &source_key,
        ],
        None,
    ));
    assert!(out.contains(&format!("moved in workspace {ws}")), "{out}");
    assert!(
        out.contains("1 member(s) matched") && out.contains("1 account(s) created"),
        "{out}"
    );
    let out = target.cli(
        &[
            "workspace",
            "move-in",
            bundle.to_str().unwrap(),
            "--identity",
            id,
            "--source-key",
            &source_key,
        ],
        None,
    );
    assert!(!out.status.success(), "a second import is refused");
    let verify = ok(&target.cli(&["audit", "verify"], None));
    assert!(verify.contains(&ws), "{verify}");
    let tcontrol = target.data_dir().join("control.db");
    assert_eq!(
        count(&tcontrol, "SELECT count(*) FROM users WHERE id = ?1", &bob),
        1
    );
    assert_eq!(actions(&tcontrol, "workspace.moved_in"), 1);

    // The target serves it: same data, decrypted under the target's keys.
    let tserver = target.start();
    let towner = signed_in(&tserver, "owner@example.com").await;
    let (s, teams) = send(towner.get(api(&tserver, &ws, "/teams"))).await;
    assert_eq!(
        (s, teams["items"][0]["name"].as_str()),
        (200, Some("Residency team"))
    );
    let (_, page) =
        send(towner.get(api(&tserver, &ws, "/audit?action=audit.retention_changed"))).await;
    assert_eq!(page["items"][0]["after"]["retention_days"], 123);
    let (_, page) = send(towner.get(api(&tserver, &ws, "/audit?action=workspace.moved_out"))).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (s, _) = send(
        towner
            .post(api(&tserver, &ws, "/teams"))
            .json(&json!({"name": "EU team"})),
    )
    .await;
    assert_eq!(s, 201, "writable on the target");
    tserver.stop();
    ok(&target.cli(&["audit", "verify"], None));

    // The operator confirms: the source shreds its copy.
    let out = ok(&source.cli(&["workspace", "move-confirm", &ws], None));
    assert!(out.contains("shredded"), "{out}");
    assert!(!source.data_dir().join("tenants").join(&ws).exists());
    let (s, _) = send(owner.get(api(&server, &ws, "/teams"))).await;
    assert_eq!(s, 404);
    server.stop();
    ok(&source.cli(&["audit", "verify"], None));
    let scontrol = source.data_dir().join("control.db");
    assert_eq!(actions(&scontrol, "workspace.moved_out"), 1);
    assert_eq!(actions(&scontrol, "workspace.shredded"), 1);
}

/// The source's audit public key as `move-out` prints it (`--source-key HEX`).
fn printed_source_key(out: &str) -> String {
    out.split("--source-key ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|k| k.trim_matches(|c: char| !c.is_ascii_hexdigit()).to_owned())
        .unwrap_or_else(|| panic!("move-out prints no --source-key:\n{out}"))
}

/// Finding 12: age does not authenticate the sender, so anyone who knows the
/// target's recipient can write a bundle. `move-in` trusts only the audit key
/// the operator names with `--source-key` (printed by `move-out` and by the
/// source's /trust.json), never the key inside the bundle.
#[tokio::test]
async fn finding_12_move_in_trusts_only_the_named_source_key() {
    let source = Env::new();
    source.create_user("owner@example.com", "Owner");
    let ws = source.create_workspace("Real Ltd", "owner@example.com");
    let attacker = Env::new();
    attacker.create_user("mallory@example.com", "Mallory");
    let forged_ws = attacker.create_workspace("Forged Ltd", "mallory@example.com");
    let target = Env::new();
    let target_keys = age_keys(target.root(), "target-identity");
    let id = target_keys.identity_file.to_str().unwrap();

    let move_out = |env: &Env, ws: &str, name: &str| {
        let bundle = env.root().join(name);
        let out = ok(&env.cli(
            &[
                "workspace",
                "move-out",
                ws,
                "--to-recipient",
                &target_keys.recipient,
                "--out",
                bundle.to_str().unwrap(),
            ],
            None,
        ));
        (bundle, out)
    };
    let (real, real_out) = move_out(&source, &ws, "real.age");
    let source_key = printed_source_key(&real_out);
    assert_eq!(source_key.len(), 64, "{real_out}");
    let (forged, forged_out) = move_out(&attacker, &forged_ws, "forged.age");
    assert_ne!(printed_source_key(&forged_out), source_key);

    // Without a named source key nothing is imported.
    let out = target.cli(
        &[
            "workspace",
            "move-in",
            real.to_str().unwrap(),
            "--identity",
            id,
        ],
        None,
    );
    assert!(!out.status.success(), "move-in without --source-key");
    // The forged bundle is signed by its own key, not the source's.
    let out = target.cli(
        &[
            "workspace",
            "move-in",
            forged.to_str().unwrap(),
            "--identity",
            id,
            "--source-key",
            &source_key,
        ],
        None,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "a forged bundle was imported:\n{text}"
    );
    assert!(text.contains("source key"), "{text}");
    let tcontrol = target.data_dir().join("control.db");
    assert_eq!(
        count(
            &tcontrol,
            "SELECT count(*) FROM workspaces WHERE id = ?1",
            &forged_ws
        ),
        0
    );
    // A malformed key is a usage error.
    let out = target.cli(
        &[
            "workspace",
            "move-in",
            real.to_str().unwrap(),
            "--identity",
            id,
            "--source-key",
            "not-hex",
        ],
        None,
    );
    assert!(!out.status.success());
    // The real bundle with the real key moves in, and verifies there.
    let out = ok(&target.cli(
        &[
            "workspace",
            "move-in",
            real.to_str().unwrap(),
            "--identity",
            id,
            "--source-key",
            &source_key,
        ],
        None,
    ));
    assert!(out.contains(&format!("moved in workspace {ws}")), "{out}");
    ok(&target.cli(&["audit", "verify"], None));
}

/// The bundle's plaintext: (name, bytes) per tar entry, in order.
fn open_bundle(bundle: &[u8], identity_file: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let text = std::fs::read_to_string(identity_file).unwrap();
    let id: age::x25519::Identity = text.trim().parse().unwrap();
    let dec = age::Decryptor::new(bundle).unwrap();
    let reader = dec
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap();
    let mut tar = tar::Archive::new(zstd::Decoder::new(reader).unwrap());
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().to_string();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Packs entries as `move-out` does and encrypts them to `recipient`: what
/// anyone who knows the target's recipient can write.
fn seal_bundle(entries: &[(String, Vec<u8>)], recipient: &str) -> Vec<u8> {
    use std::io::Write;
    let to: age::x25519::Recipient = recipient.parse().unwrap();
    let mut tarred = Vec::new();
    {
        let mut z = zstd::Encoder::new(&mut tarred, 3).unwrap();
        {
            let mut tar = tar::Builder::new(&mut z);
            for (name, bytes) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(bytes.len() as u64);
                h.set_mode(0o600);
                h.set_cksum();
                tar.append_data(&mut h, name, bytes.as_slice()).unwrap();
            }
            tar.finish().unwrap();
        }
        z.finish().unwrap();
    }
    let enc = age::Encryptor::with_recipients(std::iter::once(&to as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(&tarred).unwrap();
    w.finish().unwrap();
    out
}

/// Row aq: a bundle changed on the way is refused and the target imports
/// nothing: a flipped byte, a truncation, one sealed to another recipient,
/// and (written by someone who knows the target's recipient, since age does
/// not authenticate the sender) a data.db swapped for another workspace's,
/// with and without a manifest hash to match it, and a manifest whose
/// checkpoint was altered. After every refusal the target has no workspace
/// row, no tenant directory, no `workspace.moved_in` entry and no leftover
/// scratch directory; the untouched bundle then imports.
#[tokio::test]
async fn a_tampered_move_bundle_is_refused_and_nothing_is_imported() {
    use sha2::Digest;
    let source = Env::new();
    source.create_user("owner@example.com", "Owner");
    let ws = source.create_workspace("Moved Ltd", "owner@example.com");
    let other_ws = source.create_workspace("Other Ltd", "owner@example.com");
    let target = Env::new();
    target.create_user("admin@example.com", "Admin");
    let keys = age_keys(target.root(), "target-identity");
    let stranger = age_keys(source.root(), "stranger");
    let move_out = |ws: &str, recipient: &str, name: &str| {
        let path = source.root().join(name);
        let out = ok(&source.cli(
            &[
                "workspace",
                "move-out",
                ws,
                "--to-recipient",
                recipient,
                "--out",
                path.to_str().unwrap(),
            ],
            None,
        ));
        (std::fs::read(&path).unwrap(), printed_source_key(&out))
    };
    let (good, source_key) = move_out(&ws, &keys.recipient, "good.age");
    let (other, _) = move_out(&other_ws, &keys.recipient, "other.age");
    let (foreign, _) = move_out(&ws, &stranger.recipient, "foreign.age");
    // The bundle was cut at a move-out; a second move-out of the same
    // workspace would be its own bundle, so `good` stays the reference.
    let inner = open_bundle(&good, &keys.identity_file);
    let other_inner = open_bundle(&other, &keys.identity_file);
    let names: Vec<&str> = inner.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["bundle.json", "data.db"]);
    let manifest: Value = serde_json::from_slice(&inner[0].1).unwrap();
    let other_data = other_inner[1].1.clone();

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let mut swapped = inner.clone();
    swapped[1].1 = other_data.clone();
    let mut swapped_rehashed = swapped.clone();
    let mut m = manifest.clone();
    m["data_sha256"] = hex::encode(sha2::Sha256::digest(&other_data)).into();
    swapped_rehashed[0].1 = serde_json::to_vec(&m).unwrap();
    let mut forged_cp = inner.clone();
    let mut m = manifest.clone();
    let cps = m["checkpoints"].as_array_mut().unwrap();
    assert!(!cps.is_empty(), "move-out signs a checkpoint");
    let last = cps.len() - 1;
    cps[last]["seq"] = (cps[last]["seq"].as_u64().unwrap() + 1).into();
    forged_cp[0].1 = serde_json::to_vec(&m).unwrap();
    // The same workspace's data with its newest audit entry deleted (the
    // log's guard triggers dropped first), and the hash rewritten.
    let cut_chain = {
        let db = target.root().join("edited.db");
        std::fs::write(&db, &inner[1].1).unwrap();
        let c = rusqlite::Connection::open(&db).unwrap();
        let triggers: Vec<String> = c
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for t in triggers {
            c.execute_batch(&format!("DROP TRIGGER \"{t}\"")).unwrap();
        }
        let n = c
            .execute(
                "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
        c.execute_batch("PRAGMA journal_mode = DELETE").unwrap();
        drop(c);
        let data = std::fs::read(&db).unwrap();
        let mut m = manifest.clone();
        m["data_sha256"] = hex::encode(sha2::Sha256::digest(&data)).into();
        vec![
            ("bundle.json".to_owned(), serde_json::to_vec(&m).unwrap()),
            ("data.db".to_owned(), data),
        ]
    };
    let mut extra = inner.clone();
    extra.push(("extra.sql".to_owned(), b"DROP TABLE users;".to_vec()));

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a flipped byte", flipped),
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("its last byte cut", good[..good.len() - 1].to_vec()),
        ("sealed to another recipient", foreign),
        ("data.db swapped", seal_bundle(&swapped, &keys.recipient)),
        (
            "data.db swapped, hash rewritten",
            seal_bundle(&swapped_rehashed, &keys.recipient),
        ),
        (
            "a checkpoint altered",
            seal_bundle(&forged_cp, &keys.recipient),
        ),
        (
            "an audit entry deleted, hash rewritten",
            seal_bundle(&cut_chain, &keys.recipient),
        ),
        ("an extra file", seal_bundle(&extra, &keys.recipient)),
    ];
    let tcontrol = target.data_dir().join("control.db");
    let path = target.root().join("tampered.age");
    let move_in = |path: &Path| {
        target.cli(
            &[
                "workspace",
                "move-in",
                path.to_str().unwrap(),
                "--identity",
                keys.identity_file.to_str().unwrap(),
                "--source-key",
                &source_key,
            ],
            None,
        )
    };
    for (what, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let out = move_in(&path);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{what}: {}", text.trim());
        assert!(!out.status.success(), "{what}: imported\n{text}");
        assert!(text.contains("bundle rejected"), "{what}: {text}");
        for id in [&ws, &other_ws] {
            assert_eq!(
                count(
                    &tcontrol,
                    "SELECT count(*) FROM workspaces WHERE id = ?1",
                    id
                ),
                0,
                "{what}"
            );
            assert!(
                !target.data_dir().join("tenants").join(id).exists(),
                "{what}"
            );
        }
        assert_eq!(actions(&tcontrol, "workspace.moved_in"), 0, "{what}");
        let leftovers: Vec<_> = std::fs::read_dir(target.data_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".move-in"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    }
    // The same bundle, untouched, moves in.
    std::fs::write(&path, &good).unwrap();
    let out = ok(&move_in(&path));
    assert!(out.contains(&format!("moved in workspace {ws}")), "{out}");
    assert_eq!(actions(&tcontrol, "workspace.moved_in"), 1);
}
