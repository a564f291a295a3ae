//! Names, not ids: the audit pages show people by name and email,
//! collections and fields by name, with the id on hover. What a page may
//! name is what its reader may already see: a workspace's members and the
//! collections the reader may read (their fields' names); platform staff
//! see people's accounts, never a service account's name (it was typed
//! inside its workspace).

use std::collections::HashMap;

use maud::{Markup, html};

use crate::access::enter::TenantHandle;
use crate::app::AppState;
use crate::audit::search::EntryView;
use crate::error::Result;

#[derive(Default)]
pub struct Names {
    /// User id → (name, email).
    people: HashMap<String, (Option<String>, String)>,
    /// Collection id → name.
    collections: HashMap<String, String>,
    /// Field id (`f_...`) → "Collection · Field".
    fields: HashMap<String, String>,
    /// Collection id → its definition (for record titles).
    defs: HashMap<String, std::sync::Arc<crate::records::schema::Definition>>,
    /// Record id → its title (first text field).
    records: HashMap<String, String>,
    /// This workspace's id → its name.
    workspace: Option<(String, String)>,
    /// Collections whose records the reader may delete (and so restore).
    deletable: std::collections::HashSet<String>,
    /// Records named by entries that are deleted now.
    deleted: std::collections::HashSet<String>,
}

impl Names {
    /// A workspace's members, and the collections (with their fields) the
    /// reader may read.
    pub async fn workspace(state: &AppState, ctx: &TenantHandle) -> Result<Names> {
        let mut n = Names::default();
        for (u, _) in crate::records::teams::members(&state.control, ctx).await? {
            n.people.insert(u.id.to_string(), (u.name, u.email));
        }
        for c in crate::records::list_collections(ctx).await? {
            for f in &c.row.def.fields {
                n.fields.insert(f.id.clone(), f.name.clone());
            }
            n.collections
                .insert(c.row.id.to_string(), c.row.def.name.clone());
            if c.can(crate::records::schema::RecordAction::Read) {
                n.defs.insert(c.row.id.to_string(), c.row.def.clone());
            }
            use crate::records::schema::RecordAction::{Delete, Read};
            if ctx.db.frozen().is_none() && c.can(Delete) && c.can(Read) {
                n.deletable.insert(c.row.id.to_string());
            }
        }
        let ws = ctx.db.id();
        let name = crate::workspace::name_of(&state.control, ws).await?;
        n.workspace = Some((ws.to_string(), name));
        Ok(n)
    }

    /// Titles for the records the entries name, in collections the reader
    /// may read: the record as it is now, else (deleted) as its entry last
    /// showed it. A record that cannot be read keeps its short id.
    pub async fn add_records(&mut self, ctx: &TenantHandle, entries: &[EntryView]) {
        // (entry, collection id, record id) of each record to name.
        let named: Vec<(&EntryView, &str, &str)> = entries
            .iter()
            .filter(|e| e.target_type.as_deref() == Some("record") && !e.withheld)
            .filter_map(|e| {
                let rid = e.target.as_deref()?;
                let cid = ["after", "before"]
                    .iter()
                    .find_map(|side| e.detail_side(side)?.get("collection")?.as_str())?;
                self.defs.contains_key(cid).then_some((e, cid, rid))
            })
            .collect();
        let wanted = named
            .iter()
            .map(|(_, c, r)| ((*c).to_owned(), (*r).to_owned()))
            .collect();
        // One read for the page; on failure the records keep their ids.
        let Ok(live) = crate::records::live_records(ctx, wanted).await else {
            return;
        };
        for (e, cid, rid) in named {
            let (Some(def), false) = (self.defs.get(cid), self.records.contains_key(rid)) else {
                continue;
            };
            let title = match live.iter().find(|r| r.id == rid) {
                Some(rec) => def.title(&rec.values),
                None => {
                    self.deleted.insert(rid.to_owned());
                    ["before", "after"].iter().find_map(|side| {
                        let vals = e.detail_side(side)?.get("values")?.as_object()?;
                        let vals: crate::records::values::Values =
                            vals.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        def.title(&vals)
                    })
                }
            };
            if let Some(t) = title {
                self.records.insert(rid.to_owned(), t);
            }
        }
    }

    /// The accounts among `ids`, and the one with the email `by_email`
    /// (platform staff's pages).
    pub async fn accounts(state: &AppState, ids: &[&str], by_email: Option<&str>) -> Result<Names> {
        let mut n = Names::default();
        let mut wanted: Vec<crate::ids::UserId> =
            ids.iter().filter_map(|s| s.parse().ok()).collect();
        wanted.sort();
        wanted.dedup();
        let keys = state.control.keys.clone();
        let email = by_email.filter(|e| e.contains('@')).map(str::to_owned);
        let users = state
            .control
            .db
            .read_async(move |c| {
                let mut out = Vec::new();
                for id in wanted {
                    // A service account's name was typed inside its
                    // workspace: not for platform pages (an id only).
                    if crate::store::accounts::is_service(c, id)? {
                        continue;
                    }
                    if let Some(u) = crate::store::control::get_user(c, &keys, id)? {
                        out.push(u);
                    }
                }
                if let Some(e) = email
                    && let Some(u) = crate::store::control::find_user_by_email(c, &keys, &e)?
                    && !crate::store::accounts::is_service(c, u.id)?
                {
                    out.push(u);
                }
                Ok(out)
            })
            .await?;
        for u in users {
            n.people.insert(u.id.to_string(), (u.name, u.email));
        }
        Ok(n)
    }

    /// The undo of a deletion this entry records, when the record is still
    /// deleted and the reader may restore it: `/w/…/r/…/undelete`.
    pub fn undo_of(&self, e: &EntryView) -> Option<String> {
        let rid = e.target.as_deref()?;
        let cid = e.detail_side("before")?.get("collection")?.as_str()?;
        let (ws, _) = self.workspace.as_ref()?;
        let ok = e.action == "record.deleted"
            && !e.redacted
            && !e.withheld
            && self.deleted.contains(rid)
            && self.deletable.contains(cid);
        ok.then(|| format!("/w/{ws}/c/{cid}/r/{rid}/undelete"))
    }

    /// A person: "Name (email)", or the id when not known here.
    pub fn person(&self, id: &str) -> Markup {
        match self.people.get(id) {
            Some((Some(name), email)) => {
                html! { span title=(id) { (name) " " span.muted { "(" (email) ")" } } }
            }
            Some((None, email)) => html! { span title=(id) { (email) } },
            None => html! { (id) },
        }
    }

    /// An entry's target: a person, a collection by name; else its type
    /// and a short id (the whole id on hover).
    pub fn target(&self, kind: Option<&str>, id: Option<&str>) -> Markup {
        let (kind, id) = (kind.unwrap_or_default(), id.unwrap_or_default());
        match kind {
            "user" | "member" if self.people.contains_key(id) => html! { (self.person(id)) },
            "collection" if self.collections.contains_key(id) => {
                html! { "collection " span title=(id) { (self.collections[id]) } }
            }
            "record" if self.records.contains_key(id) => {
                html! { "record " span title=(id) { (self.records[id]) } }
            }
            "workspace" if self.workspace.as_ref().is_some_and(|(w, _)| w == id) => {
                let name = self
                    .workspace
                    .as_ref()
                    .map(|(_, n)| n.as_str())
                    .unwrap_or_default();
                html! { "workspace " span title=(id) { (name) } }
            }
            _ => {
                let short: String = id.chars().take(8).collect();
                html! { (kind) " " span.muted title=(id) { (short) @if id.chars().count() > 8 { "…" } } }
            }
        }
    }

    /// A key of an entry's before/after: a field's name for a field id.
    pub fn key(&self, k: &str) -> String {
        self.fields.get(k).cloned().unwrap_or_else(|| k.to_owned())
    }

    /// A value of an entry's before/after: a collection's name for its id.
    pub fn value(&self, key: &str, v: &str) -> String {
        match (key, self.collections.get(v)) {
            ("collection" | "collection_id", Some(name)) => name.clone(),
            _ => v.to_owned(),
        }
    }

    /// The user id a search's "actor" names: an id as it is; else the one
    /// member whose email or name matches (case-insensitive; an email
    /// exactly, a name as a prefix of a word).
    pub fn find_person(&self, needle: &str) -> Option<String> {
        let n = needle.trim().to_lowercase();
        if n.is_empty() || self.people.contains_key(needle.trim()) {
            return None;
        }
        let hits: Vec<&String> = self
            .people
            .iter()
            .filter(|(_, (name, email))| {
                email.to_lowercase() == n
                    || name.as_deref().is_some_and(|name| {
                        let name = name.to_lowercase();
                        name.starts_with(&n) || name.split_whitespace().any(|w| w.starts_with(&n))
                    })
            })
            .map(|(id, _)| id)
            .collect();
        match hits.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        }
    }
}
