//! The workspace shell: every page of a workspace has the workspace's name,
//! a switcher to the person's other workspaces, its sections (the current
//! one marked with `aria-current`), and a banner while the workspace is
//! read-only. Sections a role cannot open are not shown; the door still
//! decides (each section's page takes its own `TenantPage<op::..>`).

use maud::{Markup, html};

use crate::access::op::{self, Op};
use crate::access::{Frozen, Role};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Records,
    Members,
    Audit,
    Privacy,
    Integrations,
    Settings,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Records,
        Section::Members,
        Section::Audit,
        Section::Privacy,
        Section::Integrations,
        Section::Settings,
    ];

    fn label(self) -> &'static str {
        match self {
            Section::Records => "Records",
            Section::Members => "Members & teams",
            Section::Audit => "Audit log",
            Section::Privacy => "Privacy",
            Section::Integrations => "Integrations",
            Section::Settings => "Settings",
        }
    }

    /// The link's id (`nav-audit`).
    fn id(self) -> &'static str {
        match self {
            Section::Records => "nav-records",
            Section::Members => "nav-members",
            Section::Audit => "nav-audit",
            Section::Privacy => "nav-privacy",
            Section::Integrations => "nav-integrations",
            Section::Settings => "nav-settings",
        }
    }

    fn href(self, ws: &str) -> String {
        let tail = match self {
            Section::Records => "",
            Section::Members => "/members",
            Section::Audit => "/audit",
            Section::Privacy => "/privacy",
            Section::Integrations => "/integrations",
            Section::Settings => "/settings",
        };
        format!("/w/{ws}{tail}")
    }

    /// The least role the section's page lets in (its op's).
    fn needs(self) -> Role {
        match self {
            Section::Records => op::CollectionRead::needs(),
            Section::Members => op::MemberRead::needs(),
            Section::Audit => op::AuditRead::needs(),
            Section::Privacy => op::WorkspaceExport::needs(),
            Section::Integrations => op::IntegrationRead::needs(),
            Section::Settings => op::WorkspaceRead::needs(),
        }
    }

    /// The section a page of workspace `ws` belongs to, from its path.
    pub fn of(path: &str, ws: &str) -> Option<Section> {
        let rest = path.strip_prefix("/w/")?.strip_prefix(ws)?;
        let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
        Some(match first {
            "" | "c" | "collections" => Section::Records,
            "members" | "teams" | "service-accounts" | "tokens" | "invitations" => Section::Members,
            "audit" => Section::Audit,
            "privacy" => Section::Privacy,
            "integrations" => Section::Integrations,
            "settings" | "keys" | "deletion" | "mfa-policy" | "sso" => Section::Settings,
            _ => return None,
        })
    }
}

/// What the shell shows about the workspace a page belongs to.
pub struct WorkspaceNav {
    /// The workspace as the path names it.
    pub ws: String,
    pub name: String,
    pub role: Role,
    pub current: Option<Section>,
    /// The person's other workspaces: id and name.
    pub others: Vec<(String, String)>,
    pub frozen: Option<Frozen>,
}

/// The sidebar: the workspace's name, the switcher and the sections.
pub fn sidebar(nav: &WorkspaceNav) -> Markup {
    html! {
        nav.sidebar aria-label="Workspace" {
            div.ws-name {
                span.muted { "Workspace" }
                strong id="workspace-name" { (nav.name) }
            }
            @if !nav.others.is_empty() {
                details.switcher id="workspace-switcher" {
                    summary { "Switch workspace" }
                    ul {
                        @for (id, name) in &nav.others {
                            li { a href=(format!("/w/{id}")) { (name) } }
                        }
                        li { a href="/workspaces" { "All workspaces" } }
                    }
                }
            }
            ul.sections {
                @for s in Section::ALL.into_iter().filter(|s| nav.role.at_least(s.needs())) {
                    li {
                        a id=(s.id()) href=(s.href(&nav.ws))
                            aria-current=[(nav.current == Some(s)).then_some("page")] { (s.label()) }
                    }
                }
            }
        }
    }
}

/// On every page of a read-only workspace: why, and what still works.
pub fn frozen_banner(nav: &WorkspaceNav) -> Markup {
    let Some(kind) = nav.frozen else {
        return html! {};
    };
    let why = match kind {
        Frozen::Deleting => "This workspace is scheduled for deletion",
        Frozen::Moving => "This workspace is being moved to another appliance",
    };
    html! {
        div.banner.read-only role="status" id="read-only-banner" {
            strong { (why) ", so it is read-only. " }
            "You can still read, search and export everything; changes are turned off."
            @if kind == Frozen::Deleting && nav.role.at_least(op::WorkspaceDeletionCancel::needs()) {
                " " a href=(Section::Settings.href(&nav.ws)) { "Cancel the deletion in Settings" } "."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_belong_to_their_section() {
        let ws = "acme";
        assert_eq!(Section::of("/w/acme", ws), Some(Section::Records));
        assert_eq!(Section::of("/w/acme/c/x/r/y", ws), Some(Section::Records));
        assert_eq!(Section::of("/w/acme/teams", ws), Some(Section::Members));
        assert_eq!(Section::of("/w/acme/audit/12", ws), Some(Section::Audit));
        assert_eq!(Section::of("/w/acme/settings", ws), Some(Section::Settings));
        assert_eq!(Section::of("/w/acmex/audit", ws), None);
        assert_eq!(Section::of("/workspaces", ws), None);
    }
}
