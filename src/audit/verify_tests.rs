//! Unit tests of `verify.rs`.

use serde_json::json;

use ed25519_dalek::{Signer, SigningKey};

use super::*;
use crate::audit::signing::ChainLink;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::DataKey;
use crate::store::Detached;

/// A workspace chain of `n` entries in a fresh in-memory database.
fn chain_of(n: i64) -> (Detached, Sealer) {
    let mut conn = Detached::memory(crate::store::migrations::TENANT).unwrap();
    let sealer = Sealer::new("ws1", &[DataKey::generate(1)]).unwrap();
    let meta = RequestMeta::default();
    conn.write(|tx| {
        for i in 0..n {
            sql::append(
                tx,
                &sealer,
                1_000 + i,
                &NewEntry::new(Actor::System, "test.entry", &meta).after(json!({ "i": i })),
            )?;
        }
        Ok(())
    })
    .unwrap();
    (conn, sealer)
}

#[test]
fn a_chain_streamed_in_pages_verifies_like_one_in_memory() {
    let n = 2 * VERIFY_PAGE + 44;
    let (conn, sealer) = chain_of(n);
    let entries = sql::all_entries(&conn).unwrap();
    let streamed = check(&Inputs {
        sealer: Some(&sealer),
        ..Inputs::new("ws1", Entries::Db(&conn), &[], None)
    })
    .unwrap();
    let in_memory = check(&Inputs::new("ws1", Entries::Slice(&entries), &[], None)).unwrap();
    assert!(streamed.ok(), "{streamed:?}");
    assert_eq!(streamed, in_memory);
    assert_eq!(streamed.entries, n as u64);
    assert_eq!(streamed.head_seq, n);

    // An edit on the last page is found at its seq, and the snapshot
    // read was ended (the connection takes writes again).
    crate::store::audit::tamper_action(&conn, n - 3, "audit.nothing_happened").unwrap();
    let r = check(&Inputs::new("ws1", Entries::Db(&conn), &[], None)).unwrap();
    assert_eq!(r.first_bad_seq, Some(n - 3), "{r:?}");
    assert_eq!(r.entries, n as u64);
}

#[test]
fn freshness_names_the_first_old_entry_no_checkpoint_covers() {
    let (conn, _) = chain_of(VERIFY_PAGE + 10);
    let at = |now| {
        check(&Inputs {
            freshness: Some((now, 600)),
            ..Inputs::new("ws1", Entries::Db(&conn), &[], None)
        })
        .unwrap()
    };
    // Entry i was written at 1_000 + i - 1; nothing is signed.
    assert!(at(1_000 + 500).ok());
    let r = at(1_000 + 600 + 20);
    assert_eq!(r.first_bad_seq, Some(1), "{r:?}");
    assert!(
        r.reason
            .unwrap_or_default()
            .contains("no signed checkpoint covers it")
    );
}

fn chain(actions: &[&str], time: i64) -> Vec<StoredEntry> {
    let mut prev = GENESIS.to_vec();
    let mut out = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let mut e = StoredEntry {
            seq: i as i64 + 1,
            time,
            actor_type: "system".into(),
            actor_id: None,
            action: (*a).into(),
            target_type: None,
            target_id: None,
            ip: None,
            request_id: None,
            detail_ct: None,
            detail_digest: None,
            redacted_by: None,
            resealed: false,
            prev_hash: prev.clone(),
            hash: Vec::new(),
        };
        e.hash = e.compute_hash(&prev);
        prev = e.hash.clone();
        out.push(e);
    }
    out
}

struct Signer2 {
    key: SigningKey,
    last: Option<CheckpointBody>,
}

impl Signer2 {
    fn sign(&mut self, e: &StoredEntry, reason: &str, chained: bool) -> SignedCheckpoint {
        let body = CheckpointBody {
            scope: "ws".into(),
            seq: e.seq,
            hash: e.hash.clone(),
            time: e.time,
            reason: reason.into(),
            link: chained.then(|| CheckpointBody::link_after(self.last.as_ref())),
        };
        self.last = Some(body.clone());
        SignedCheckpoint {
            signature: self.key.sign(&body.message()).to_bytes().to_vec(),
            body,
        }
    }
}

fn run(entries: &[StoredEntry], cps: &[SignedCheckpoint], pk: &[u8; 32]) -> ChainReport {
    check(&Inputs {
        freshness: Some((1_000, 600)),
        ..Inputs::new("ws", Entries::Slice(entries), cps, Some(pk))
    })
    .unwrap()
}

#[test]
fn checkpoints_from_before_the_chain_still_verify_and_anchor_it() {
    let mut s = Signer2 {
        key: SigningKey::generate(&mut rand::rngs::OsRng),
        last: None,
    };
    let pk = s.key.verifying_key().to_bytes();
    let e = chain(&["a", "b", "c", "d", "e"], 900);
    let cps = vec![
        s.sign(&e[1], "schedule", false),
        s.sign(&e[3], "schedule", true),
        s.sign(&e[4], "schedule", true),
    ];
    assert_eq!(cps[1].body.link.as_ref().map(|l| l.index), Some(1));
    assert!(run(&e, &cps, &pk).ok());
    for gone in 0..2 {
        let mut fewer = cps.clone();
        fewer.remove(gone);
        let r = run(&e, &fewer, &pk);
        assert!(
            r.reason.unwrap_or_default().contains("unbroken chain"),
            "deleting checkpoint {gone}"
        );
    }
    // Reordered: swapping two chained checkpoints' places breaks their
    // signatures, since the index is signed.
    let mut swapped = cps.clone();
    let (a, b) = (swapped[1].body.link.clone(), swapped[2].body.link.clone());
    swapped[1].body.link = b;
    swapped[2].body.link = a;
    assert!(!run(&e, &swapped, &pk).ok());
    // The first chained checkpoint may not invent a predecessor.
    let mut forged = cps.clone();
    forged[1].body.link = Some(ChainLink {
        index: 1,
        prev: vec![9; 32],
    });
    assert!(!run(&e, &forged, &pk).ok());
}

#[test]
fn entries_older_than_the_allowed_age_must_be_signed() {
    let mut s = Signer2 {
        key: SigningKey::generate(&mut rand::rngs::OsRng),
        last: None,
    };
    let pk = s.key.verifying_key().to_bytes();
    let old = chain(&["a", "b", "c"], 100);
    let r = run(&old, &[], &pk);
    assert_eq!(r.first_bad_seq, Some(1), "{r:?}");
    let cps = vec![s.sign(&old[1], "schedule", true)];
    assert_eq!(run(&old, &cps, &pk).first_bad_seq, Some(3));
    let young = chain(&["a", "b", "c"], 950);
    assert!(run(&young, &[], &pk).ok());
}

#[test]
fn a_restore_checkpoint_supersedes_the_replaced_timeline() {
    let mut s = Signer2 {
        key: SigningKey::generate(&mut rand::rngs::OsRng),
        last: None,
    };
    let pk = s.key.verifying_key().to_bytes();
    let before = chain(&["a", "b", "c", "d", "e"], 900);
    let mut cps = vec![
        s.sign(&before[1], "schedule", true),
        s.sign(&before[4], "schedule", true),
    ];
    // Put back to seq 3 from a backup, then the restore entry at 4.
    let after = chain(&["a", "b", "c", "backup.restored"], 900);
    let mut manual = cps.clone();
    let mut s2 = Signer2 {
        key: SigningKey::from_bytes(&s.key.to_bytes()),
        last: s.last.clone(),
    };
    manual.push(s2.sign(&after[3], "manual", true));
    assert!(
        !run(&after, &manual, &pk).ok(),
        "old checkpoints still apply"
    );
    cps.push(s.sign(&after[3], "restore", true));
    let r = run(&after, &cps, &pk);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.checkpoint_seq, Some(4));
}
