//! Passkeys (WebAuthn, through webauthn-rs): registered by a signed-in
//! person (password again), used as the second factor after a password or a
//! magic link, or on their own as the first factor ("Sign in with a
//! passkey": user verification makes them multi-factor by themselves).
//!
//! Ceremony state lives in memory for five minutes, in a store bounded by
//! `limits.passkey_ceremonies` whose expired entries leave from the front of
//! an insertion-ordered queue (no scan of the whole map under its lock);
//! anonymous sign-in starts are limited per address network
//! (`limits.passkey_starts_per_ip_per_minute`). The relying party is the
//! host of `public_url`; an address that is an IP cannot have passkeys (the
//! browsers refuse), and the routes then answer 404.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::access::Principal;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::config::Config;
use crate::crypto::token::random_token;
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::UserId;
use crate::store::passkeys::{self as store, PasskeyRow};
use crate::store::{audit, control};

const CEREMONY_SECS: i64 = 5 * 60;

enum Ceremony {
    Register {
        user: UserId,
        name: String,
        state: PasskeyRegistration,
    },
    /// The second step of a sign-in that passed its first factor.
    SecondFactor {
        user: UserId,
        pending: String,
        state: PasskeyAuthentication,
    },
    /// A sign-in with a passkey alone.
    Discover { state: DiscoverableAuthentication },
}

/// Ceremonies by id, and their ids in the order they expire.
#[derive(Default)]
struct Ceremonies {
    map: HashMap<String, (i64, Ceremony)>,
    order: VecDeque<(i64, String)>,
}

/// The relying party and the ceremonies in flight.
pub struct Passkeys {
    webauthn: Option<Webauthn>,
    ceremonies: Mutex<Ceremonies>,
    max: usize,
}

impl Passkeys {
    pub fn from_config(cfg: &Config) -> Self {
        let webauthn = Url::parse(&cfg.public_url).ok().and_then(|origin| {
            let host = origin.host_str()?.to_owned();
            if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
                return None;
            }
            WebauthnBuilder::new(&host, &origin)
                .ok()?
                .rp_name("Aura")
                .build()
                .ok()
        });
        Self {
            webauthn,
            ceremonies: Mutex::new(Ceremonies::default()),
            max: cfg.file.limits.passkey_ceremonies.max(1),
        }
    }

    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn rp(&self) -> Result<&Webauthn> {
        self.webauthn.as_ref().ok_or(Error::NotFound(
            "passkeys (public_url must be a domain name, e.g. https://aura.example.com)",
        ))
    }

    /// Stores a ceremony, or refuses (429) when the store is full of live
    /// ones. Every entry lives `CEREMONY_SECS`, so the queue is in expiry
    /// order and only its expired front is looked at.
    fn put(&self, now: i64, c: Ceremony) -> Result<String> {
        let id = random_token();
        let mut s = self.ceremonies.lock().unwrap_or_else(|p| p.into_inner());
        while s.order.front().is_some_and(|(expires, _)| *expires <= now) {
            if let Some((expires, old)) = s.order.pop_front() {
                if s.map.get(&old).is_some_and(|(e, _)| *e == expires) {
                    s.map.remove(&old);
                }
            }
        }
        if s.map.len() >= self.max {
            let retry_after_secs = s
                .order
                .front()
                .map(|(e, _)| (e - now).max(1) as u64)
                .unwrap_or(1);
            tracing::warn!("passkey ceremony store full; start refused");
            return Err(Error::RateLimited { retry_after_secs });
        }
        // Ids of finished ceremonies linger in the queue until they expire;
        // compact when they outnumber the live ones.
        if s.order.len() >= 2 * self.max {
            let Ceremonies { map, order } = &mut *s;
            order.retain(|(_, id)| map.contains_key(id));
        }
        s.map.insert(id.clone(), (now + CEREMONY_SECS, c));
        s.order.push_back((now + CEREMONY_SECS, id.clone()));
        Ok(id)
    }

    fn take(&self, id: &str, now: i64) -> Option<Ceremony> {
        let mut s = self.ceremonies.lock().unwrap_or_else(|p| p.into_inner());
        s.map
            .remove(id)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, c)| c)
    }
}

fn rp_error(e: impl std::fmt::Display) -> Error {
    tracing::info!(error = %e, "passkey ceremony refused");
    Error::field("credential", "the passkey could not be verified")
}

fn parse(row: &PasskeyRow) -> Result<Passkey> {
    serde_json::from_slice(&row.passkey_json)
        .map_err(|_| Error::internal("a stored passkey does not parse"))
}

/// The account's passkeys.
pub async fn list(deps: &Deps<'_>, user: UserId) -> Result<Vec<PasskeyRow>> {
    let keys = deps.control.keys.clone();
    deps.control
        .db
        .read_async(move |c| store::for_user(c, &keys, user))
        .await
}

/// Starts registering a passkey for the caller (their password again).
pub async fn start_registration(
    deps: &Deps<'_>,
    who: &Principal,
    password: String,
    name: &str,
    meta: &RequestMeta,
) -> Result<(String, CreationChallengeResponse)> {
    let rp = deps.passkeys.rp()?;
    let name = super::validate_name("name", name)?;
    let me = super::guard::reauthenticate(deps, who, password, "password", meta).await?;
    let uid = me.id;
    let existing: Vec<_> = list(deps, uid)
        .await?
        .iter()
        .filter_map(|r| parse(r).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let display = me.name.clone().unwrap_or_else(|| me.email.clone());
    let (options, reg) = rp
        .start_passkey_registration(uid.as_uuid(), &me.email, &display, Some(existing))
        .map_err(rp_error)?;
    let now = deps.clock.unix();
    let id = deps.passkeys.put(
        now,
        Ceremony::Register {
            user: uid,
            name,
            state: reg,
        },
    )?;
    Ok((id, options))
}

pub async fn finish_registration(
    deps: &Deps<'_>,
    who: &Principal,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    meta: &RequestMeta,
) -> Result<PasskeyRow> {
    let rp = deps.passkeys.rp()?;
    let now = deps.clock.unix();
    let Some(Ceremony::Register {
        user,
        name,
        state: reg,
    }) = deps.passkeys.take(ceremony, now)
    else {
        return Err(Error::field("ceremony", "expired or unknown; start again"));
    };
    if user != who.user_id {
        return Err(Error::field("ceremony", "expired or unknown; start again"));
    }
    let passkey = rp
        .finish_passkey_registration(credential, &reg)
        .map_err(rp_error)?;
    let json =
        serde_json::to_vec(&passkey).map_err(|_| Error::internal("serializing a passkey"))?;
    let row = PasskeyRow {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user,
        name,
        passkey_json: json,
        created_at: now,
        last_used_at: None,
    };
    let r = row.clone();
    let cred_id = passkey.cred_id().to_vec();
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            store::insert(tx, &keys, &r, &cred_id)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(user), "mfa.passkey_added", &m).target("passkey", &r.id),
            )?;
            Ok(())
        })
        .await?;
    Ok(row)
}

/// Removes a passkey (the password again).
pub async fn remove(
    deps: &Deps<'_>,
    who: &Principal,
    id: &str,
    password: String,
    meta: &RequestMeta,
) -> Result<()> {
    let uid = super::guard::reauthenticate(deps, who, password, "password", meta)
        .await?
        .id;
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let now = deps.clock.unix();
    let pid = id.to_owned();
    deps.control
        .db
        .write_async(move |tx| {
            store::delete(tx, uid, &pid)?;
            let left = store::count_for_user(tx, uid)?
                + i64::from(crate::store::mfa::has_confirmed_totp(tx, uid)?);
            crate::store::mfa::check_last_factor(tx, uid, left)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(uid), "mfa.passkey_removed", &m).target("passkey", &pid),
            )?;
            Ok(())
        })
        .await
}

/// The second step of a sign-in with a passkey: options for the account's
/// passkeys, bound to the pending sign-in.
pub async fn start_second_factor(
    deps: &Deps<'_>,
    pending: &str,
) -> Result<(String, RequestChallengeResponse)> {
    let rp = deps.passkeys.rp()?;
    let now = deps.clock.unix();
    let user = deps
        .limits
        .mfa_pending
        .peek(pending, now)
        .ok_or(Error::Unauthenticated)?;
    let keys: Vec<Passkey> = list(deps, user)
        .await?
        .iter()
        .filter_map(|r| parse(r).ok())
        .collect();
    if keys.is_empty() {
        return Err(Error::field("passkey", "this account has no passkey"));
    }
    let (options, auth) = rp.start_passkey_authentication(&keys).map_err(rp_error)?;
    let id = deps.passkeys.put(
        now,
        Ceremony::SecondFactor {
            user,
            pending: pending.to_owned(),
            state: auth,
        },
    )?;
    Ok((id, options))
}

/// A sign-in with a passkey alone: anonymous, so limited per address.
pub fn start_discoverable(
    deps: &Deps<'_>,
    meta: &RequestMeta,
) -> Result<(String, RequestChallengeResponse)> {
    let rp = deps.passkeys.rp()?;
    let now = deps.clock.unix();
    let limits = &deps.config.file.limits;
    let key = super::netkey::key(meta.ip.as_deref(), limits);
    deps.limits
        .passkey_starts
        .hit(&key, now, limits.passkey_starts_per_ip_per_minute, 60)?;
    let (options, auth) = rp.start_discoverable_authentication().map_err(rp_error)?;
    let id = deps.passkeys.put(now, Ceremony::Discover { state: auth })?;
    Ok((id, options))
}

/// Finishes either sign-in ceremony; returns the account (and, for a second
/// step after a provider's sign-in, its SSO mark), with the pending second
/// step spent. The counter is updated and the use audited.
pub async fn finish_sign_in(
    deps: &Deps<'_>,
    ceremony: &str,
    credential: &PublicKeyCredential,
    meta: &RequestMeta,
) -> Result<(UserId, Option<crate::access::SsoMark>)> {
    let rp = deps.passkeys.rp()?;
    let now = deps.clock.unix();
    let refused = || Error::MfaInvalid;
    let mut mark = None;
    let (user, stored, result) = match deps.passkeys.take(ceremony, now) {
        Some(Ceremony::SecondFactor {
            user,
            pending,
            state: auth,
        }) => {
            let r = rp.finish_passkey_authentication(credential, &auth);
            // A sign-in through a workspace's provider keeps its mark.
            mark = deps
                .limits
                .mfa_pending
                .peek_sso(&pending, now)
                .and_then(|(_, m)| m);
            deps.limits.mfa_pending.finish(&pending);
            let r = r.map_err(|_| refused())?;
            (user, list(deps, user).await?, r)
        }
        Some(Ceremony::Discover { state: auth }) => {
            let (uuid, _) = rp
                .identify_discoverable_authentication(credential)
                .map_err(|_| refused())?;
            let user = UserId::from_uuid(uuid);
            let stored = list(deps, user).await?;
            let keys: Vec<DiscoverableKey> = stored
                .iter()
                .filter_map(|r| parse(r).ok())
                .map(|p| DiscoverableKey::from(&p))
                .collect();
            let r = rp
                .finish_discoverable_authentication(credential, auth, &keys)
                .map_err(|_| refused())?;
            (user, stored, r)
        }
        _ => return Err(Error::Unauthenticated),
    };
    // Store the new counter on the passkey that was used.
    let mut used = None;
    for row in stored {
        let Ok(mut p) = parse(&row) else { continue };
        if p.cred_id() == result.cred_id() {
            p.update_credential(&result);
            used = Some((row.id, serde_json::to_vec(&p).unwrap_or(row.passkey_json)));
            break;
        }
    }
    let Some((pid, json)) = used else {
        return Err(refused());
    };
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let disabled = deps
        .control
        .db
        .write_async(move |tx| {
            store::update(tx, &keys, &pid, &json, now)?;
            let disabled = control::get_user(tx, &keys, user)?.is_none_or(|u| u.disabled);
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(user), "auth.passkey_used", &m).target("passkey", &pid),
            )?;
            Ok(disabled)
        })
        .await?;
    if disabled {
        return Err(Error::Unauthenticated);
    }
    Ok((user, mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> (Passkeys, Webauthn) {
        let origin = Url::parse("http://localhost").unwrap();
        let rp = WebauthnBuilder::new("localhost", &origin)
            .unwrap()
            .build()
            .unwrap();
        let p = Passkeys {
            webauthn: None,
            ceremonies: Mutex::new(Ceremonies::default()),
            max,
        };
        (p, rp)
    }

    fn discover(rp: &Webauthn) -> Ceremony {
        Ceremony::Discover {
            state: rp.start_discoverable_authentication().unwrap().1,
        }
    }

    #[test]
    fn the_store_is_bounded_and_expired_ceremonies_leave_from_the_front() {
        let (p, rp) = store(3);
        let a = p.put(100, discover(&rp)).unwrap();
        p.put(100, discover(&rp)).unwrap();
        p.put(101, discover(&rp)).unwrap();
        assert!(matches!(
            p.put(102, discover(&rp)),
            Err(Error::RateLimited {
                retry_after_secs: 298
            })
        ));
        assert!(p.take(&a, 102).is_some());
        p.put(102, discover(&rp)).unwrap();
        // All of them expired: they leave from the front of the queue.
        let later = 102 + CEREMONY_SECS;
        for _ in 0..3 {
            p.put(later, discover(&rp)).unwrap();
        }
        let s = p.ceremonies.lock().unwrap();
        assert_eq!(s.map.len(), 3);
        assert_eq!(s.order.len(), 3);
    }
}
