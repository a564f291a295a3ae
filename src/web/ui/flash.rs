//! The line a page shows after an action succeeded ("Record deleted."): the
//! form's answer (a 303) sets a short-lived cookie naming the operation, the
//! next page shows its sentence once and clears it. The cookie holds an
//! operation's label, and for a change that can be undone the path that
//! undoes it (made of ids), never anything a person typed.

use maud::{Markup, html};
use poem::http::header;
use poem::{Request, Response};

use crate::access::op::{self, Op};
use crate::access::permissions::Action;

/// Behind TLS, `__Host-` keeps a sibling subdomain or a plain-HTTP
/// attacker from planting a flash (and so an "Undo" button) for this host.
const NAME: &str = "aura_flash";
const NAME_TLS: &str = "__Host-aura_flash";

fn name(secure: bool) -> &'static str {
    if secure { NAME_TLS } else { NAME }
}

/// The platform area's changes (outside any workspace, so no `Op`).
pub const PLATFORM: &[(&str, &str)] = &[
    (
        "platform.account_invited",
        "Account created: the invitation is on its way.",
    ),
    (
        "platform.account_invite_unsent",
        "Account created, but the mail server refused the invitation: send a password-reset link later.",
    ),
    ("platform.account_disabled", "Account disabled."),
    ("platform.account_enabled", "Account enabled."),
    ("platform.account_admin", "Platform rights saved."),
];

/// The sentence for a label (`records.delete`), or none for an unknown one.
pub fn sentence(label: &str) -> Option<String> {
    if let Some((_, s)) = PLATFORM.iter().find(|(l, _)| *l == label) {
        return Some((*s).to_owned());
    }
    let (resource, action) = op::ALL
        .iter()
        .find(|(_, _, l)| *l == label)
        .map(|(r, a, _)| (*r, *a))?;
    let special = match label {
        "incident.acknowledge" => Some("Incident acknowledged."),
        "workspace.deletion" => Some("Deletion cancelled: the workspace takes changes again."),
        "workspace.delete" => Some("Workspace scheduled for deletion."),
        "records.undelete" => Some("Record restored."),
        _ => None,
    };
    if let Some(s) = special {
        return Some(s.to_owned());
    }
    let done = match (label, action) {
        ("member.delete", _) => "removed",
        ("api_token.delete" | "invitation.delete" | "scim.token_revoke", _) => "revoked",
        ("scim.token_issue", _) => "issued",
        ("data_subject.anonymise", _) => "anonymised",
        (_, Action::Create) => "created",
        (_, Action::Update | Action::Settings) => "saved",
        (_, Action::Delete) => "deleted",
        (_, Action::Export) => "export started",
        (_, Action::Import) => "imported",
        (_, Action::Verify) => "verified",
        (_, Action::RotateKey) => "key rotation started",
        (_, Action::Acknowledge) => "acknowledged",
        (_, Action::Read) => return None,
    };
    let mut what = resource.as_str().to_owned();
    if let Some(first) = what.get(..1) {
        what = format!("{}{}", first.to_uppercase(), &what[1..]);
    }
    Some(format!("{what} {done}."))
}

/// Marks `resp` (a form's redirect) with `O`'s flash.
pub fn set<O: Op>(resp: &mut Response, secure: bool) {
    set_platform(resp, secure, O::LABEL);
}

/// Marks `resp` with `O`'s flash and an "Undo" button posting to `undo`
/// (shown for a record's deletion only).
pub fn set_with_undo<O: Op>(resp: &mut Response, secure: bool, undo: &str) {
    if O::LABEL == UNDOABLE && undo_path(undo, None).is_some() {
        set_platform(resp, secure, &format!("{}{UNDO}{undo}", O::LABEL));
    } else {
        set::<O>(resp, secure);
    }
}

/// Between a label and its undo path in the cookie.
const UNDO: char = '|';

/// The one change a flash offers to undo.
const UNDOABLE: &str = "records.delete";

/// An undo path as this server makes them (`/w/…/undelete`, ids only), in
/// the workspace `ws` of the page showing it when given: a cookie set by
/// anyone else never becomes a form pointing elsewhere.
fn undo_path<'a>(p: &'a str, ws: Option<&str>) -> Option<&'a str> {
    let in_ws = ws.is_none_or(|ws| {
        p.strip_prefix("/w/")
            .and_then(|rest| rest.strip_prefix(ws))
            .is_some_and(|rest| rest.starts_with('/'))
    });
    let ok = in_ws
        && p.starts_with("/w/")
        && p.ends_with("/undelete")
        && !p.contains("//")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'));
    ok.then_some(p)
}

/// Marks `resp` with one of the platform area's flashes (`PLATFORM`).
pub fn set_platform(resp: &mut Response, secure: bool, label: &str) {
    set_cookie(resp, secure, label, 60);
}

/// The flash a request carries (its label), if any.
pub fn take(req: &Request, secure: bool) -> Option<String> {
    crate::web::session::cookie(req, name(secure))
}

/// Clears the flash once shown.
pub fn clear(resp: &mut Response, secure: bool) {
    set_cookie(resp, secure, "", 0);
}

fn set_cookie(resp: &mut Response, secure: bool, value: &str, max_age: u32) {
    let c = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        name(secure),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = c.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The flash line, with its "Undo" form when the change can be undone and
/// the undo belongs to the workspace `ws` of the page showing it.
pub fn render(flash: Option<&str>, csrf: &str, ws: Option<&str>) -> Markup {
    let Some(flash) = flash else {
        return html! {};
    };
    let (label, undo) = match flash.split_once(UNDO) {
        Some((l, u)) => (
            l,
            ws.and_then(|w| undo_path(u, Some(w)))
                .filter(|_| l == UNDOABLE),
        ),
        None => (flash, None),
    };
    match sentence(label) {
        Some(s) => html! {
            div.flash role="status" id="flash" {
                (s)
                @if let Some(u) = undo {
                    form.inline method="post" action=(u) id="undo" {
                        input type="hidden" name="csrf" value=(csrf);
                        " " button.secondary type="submit" { "Undo" }
                    }
                }
            }
        },
        None => html! {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_has_a_sentence_and_reads_none() {
        for (_, action, label) in op::ALL {
            assert_eq!(
                sentence(label).is_some(),
                *action != Action::Read,
                "{label}"
            );
        }
        assert_eq!(
            sentence("records.delete").as_deref(),
            Some("Record deleted.")
        );
        assert_eq!(
            sentence("member.delete").as_deref(),
            Some("Member removed.")
        );
        assert_eq!(sentence("<script>"), None);
        let p = "/w/a-1/c/b/r/c_2/undelete";
        assert_eq!(undo_path(p, None), Some(p));
        assert_eq!(undo_path(p, Some("a-1")), Some(p));
        assert_eq!(undo_path(p, Some("a")), None, "another workspace's page");
        assert_eq!(undo_path(p, Some("b")), None);
        // A planted cookie: the undo shows only for a deletion, only on a
        // page of the workspace it names.
        let planted = format!("records.undelete|{p}");
        let shown = render(Some(&planted), "t", Some("a-1")).into_string();
        assert!(
            shown.contains("Record restored.") && !shown.contains("undo"),
            "{shown}"
        );
        let planted = format!("records.delete|{p}");
        let shown = render(Some(&planted), "t", Some("other")).into_string();
        assert!(
            shown.contains("Record deleted.") && !shown.contains("undo"),
            "{shown}"
        );
        let shown = render(Some(&planted), "t", Some("a-1")).into_string();
        assert!(shown.contains(&format!("action=\"{p}\"")), "{shown}");
        for bad in [
            "//evil.example/undelete",
            "https://evil.example/w/undelete",
            "/w/x\"y/undelete",
            "/w//evil.example/undelete",
            "/w/x/delete",
        ] {
            assert_eq!(undo_path(bad, None), None, "{bad}");
        }
    }
}
