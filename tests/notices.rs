//! The notices /trust promises owners, tried against the real binary and a
//! real SMTP sink: an incident declared for one workspace or for all mails
//! those workspaces' owners and no one else, shows a banner inside them until
//! an owner or admin acknowledges it (nobody else can, nor for another
//! workspace), is audited in every affected chain and the platform's, and is
//! listed on /trust without naming any workspace; updates and the resolution
//! follow it. An upcoming subprocessor is shown as such and announced to
//! every owner once, across a restart.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::smtp::Sink;
use common::{Env, PASSWORD, Server, client, csrf_from, get_json, get_text, login, open_db};

const ALPHA: &str = "Alpha Secret Co";
const BETA: &str = "Beta Hidden Ltd";

struct World {
    env: Env,
    ws_a: String,
    ws_b: String,
}

/// Two workspaces: A (owner, admin and member) and B (its own owner).
fn world() -> World {
    let env = Env::new();
    for u in [
        "owner-a@example.com",
        "admin-a@example.com",
        "member-a@example.com",
        "owner-b@example.com",
    ] {
        env.create_user(u, "Person");
    }
    let ws_a = env.create_workspace(ALPHA, "owner-a@example.com");
    let ws_b = env.create_workspace(BETA, "owner-b@example.com");
    env.add_member(&ws_a, "admin-a@example.com", "admin");
    env.add_member(&ws_a, "member-a@example.com", "member");
    World { env, ws_a, ws_b }
}

fn summary(env: &Env, name: &str, text: &str) -> PathBuf {
    let p = env.root().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `aura incident ...` with the sink as mail relay (or none).
fn incident(env: &Env, sink: Option<&Sink>, args: &[&str]) -> std::process::Output {
    let mut full = vec!["incident"];
    full.extend_from_slice(args);
    let mut c = env.command(&full);
    if let Some(s) = sink {
        for (k, v) in s.env() {
            c.env(k, v);
        }
    }
    c.stdin(std::process::Stdio::null()).output().unwrap()
}

fn declared_id(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "incident command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn start(env: &Env, sink: &Sink, extra: &[(&str, &str)]) -> Server {
    let vars = sink.env();
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.extend_from_slice(extra);
    env.start_with(&vars)
}

async fn signed_in(server: &Server, email: &str) -> reqwest::Client {
    let c = client(server);
    assert_eq!(login(&c, server, email, PASSWORD).await.status(), 200);
    c
}

/// (action, target) of every entry of a chain.
fn chain(path: &std::path::Path) -> Vec<(String, Option<String>)> {
    let db = open_db(path);
    let mut stmt = db
        .prepare("SELECT action, target_id FROM audit_log ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn has_entry(path: &std::path::Path, action: &str, id: &str) -> bool {
    chain(path)
        .iter()
        .any(|(a, t)| a == action && t.as_deref() == Some(id))
}

async fn ack(c: &reqwest::Client, server: &Server, ws_page: &str, post_ws: &str, id: &str) -> u16 {
    let token = csrf_from(&get_text(c, server.url(ws_page)).await);
    c.post(server.url(&format!("/w/{post_ws}/incidents/ack")))
        .form(&[("csrf", token.as_str()), ("incident_id", id)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_incident_for_one_workspace_reaches_its_owners_only_until_acknowledged() {
    let w = world();
    let sink = Sink::start();
    let server = start(&w.env, &sink, &[]);
    let text = "We found that a backup bucket was readable for 3 hours.";
    let file = summary(&w.env, "summary.md", text);
    let out = incident(
        &w.env,
        Some(&sink),
        &[
            "declare",
            "--workspaces",
            &w.ws_a,
            "--summary",
            file.to_str().unwrap(),
        ],
    );
    let id = declared_id(&out);
    assert!(id.starts_with("inc_"), "{id}");

    // Mail: the owner of A, naming A and only A; nobody else.
    sink.wait_for("owner-a@example.com", &id);
    let to_a = sink.messages_to("owner-a@example.com");
    assert_eq!(to_a.len(), 1, "one mail per owner: {to_a:?}");
    assert!(to_a[0].contains(ALPHA) && to_a[0].contains(text) && !to_a[0].contains(BETA));
    for nobody in [
        "owner-b@example.com",
        "admin-a@example.com",
        "member-a@example.com",
    ] {
        assert!(sink.messages_to(nobody).is_empty(), "{nobody} was mailed");
    }

    // Audit: the platform chain and A's chain, not B's.
    let control = w.env.data_dir().join("control.db");
    assert!(has_entry(&control, "incident.declared", &id));
    assert!(has_entry(
        &w.env.tenant_db(&w.ws_a),
        "incident.declared",
        &id
    ));
    assert!(!has_entry(
        &w.env.tenant_db(&w.ws_b),
        "incident.declared",
        &id
    ));

    // /trust and /trust.json: listed, with a count, naming no workspace.
    let anon = client(&server);
    let trust = get_json(&anon, server.url("/trust.json")).await;
    let listed = &trust["document"]["incidents"][0];
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["status"], "open");
    assert_eq!(listed["scope"], "1 workspace");
    assert_eq!(listed["workspaces_affected"], 1);
    assert_eq!(listed["all_workspaces"], false);
    assert!(listed["declared_at"].as_str().unwrap().starts_with("20"));
    assert!(
        listed["summary_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/trust/incidents/{id}"))
    );
    let page = get_text(&anon, server.url("/trust")).await;
    let public = get_text(&anon, server.url(&format!("/trust/incidents/{id}"))).await;
    assert!(page.contains(&format!("/trust/incidents/{id}")));
    assert!(public.contains(text), "the summary is published");
    for shown in [trust.to_string(), page, public] {
        for secret in [ALPHA, BETA, w.ws_a.as_str(), w.ws_b.as_str()] {
            assert!(!shown.contains(secret), "the public pages name {secret}");
        }
    }
    let missing = anon
        .get(server.url("/trust/incidents/inc_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The banner: in A for its people, the acknowledge form for admins only.
    let owner_a = signed_in(&server, "owner-a@example.com").await;
    let member_a = signed_in(&server, "member-a@example.com").await;
    let admin_a = signed_in(&server, "admin-a@example.com").await;
    let owner_b = signed_in(&server, "owner-b@example.com").await;
    let home_a = format!("/w/{}", w.ws_a);
    let home_b = format!("/w/{}", w.ws_b);
    let seen = get_text(&owner_a, server.url(&home_a)).await;
    assert!(seen.contains("incident-banner") && seen.contains(&id));
    assert!(seen.contains("/incidents/ack"));
    let seen = get_text(&member_a, server.url(&format!("{home_a}/members"))).await;
    assert!(seen.contains("incident-banner"), "every page of A shows it");
    assert!(
        !seen.contains("/incidents/ack"),
        "a member cannot acknowledge"
    );
    let seen = get_text(&owner_a, server.url(&format!("{home_a}/audit"))).await;
    assert!(seen.contains("incident-banner"), "the audit pages too");
    let seen = get_text(&owner_b, server.url(&home_b)).await;
    assert!(!seen.contains("incident-banner"), "B is not affected");

    // Attacks: a member, another workspace's owner (in A, or through B).
    assert_eq!(ack(&member_a, &server, &home_a, &w.ws_a, &id).await, 403);
    assert_eq!(ack(&owner_b, &server, &home_b, &w.ws_a, &id).await, 404);
    assert_eq!(ack(&owner_b, &server, &home_b, &w.ws_b, &id).await, 404);
    assert_eq!(
        ack(&owner_b, &server, &home_b, &w.ws_b, "inc_nope").await,
        404
    );
    assert!(
        get_text(&owner_a, server.url(&home_a))
            .await
            .contains("incident-banner")
    );
    assert!(!has_entry(
        &w.env.tenant_db(&w.ws_b),
        "incident.acknowledged",
        &id
    ));

    // An admin acknowledges: gone for everyone in A, audited in A's chain.
    assert_eq!(ack(&admin_a, &server, &home_a, &w.ws_a, &id).await, 303);
    for c in [&owner_a, &admin_a, &member_a] {
        assert!(
            !get_text(c, server.url(&home_a))
                .await
                .contains("incident-banner")
        );
    }
    assert!(has_entry(
        &w.env.tenant_db(&w.ws_a),
        "incident.acknowledged",
        &id
    ));

    // An update and the resolution: mailed again, audited, on /trust.
    let upd = summary(
        &w.env,
        "update.md",
        "The bucket policy is fixed; no access logged.",
    );
    let out = incident(
        &w.env,
        Some(&sink),
        &["update", &id, "--summary", upd.to_str().unwrap()],
    );
    assert_eq!(declared_id(&out), id);
    sink.wait_for("owner-a@example.com", "no access logged");
    let fin = summary(
        &w.env,
        "final.md",
        "Post-incident summary: root cause was a typo.",
    );
    let out = incident(
        &w.env,
        Some(&sink),
        &["resolve", &id, "--summary", fin.to_str().unwrap()],
    );
    assert_eq!(declared_id(&out), id);
    sink.wait_for("owner-a@example.com", "root cause was a typo");
    assert_eq!(sink.messages_to("owner-a@example.com").len(), 3);
    assert!(sink.messages_to("owner-b@example.com").is_empty());
    for action in ["incident.updated", "incident.resolved"] {
        assert!(
            has_entry(&control, action, &id),
            "{action} in the platform chain"
        );
        assert!(
            has_entry(&w.env.tenant_db(&w.ws_a), action, &id),
            "{action} in A"
        );
        assert!(
            !has_entry(&w.env.tenant_db(&w.ws_b), action, &id),
            "{action} in B"
        );
    }
    let trust = get_json(&anon, server.url("/trust.json")).await;
    assert_eq!(trust["document"]["incidents"][0]["status"], "resolved");
    assert!(trust["document"]["incidents"][0]["resolved_at"].is_string());
    let public = get_text(&anon, server.url(&format!("/trust/incidents/{id}"))).await;
    assert!(public.contains("root cause was a typo") && public.contains("no access logged"));
    let again = incident(&w.env, Some(&sink), &["resolve", &id]);
    assert!(!again.status.success(), "resolving twice is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already resolved"));
    let list = incident(&w.env, None, &["list"]);
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.contains(&id) && list.contains("resolved") && list.contains("1 workspace"));
    let verify = w.env.cli(&["audit", "verify"], None);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    server.stop();
}

#[tokio::test]
async fn an_incident_for_all_workspaces_reaches_every_owner_with_their_own_workspaces() {
    let w = world();
    let sink = Sink::start();
    let server = start(&w.env, &sink, &[]);
    let file = summary(&w.env, "all.md", "A stolen laptop held a support export.");
    let id = declared_id(&incident(
        &w.env,
        Some(&sink),
        &[
            "declare",
            "--workspaces",
            "all",
            "--summary",
            file.to_str().unwrap(),
        ],
    ));
    sink.wait_for("owner-a@example.com", &id);
    sink.wait_for("owner-b@example.com", &id);
    let a = sink.messages_to("owner-a@example.com");
    let b = sink.messages_to("owner-b@example.com");
    assert!(a.len() == 1 && a[0].contains(ALPHA) && !a[0].contains(BETA));
    assert!(b.len() == 1 && b[0].contains(BETA) && !b[0].contains(ALPHA));
    assert!(sink.messages_to("member-a@example.com").is_empty());
    for ws in [&w.ws_a, &w.ws_b] {
        assert!(has_entry(&w.env.tenant_db(ws), "incident.declared", &id));
    }
    let trust = get_json(&client(&server), server.url("/trust.json")).await;
    assert_eq!(trust["document"]["incidents"][0]["scope"], "all workspaces");
    assert_eq!(trust["document"]["incidents"][0]["all_workspaces"], true);
    assert_eq!(trust["document"]["incidents"][0]["workspaces_affected"], 2);
    let owner_b = signed_in(&server, "owner-b@example.com").await;
    let home_b = format!("/w/{}", w.ws_b);
    assert!(get_text(&owner_b, server.url(&home_b)).await.contains(&id));
    // B's owner acknowledges for B only: A still shows it.
    assert_eq!(ack(&owner_b, &server, &home_b, &w.ws_b, &id).await, 303);
    assert!(
        !get_text(&owner_b, server.url(&home_b))
            .await
            .contains("incident-banner")
    );
    let owner_a = signed_in(&server, "owner-a@example.com").await;
    let home_a = format!("/w/{}", w.ws_a);
    assert!(
        get_text(&owner_a, server.url(&home_a))
            .await
            .contains("incident-banner")
    );
    server.stop();
}

/// Without a relay the CLI says what to configure and records the incident
/// with its mail owed; a server with a relay sends what is owed.
#[tokio::test]
async fn without_a_mail_relay_the_incident_is_recorded_and_its_mail_sent_later() {
    let w = world();
    let file = summary(&w.env, "s.md", "Credentials in a log file.");
    let out = incident(
        &w.env,
        None,
        &[
            "declare",
            "--workspaces",
            &w.ws_b,
            "--summary",
            file.to_str().unwrap(),
        ],
    );
    let id = declared_id(&out);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("smtp_host"), "says what to configure: {err}");
    let list = String::from_utf8_lossy(&incident(&w.env, None, &["list"]).stdout).to_string();
    assert!(
        list.contains(&format!("{id}\t")) && list.trim_end().ends_with("0\t1"),
        "{list}"
    );
    // Bad input: a missing workspace, an empty summary: refused, nothing written.
    let empty = summary(&w.env, "empty.md", "  \n");
    let nope = "0190f3a0-0000-7000-8000-000000000000";
    for args in [
        vec![
            "declare",
            "--workspaces",
            nope,
            "--summary",
            file.to_str().unwrap(),
        ],
        vec![
            "declare",
            "--workspaces",
            "all",
            "--summary",
            empty.to_str().unwrap(),
        ],
        vec![
            "declare",
            "--workspaces",
            "some-name",
            "--summary",
            file.to_str().unwrap(),
        ],
    ] {
        let out = incident(&w.env, None, &args);
        assert!(!out.status.success(), "{args:?} was accepted");
    }
    let listed = String::from_utf8_lossy(&incident(&w.env, None, &["list"]).stdout).to_string();
    assert_eq!(
        listed.lines().count(),
        2,
        "only the first incident: {listed}"
    );
    // Ten minutes later (the server leaves younger mail to the command that
    // made it), a server with a relay sends it.
    let sink = Sink::start();
    let server = start(&w.env, &sink, &[("AURA_TEST_CLOCK_OFFSET", "700")]);
    sink.wait_for("owner-b@example.com", &id);
    assert!(sink.messages_to("owner-a@example.com").is_empty());
    server.stop();
    let list = String::from_utf8_lossy(&incident(&w.env, None, &["list"]).stdout).to_string();
    assert!(list.trim_end().ends_with("1\t0"), "{list}");
}

fn day_in(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn wait_log(server: &Server, needle: &str, times: usize) {
    let started = Instant::now();
    while String::from_utf8_lossy(&server.logs())
        .matches(needle)
        .count()
        < times
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {needle:?} in the log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn an_upcoming_subprocessor_is_shown_and_announced_to_every_owner_once() {
    let w = world();
    let soon = day_in(60);
    let config = std::fs::read_to_string(w.env.config_path()).unwrap();
    let entries = format!(
        "subprocessors = [\n  {{ role = \"transactional email\", host = \"smtp.new-mailer.example\", effective = \"{soon}\" }},\n  {{ role = \"support desk\", host = \"desk.example\", effective = \"2020-01-01\" }},\n]\nsubprocessor_notice_days = 90"
    );
    assert!(config.contains("subprocessors = []"));
    let config = config
        .replace("subprocessors = []", &entries)
        .replace("subprocessor_notice_days = 30\n", "");
    std::fs::write(w.env.config_path(), config).unwrap();

    let sink = Sink::start();
    let server = start(&w.env, &sink, &[]);
    let subject = format!("a new subprocessor from {soon}");
    sink.wait_for("owner-a@example.com", &subject);
    sink.wait_for("owner-b@example.com", &subject);
    wait_log(&server, "new subprocessor notice", 1);
    let trust = get_json(&client(&server), server.url("/trust.json")).await;
    let upcoming = trust["document"]["subprocessors"]["upcoming"]
        .as_array()
        .unwrap();
    assert_eq!(upcoming.len(), 1, "{trust}");
    assert_eq!(upcoming[0]["host"], "smtp.new-mailer.example");
    assert_eq!(upcoming[0]["effective"], soon.as_str());
    assert_eq!(upcoming[0]["notice_days"], 90);
    let current: Vec<&str> = trust["document"]["subprocessors"]["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    assert!(current.contains(&"desk.example") && !current.contains(&"smtp.new-mailer.example"));
    let page = get_text(&client(&server), server.url("/trust")).await;
    assert!(page.contains("upcoming-subprocessors") && page.contains(&soon));
    server.stop();

    // A restart: the notice is remembered, nobody is mailed again.
    let server = start(&w.env, &sink, &[]);
    wait_log(&server, "0 new subprocessor notice(s)", 1);
    server.stop();
    for owner in ["owner-a@example.com", "owner-b@example.com"] {
        let n = sink
            .messages_to(owner)
            .iter()
            .filter(|m| m.contains(&subject))
            .count();
        assert_eq!(n, 1, "{owner} was mailed {n} times");
    }
    assert!(sink.messages_to("member-a@example.com").is_empty());
    assert!(sink.messages_to("admin-a@example.com").is_empty());
    let notices = chain(&w.env.data_dir().join("control.db"))
        .into_iter()
        .filter(|(a, _)| a == "trust.subprocessor_notice")
        .count();
    assert_eq!(notices, 1, "audited once in the platform chain");

    // Doctor: 60 days ahead is less than the 90 promised.
    let out = w.env.cli(&["doctor"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARN  subprocessor") && text.contains("90 days"),
        "{text}"
    );
}

#[test]
fn a_subprocessor_date_that_is_not_a_date_names_the_key() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.config_path()).unwrap().replace(
        "subprocessors = []",
        "subprocessors = [{ role = \"x\", host = \"x.example\", effective = \"next month\" }]",
    );
    std::fs::write(env.config_path(), config).unwrap();
    let out = env.cli(&["doctor"], None);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("trust.subprocessors[0].effective"), "{text}");
}
