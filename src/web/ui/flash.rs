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

const NAME: &str = "aura_flash";

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
        ("api_token.delete" | "invitation.delete", _) => "revoked",
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

/// Marks `resp` with `O`'s flash and an "Undo" button posting to `undo`.
pub fn set_with_undo<O: Op>(resp: &mut Response, secure: bool, undo: &str) {
    if undo_path(undo).is_some() {
        set_platform(resp, secure, &format!("{}{UNDO}{undo}", O::LABEL));
    } else {
        set::<O>(resp, secure);
    }
}

/// Between a label and its undo path in the cookie.
const UNDO: char = '|';

/// An undo path as this server makes them (`/w/…/undelete`, ids only): a
/// cookie set by anyone else never becomes a form pointing elsewhere.
fn undo_path(p: &str) -> Option<&str> {
    let ok = p.starts_with("/w/")
        && p.ends_with("/undelete")
        && !p.contains("//")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'));
    ok.then_some(p)
}

/// Marks `resp` with one of the platform area's flashes (`PLATFORM`).
pub fn set_platform(resp: &mut Response, secure: bool, label: &str) {
    let secure = if secure { "; Secure" } else { "" };
    let c = format!("{NAME}={label}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60{secure}");
    if let Ok(v) = c.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The flash a request carries (its label), if any.
pub fn take(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == NAME)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// Clears the flash once shown.
pub fn clear(resp: &mut Response, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    if let Ok(v) = format!("{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The flash line, with its "Undo" form when the change can be undone.
pub fn render(flash: Option<&str>, csrf: &str) -> Markup {
    let Some(flash) = flash else {
        return html! {};
    };
    let (label, undo) = match flash.split_once(UNDO) {
        Some((l, u)) => (l, undo_path(u)),
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
        assert_eq!(
            undo_path("/w/a-1/c/b/r/c_2/undelete"),
            Some("/w/a-1/c/b/r/c_2/undelete")
        );
        for bad in [
            "//evil.example/undelete",
            "https://evil.example/w/undelete",
            "/w/x\"y/undelete",
            "/w//evil.example/undelete",
            "/w/x/delete",
        ] {
            assert_eq!(undo_path(bad), None, "{bad}");
        }
    }
}
