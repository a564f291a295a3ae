//! Moving a workspace to another appliance (for residency, say from an India
//! VM to an EU one). `move_out` turns the workspace read-only, records
//! `workspace.moved_out` in both chains, signs its chain's head and writes a
//! bundle sealed to the target's age recipient. `move_in` on the target
//! checks the bundle's chain against the source's signed checkpoints with the
//! source's public key, then imports it under its own master key and
//! re-anchors the chain: a `workspace.moved_in` entry and a checkpoint signed
//! by the target (plus a retention anchor if the source had pruned), so
//! `aura audit verify` passes there. The source stays read-only until the
//! operator confirms (`move_confirm`, which shreds it) or cancels.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::bundle::{self, Checkpoint, Key, Manifest, Member};
use super::move_region;
pub use super::move_region::Ask;
use crate::access::{Role, SystemTask};
use crate::audit::chains::{self, checkpoint_workspace};
use crate::audit::signing::{ChainLink, CheckpointBody};
use crate::audit::verify::{Entries, Inputs, SignedCheckpoint, check};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::keys::KeyBytes;
use crate::crypto::{DataKey, Sealer, Slot};
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::store::Detached;
use crate::store::control::{self, NewUser};
use crate::store::lifecycle::{self, Kind};
use crate::store::{audit as sql, mfa};

pub struct MovedOut {
    pub path: PathBuf,
    pub size: u64,
    pub entries: u64,
    /// This appliance's audit public key (hex), which the target's operator
    /// names with `move-in --source-key`.
    pub source_key: String,
    pub destination: move_region::Destination,
}

fn parse_ws(s: &str) -> Result<WorkspaceId> {
    s.parse().map_err(|_| {
        Error::Usage(format!(
            "`{s}` is not a workspace id; see `aura workspace list`"
        ))
    })
}

/// Writes the bundle (blocking). Running it again for a workspace already
/// moving writes a fresh bundle.
pub fn move_out(
    deps: &super::Deps<'_>,
    workspace: &str,
    recipient: &str,
    ask: &Ask,
    out: &Path,
    progress: &dyn Fn(&str),
) -> Result<MovedOut> {
    let ws = parse_ws(workspace)?;
    let to: age::x25519::Recipient = recipient.trim().parse().map_err(|_| {
        Error::Usage(
            "--to-recipient: not an age recipient (age1...); on the target, run `age-keygen -y` on its identity file".into(),
        )
    })?;
    let keys = deps.control.keys.clone();
    let row = deps
        .control
        .db
        .read(|c| control::get_workspace(c, &keys, ws))?
        .ok_or_else(|| Error::Usage(format!("no workspace {ws}; see `aura workspace list`")))?;
    // Residency first: a refused move changes nothing.
    let dest = move_region::move_out(
        &deps.config.file.residency,
        &row.region,
        ask.target_region.as_deref(),
        ask.allow_cross_region.as_deref(),
    )?;
    let now = deps.clock.unix();
    let meta = RequestMeta::cli();
    let mut detail = dest.detail();
    detail["to_recipient"] = json!(recipient.trim());
    progress("making the workspace read-only");
    deps.control.db.write(|tx| {
        match lifecycle::get(tx, ws)? {
            Some(l) if l.kind == Kind::Deleting => {
                return Err(Error::Usage(
                    "the workspace is scheduled for deletion; an owner must cancel that first"
                        .into(),
                ));
            }
            Some(_) => {}
            None => lifecycle::begin(tx, ws, Kind::Moving, None, now, None)?,
        }
        sql::append(
            tx,
            &keys.sealer,
            now,
            &NewEntry::new(Actor::Operator, "workspace.moved_out", &meta)
                .target("workspace", ws)
                .after(detail.clone()),
        )?;
        Ok(())
    })?;
    let tenant = deps
        .tenants
        .open(deps.control, &SystemTask::MoveOut.grant(ws))?;
    tenant.write_blocking(|t| {
        t.audit(
            now,
            &NewEntry::new(Actor::Operator, "workspace.moved_out", &meta)
                .target("workspace", ws)
                .after(detail.clone()),
        )
    })?;
    // The head the target will check, signed here.
    checkpoint_workspace(deps.control, &tenant, "manual", now)?;
    let scratch = deps.config.data_dir.join(format!(".move-out-{ws}"));
    let _ = std::fs::remove_dir_all(&scratch);
    crate::store::create_private_dir(&scratch)?;
    let result = (|| {
        progress("snapshot the workspace");
        let data = scratch.join("data.db");
        tenant.read_blocking(|c, _| crate::store::vacuum_into_private(c, &data))?;
        let entries = tenant.read_blocking(|c, _| sql::entry_count(c))?;
        progress("copy the workspace's sealed files");
        let files = super::move_files::gather(&tenant, &data, &scratch)?;
        let manifest = deps.control.db.read(|c| {
            let wrapped = control::workspace_keys(c, ws)?;
            let keys_out = wrapped
                .iter()
                .map(|(kid, w)| {
                    let k = deps.control.master.unwrap_key(&ws.to_string(), *kid, w)?;
                    Ok(Key {
                        key_id: *kid,
                        key_hex: hex::encode(k.bytes.expose()),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let members = control::workspace_members(c, &keys, ws)?
                .into_iter()
                .map(|(u, role)| {
                    Ok(Member {
                        kind: lifecycle::user_kind(c, u.id)?,
                        id: u.id.to_string(),
                        email: u.email,
                        name: u.name,
                        role: role.as_str().into(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let checkpoints = sql::checkpoints(c, &ws.to_string())?
                .into_iter()
                .map(|cp| Checkpoint {
                    seq: cp.body.seq,
                    hash: hex::encode(&cp.body.hash),
                    time: cp.body.time,
                    index: cp.body.link.as_ref().map(|l| l.index),
                    prev: cp.body.link.as_ref().map(|l| hex::encode(&l.prev)),
                    reason: cp.body.reason,
                    signature: hex::encode(&cp.signature),
                })
                .collect();
            Ok(Manifest {
                format: bundle::FORMAT,
                aura_version: env!("CARGO_PKG_VERSION").into(),
                created_at: now,
                source_region: deps.config.file.region.clone(),
                workspace: bundle::Workspace {
                    id: ws.to_string(),
                    name: row.name.clone(),
                    region: row.region.clone(),
                    require_mfa: mfa::require_mfa(c, ws)?,
                },
                keys: keys_out,
                members,
                audit_public_key: hex::encode(deps.control.signer.public_key()),
                checkpoints,
                data_sha256: crate::backup::target::sha256_file(&data)?,
                target_region: dest.target_region.clone(),
                cross_region_reason: dest.cross_region_reason.clone(),
                files,
            })
        })?;
        progress("compress and encrypt for the target");
        let size = bundle::write(out, &to, &manifest, &data, &scratch.join("files"))?;
        Ok(MovedOut {
            path: out.to_owned(),
            size,
            entries,
            source_key: hex::encode(deps.control.signer.public_key()),
            destination: dest.clone(),
        })
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

pub struct MovedIn {
    pub workspace: WorkspaceId,
    pub entries: u64,
    pub members_matched: usize,
    pub members_created: usize,
}

/// Parses `--source-key`: the source appliance's audit public key, 64 hex
/// characters (printed by `move-out` and in the source's /trust.json).
pub fn parse_source_key(hex_key: &str) -> Result<[u8; 32]> {
    hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Error::Usage(
                "--source-key: must be the source appliance's audit public key, 64 hex characters (printed by `aura workspace move-out`, and `document.audit.public_key` in its /trust.json)".into(),
            )
        })
}

/// Imports a bundle (blocking). Nothing is written before every check
/// passed. The bundle's checkpoints must verify against `source_key`, the
/// key the operator names; the key inside the bundle is not trusted.
pub fn move_in(
    deps: &super::Deps<'_>,
    bundle_path: &Path,
    identity: &age::x25519::Identity,
    source_key: &[u8; 32],
    allow_cross_region: Option<&str>,
    progress: &dyn Fn(&str),
) -> Result<MovedIn> {
    let scratch = deps
        .config
        .data_dir
        .join(format!(".move-in-{}", uuid::Uuid::new_v4()));
    progress("decrypt and unpack");
    let result = (|| {
        let manifest = bundle::unpack(bundle_path, identity, &scratch)?;
        import(
            deps,
            &manifest,
            &scratch.join("data.db"),
            source_key,
            allow_cross_region,
            progress,
        )
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn bad(m: impl std::fmt::Display) -> Error {
    Error::Usage(format!("bundle rejected: {m}; nothing was imported"))
}

fn import(
    deps: &super::Deps<'_>,
    m: &Manifest,
    data: &Path,
    source_key: &[u8; 32],
    allow_cross_region: Option<&str>,
    progress: &dyn Fn(&str),
) -> Result<MovedIn> {
    let f = &deps.config.file;
    let arrival = move_region::move_in(
        &f.residency,
        &f.region,
        &m.target_region,
        &m.workspace.region,
        m.cross_region_reason.as_deref(),
        allow_cross_region,
    )?;
    let ws: WorkspaceId = m
        .workspace
        .id
        .parse()
        .map_err(|_| bad("bad workspace id"))?;
    let keys = deps.control.keys.clone();
    if deps
        .control
        .db
        .read(|c| control::get_workspace(c, &keys, ws))?
        .is_some()
    {
        return Err(Error::Usage(format!(
            "workspace {ws} already exists on this appliance; nothing was imported"
        )));
    }
    progress("check the data and its audit chain");
    // The chain is read in pages from the bundle's data.db, never whole.
    let conn = Detached::read_only(data)?;
    let ok = lifecycle::integrity_check(&conn)?;
    if ok != "ok" {
        return Err(bad(format!("data.db fails its integrity check: {ok}")));
    }
    if !m
        .audit_public_key
        .trim()
        .eq_ignore_ascii_case(&hex::encode(source_key))
    {
        return Err(bad(format!(
            "it says it comes from audit key {}, not the source key you named (--source-key {}); anyone who knows this appliance's age recipient can write a bundle",
            m.audit_public_key,
            hex::encode(source_key)
        )));
    }
    // The keys must open the data: one sealed audit detail, as the drill does.
    let data_keys = m
        .keys
        .iter()
        .map(|k| {
            let raw = hex::decode(&k.key_hex).map_err(|_| bad("a key is not hex"))?;
            Ok(DataKey {
                key_id: k.key_id,
                bytes: KeyBytes::from_slice(&raw)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if data_keys.is_empty() {
        return Err(bad("it carries no data key"));
    }
    let sealer = Sealer::new(ws.to_string(), &data_keys)?;
    if let Some(e) = sql::first_sealed_entry(&conn)? {
        let ct = e.detail_ct.clone().unwrap_or_default();
        sealer
            .open(Slot::new("audit_log", &e.seq.to_string(), "detail"), &ct)
            .map_err(|_| bad("its keys do not open its data"))?;
    }
    let cps = m
        .checkpoints
        .iter()
        .map(|c| {
            Ok(SignedCheckpoint {
                body: CheckpointBody {
                    scope: ws.to_string(),
                    seq: c.seq,
                    hash: hex::decode(&c.hash).map_err(|_| bad("a checkpoint is not hex"))?,
                    time: c.time,
                    reason: c.reason.clone(),
                    link: match (c.index, &c.prev) {
                        (Some(index), Some(prev)) => Some(ChainLink {
                            index,
                            prev: hex::decode(prev).map_err(|_| bad("a checkpoint is not hex"))?,
                        }),
                        _ => None,
                    },
                },
                signature: hex::decode(&c.signature).map_err(|_| bad("a signature is not hex"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // The same verification as `aura audit verify`, with the named key.
    let scope = ws.to_string();
    let report = check(&Inputs {
        scope: &scope,
        entries: Entries::Db(&conn),
        checkpoints: &cps,
        public_key: Some(source_key),
        sealer: Some(&sealer),
        freshness: Some((
            m.created_at,
            chains::max_unsigned_age(deps.config.file.audit.checkpoint_interval_secs),
        )),
        anchors: &[],
    })?;
    // The first entry names where the chain starts (after retention on the
    // source); the connection closes before data.db moves into place.
    let (first_seq, first_prev) = sql::entries_after(&conn, 0, 1)?
        .first()
        .map(|e| (e.seq, e.prev_hash.clone()))
        .unwrap_or((1, Vec::new()));
    let entries = report.entries;
    drop(conn);
    if let Some(seq) = report.first_bad_seq {
        return Err(bad(format!(
            "its audit chain does not verify against the source key at seq {seq}: {}",
            report.reason.unwrap_or_default()
        )));
    }
    if report.checkpoint_seq != Some(report.head_seq) {
        return Err(bad("its chain's head is not signed by the source key"));
    }
    let mut members = Vec::new();
    for mb in &m.members {
        let role: Role = mb
            .role
            .parse()
            .map_err(|_| bad("a member has a bad role"))?;
        let id: UserId = mb.id.parse().map_err(|_| bad("a member has a bad id"))?;
        members.push((mb, id, role));
    }
    let wrapped = data_keys
        .iter()
        .map(|k| Ok((k.key_id, deps.control.master.wrap_key(&ws.to_string(), k)?)))
        .collect::<Result<Vec<_>>>()?;

    let listed = Detached::read_only(data)?;
    super::move_files::check_rows(&listed, m).map_err(bad)?;
    drop(listed);

    progress("import");
    let dir = deps.tenants.tenants_dir().join(ws.to_string());
    crate::store::create_private_dir(&dir)?;
    let blobs = deps.tenants.blobs(ws);
    if let Err(e) = super::move_files::place(&blobs, data, m) {
        let _ = super::move_files::remove(&blobs, &dir);
        return Err(e);
    }
    for f in ["data.db", "data.db-wal", "data.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    std::fs::File::open(data)?.sync_all()?;
    std::fs::rename(data, dir.join("data.db"))?;
    crate::dirsync::sync_parent(&dir.join("data.db"))?;
    let now = deps.clock.unix();
    let meta = RequestMeta::cli();
    let source = json!({
        "source_region": m.source_region,
        "source_audit_key": m.audit_public_key,
        "source_head_seq": report.head_seq,
        "bundle_created_at": m.created_at,
        "workspace_region": m.workspace.region,
        "target_region": m.target_region,
        "cross_region_reason": m.cross_region_reason,
        "allow_cross_region": arrival.allowed_here,
    });
    let written = deps.control.db.write(|tx| {
        let (first, rest) = wrapped.split_first().ok_or_else(|| bad("no data key"))?;
        control::insert_workspace(
            tx,
            &keys,
            ws,
            &m.workspace.name,
            &arrival.region,
            (first.0, &first.1),
            now,
        )?;
        for (kid, w) in rest {
            lifecycle::insert_key(tx, ws, *kid, w, now)?;
        }
        mfa::set_require_mfa(tx, ws, m.workspace.require_mfa, now)?;
        let (mut matched, mut created) = (0, 0);
        for (mb, id, role) in &members {
            let user = match control::find_user_by_email(tx, &keys, &mb.email)? {
                Some(u) => {
                    matched += 1;
                    u.id
                }
                None => {
                    // Same id as on the source, so the chain's actor ids
                    // and the workspace's own references still name them.
                    control::insert_user(
                        tx,
                        &keys,
                        &NewUser {
                            id: *id,
                            email: &mb.email,
                            name: mb.name.as_deref(),
                            password_hash: None,
                            platform_admin: false,
                        },
                        now,
                    )?;
                    if mb.kind == "service" {
                        lifecycle::mark_service(tx, *id)?;
                    }
                    created += 1;
                    *id
                }
            };
            control::insert_membership(tx, ws, user, *role, now)?;
        }
        lifecycle::unshred(tx, ws)?;
        let mut after = source.clone();
        after["members_matched"] = json!(matched);
        after["members_created"] = json!(created);
        sql::append(
            tx,
            &keys.sealer,
            now,
            &NewEntry::new(Actor::Operator, "workspace.moved_in", &meta)
                .target("workspace", ws)
                .after(after),
        )?;
        Ok((matched, created))
    });
    let (matched, created) = match written {
        Ok(v) => v,
        Err(e) => {
            let _ = super::move_files::remove(&blobs, &dir);
            return Err(e);
        }
    };
    // Re-anchor the chain under this appliance's audit key.
    progress("re-anchor the audit chain");
    if first_seq > 1 {
        chains::sign_anchor(
            deps.control,
            &ws.to_string(),
            first_seq - 1,
            first_prev,
            now,
        )?;
    }
    let tenant = deps
        .tenants
        .open(deps.control, &SystemTask::MoveIn.grant(ws))?;
    tenant.write_blocking(|t| {
        t.audit(
            now,
            &NewEntry::new(Actor::Operator, "workspace.moved_in", &meta)
                .target("workspace", ws)
                .after(source.clone()),
        )
    })?;
    checkpoint_workspace(deps.control, &tenant, "manual", now)?;
    Ok(MovedIn {
        workspace: ws,
        entries: entries + 1,
        members_matched: matched,
        members_created: created,
    })
}

/// The operator confirms the target has the workspace: the source shreds it.
pub fn move_confirm(deps: &super::Deps<'_>, workspace: &str) -> Result<usize> {
    let ws = parse_ws(workspace)?;
    let l = deps.control.db.read(|c| lifecycle::get(c, ws))?;
    if !l.is_some_and(|l| l.kind == Kind::Moving) {
        return Err(Error::Usage(format!(
            "workspace {ws} is not being moved; run `aura workspace move-out` first"
        )));
    }
    super::shred(deps, ws, "moved", Actor::Operator, &RequestMeta::cli())
}

/// The move is off: the workspace is writable again here.
pub fn move_cancel(deps: &super::Deps<'_>, workspace: &str) -> Result<()> {
    let ws = parse_ws(workspace)?;
    let now = deps.clock.unix();
    let meta = RequestMeta::cli();
    let keys = deps.control.keys.clone();
    deps.control.db.write(|tx| {
        if !lifecycle::cancel(tx, ws, Kind::Moving, now)? {
            return Err(Error::Usage(format!("workspace {ws} is not being moved")));
        }
        sql::append(
            tx,
            &keys.sealer,
            now,
            &NewEntry::new(Actor::Operator, "workspace.move_cancelled", &meta)
                .target("workspace", ws),
        )?;
        Ok(())
    })?;
    let tenant = deps
        .tenants
        .open(deps.control, &SystemTask::MoveCancel.grant(ws))?;
    tenant.write_blocking(|t| {
        t.audit(
            now,
            &NewEntry::new(Actor::Operator, "workspace.move_cancelled", &meta)
                .target("workspace", ws),
        )
    })?;
    Ok(())
}
