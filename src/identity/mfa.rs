//! Second factors: TOTP (RFC 6238, SHA-1, 6 digits, 30-second steps, one
//! step of skew) with ten single-use recovery codes.
//!
//! - Enrolment needs the current password, shows the otpauth URI and a QR
//!   code (SVG, rendered here), and is confirmed with a code.
//! - A code is accepted once: the newest step used is stored, and an older or
//!   equal step is refused.
//! - At most `TRIES` wrong codes per account per `TRY_WINDOW`; then 429.
//!   A code takes its try before it is evaluated (check and count are one
//!   step), and a right code gives it back, so parallel codes get no more
//!   evaluations than sequential ones.
//! - Removing the factor needs the password and a current code.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::access::{Principal, Via};
use crate::audit::RequestMeta;
use crate::crypto::token::{hash_token, random_token, sha256};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::UserId;
use crate::store::SqlTx;

use crate::store::mfa;

const STEP: u64 = 30;
const SECRET_LEN: usize = 20;
const RECOVERY_CODES: usize = 10;
pub const TRIES: u32 = 5;
const TRY_WINDOW: i64 = 5 * 60;
/// How long the second step of a browser sign-in may wait.
const PENDING_SECS: i64 = 5 * 60;

fn totp(secret: &[u8], account: &str) -> Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        secret.to_vec(),
        Some("Aura".into()),
        account.to_owned(),
    )
    .map_err(|_| Error::internal("TOTP parameters rejected"))
}

/// The step a code matches (current, previous or next), if any.
fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let t = totp(secret, "").ok()?;
    let now = u64::try_from(now).ok()?;
    let current = now / STEP;
    [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|s| bool::from(t.generate(s * STEP).as_bytes().ct_eq(code.as_bytes())))
        .and_then(|s| i64::try_from(s).ok())
}

fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What enrolment shows once: the secret for manual entry, the otpauth URI
/// and the same URI as a QR code.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

pub async fn start_enrolment(
    deps: &Deps<'_>,
    who: &Principal,
    password: String,
    meta: &RequestMeta,
) -> Result<Enrolment> {
    let me = super::guard::reauthenticate(deps, who, password, "password", meta).await?;
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let shown = enrolment(&secret, &me.email)?;
    let keys = deps.control.keys.clone();
    let user = me.id;
    let now = deps.clock.unix();
    let stored = secret.clone();
    super::self_change(deps, user, "mfa.enrolment_started", now, meta, move |tx| {
        mfa::put_pending_totp(tx, &keys, user, &stored, now)
    })
    .await?;
    Ok(shown)
}

/// What the app needs to add the account: the secret, its otpauth URI and
/// that URI as a QR code.
fn enrolment(secret: &[u8], email: &str) -> Result<Enrolment> {
    let t = totp(secret, email)?;
    let uri = t.get_url();
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|_| Error::internal("the otpauth URI does not fit a QR code"))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrolment {
        secret_base32: t.get_secret_base32(),
        otpauth_uri: uri,
        qr_svg: qr,
    })
}

/// The enrolment started and not yet confirmed, shown again after a wrong
/// code so the person types the next code from the same entry in their app
/// instead of scanning a new one. Never for an API token.
pub async fn pending_enrolment(deps: &Deps<'_>, who: &Principal) -> Result<Option<Enrolment>> {
    if matches!(who.via, Via::ApiToken { .. }) {
        return Err(Error::Forbidden);
    }
    let user = who.user_id;
    let keys = deps.control.keys.clone();
    let found = deps
        .control
        .db
        .read_async(move |c| {
            let Some(row) = mfa::get_totp(c, &keys, user)?.filter(|r| !r.confirmed) else {
                return Ok(None);
            };
            let email = crate::store::control::get_user(c, &keys, user)?.map(|u| u.email);
            Ok(email.map(|e| (row.secret, e)))
        })
        .await?;
    found
        .map(|(secret, email)| enrolment(&secret, &email))
        .transpose()
}

/// New recovery codes in place of the old ones (which stop working), for an
/// account with a confirmed factor; the password is asked again. Shown once.
pub async fn regenerate_recovery_codes(
    deps: &Deps<'_>,
    who: &Principal,
    password: String,
    meta: &RequestMeta,
) -> Result<Vec<String>> {
    let me = super::guard::reauthenticate(deps, who, password, "password", meta).await?;
    let user = me.id;
    let (enabled, _) = status(deps, user).await?;
    if !enabled {
        return Err(Error::Conflict(
            "two-factor sign-in is off; turn it on first".into(),
        ));
    }
    let (codes, hashes) = recovery_codes();
    let now = deps.clock.unix();
    super::self_change(
        deps,
        user,
        "mfa.recovery_codes_regenerated",
        now,
        meta,
        move |tx| mfa::replace_recovery_codes(tx, user, &hashes),
    )
    .await?;
    Ok(codes)
}

/// Confirms enrolment with a code from the app and returns the recovery
/// codes, shown this once.
pub async fn confirm(
    deps: &Deps<'_>,
    who: &Principal,
    code: &str,
    meta: &RequestMeta,
) -> Result<Vec<String>> {
    if matches!(who.via, Via::ApiToken { .. }) {
        return Err(Error::Forbidden);
    }
    let user = who.user_id;
    let keys = deps.control.keys.clone();
    let row = deps
        .control
        .db
        .read_async(move |c| mfa::get_totp(c, &keys, user))
        .await?;
    let Some(row) = row.filter(|r| !r.confirmed) else {
        return Err(Error::Conflict(
            "there is no enrolment to confirm; start one first".into(),
        ));
    };
    let now = deps.clock.unix();
    take_try(deps, user, now)?;
    let Some(step) = matching_step(&row.secret, &normalize(code), now) else {
        return Err(Error::field(
            "code",
            "does not match; check the time on your device",
        ));
    };
    deps.limits.totp.give_back(&key(user), now);
    let (codes, hashes) = recovery_codes();
    super::self_change(deps, user, "mfa.enabled", now, meta, move |tx| {
        mfa::confirm_totp(tx, user, step, now)?;
        mfa::replace_recovery_codes(tx, user, &hashes)
    })
    .await?;
    Ok(codes)
}

/// Removes the second factor: password and a current code (or a recovery
/// code) required.
pub async fn remove(
    deps: &Deps<'_>,
    who: &Principal,
    password: String,
    code: &str,
    meta: &RequestMeta,
) -> Result<()> {
    let me = super::guard::reauthenticate(deps, who, password, "password", meta).await?;
    let proof = check_code(deps, me.id, code, meta).await?;
    let user = me.id;
    let now = deps.clock.unix();
    super::self_change(deps, user, "mfa.disabled", now, meta, move |tx| {
        let passkeys = crate::store::passkeys::count_for_user(tx, user)?;
        mfa::check_last_factor(tx, user, passkeys)?;
        proof.spend(tx, now)?;
        mfa::delete_mfa(tx, user)
    })
    .await
}

/// `(enrolled, recovery codes left)`.
pub async fn status(deps: &Deps<'_>, user: UserId) -> Result<(bool, i64)> {
    deps.control
        .db
        .read_async(move |c| {
            Ok((
                mfa::has_confirmed_totp(c, user)?,
                mfa::recovery_codes_left(c, user)?,
            ))
        })
        .await
}

/// A fresh set of recovery codes, to show once, and the hashes to keep.
fn recovery_codes() -> (Vec<String>, Vec<Vec<u8>>) {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let hashes = codes.iter().map(|c| hash_token(&normalize(c))).collect();
    (codes, hashes)
}

fn recovery_code() -> String {
    // 12 characters of a 256-bit token, in three groups: about 72 bits.
    let t: String = random_token()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("{}-{}-{}", &t[0..4], &t[4..8], &t[8..12])
}

fn key(user: UserId) -> String {
    format!("totp:{user}")
}

/// Takes one of the account's tries before a code is evaluated, or refuses
/// (429) when none is left. Check and count happen under one lock, so
/// however many codes arrive at once, at most `TRIES` are evaluated per
/// window; a code that turns out right gives its try back (`give_back`).
fn take_try(deps: &Deps<'_>, user: UserId, now: i64) -> Result<()> {
    deps.limits.totp.hit(&key(user), now, TRIES, TRY_WINDOW)
}

/// A code that checked out, not yet spent. The caller spends it with
/// `spend` inside the transaction of what it unlocks (a session, a removal),
/// so the code is used exactly when that happens.
#[derive(Clone, Debug)]
pub struct Proof {
    user: UserId,
    kind: ProofKind,
}

#[derive(Clone, Debug)]
enum ProofKind {
    Step(i64),
    Recovery(Vec<u8>),
}

impl Proof {
    pub fn method(&self) -> &'static str {
        match self.kind {
            ProofKind::Step(_) => "totp",
            ProofKind::Recovery(_) => "recovery code",
        }
    }

    /// Spends the code; `MfaInvalid` when it was spent meanwhile (replay).
    pub fn spend(&self, tx: &dyn SqlTx, now: i64) -> Result<()> {
        let ok = match &self.kind {
            ProofKind::Step(s) => mfa::use_step(tx, self.user, *s)?,
            ProofKind::Recovery(h) => mfa::use_recovery_code(tx, self.user, h, now)?,
        };
        if ok { Ok(()) } else { Err(Error::MfaInvalid) }
    }
}

/// Checks a TOTP or recovery code for an account with a confirmed factor.
/// A wrong or replayed code counts toward the per-account limit and is
/// audited as `auth.mfa_failed`.
pub async fn check_code(
    deps: &Deps<'_>,
    user: UserId,
    code: &str,
    meta: &RequestMeta,
) -> Result<Proof> {
    let now = deps.clock.unix();
    take_try(deps, user, now)?;
    let keys = deps.control.keys.clone();
    let code = normalize(code);
    let recovery = hash_token(&code);
    let probe = recovery.clone();
    let found = deps
        .control
        .db
        .read_async(move |c| {
            let Some(row) = mfa::get_totp(c, &keys, user)?.filter(|r| r.confirmed) else {
                return Ok(None);
            };
            if let Some(step) = matching_step(&row.secret, &code, now) {
                return Ok((step > row.last_step).then_some(ProofKind::Step(step)));
            }
            Ok(mfa::recovery_code_unused(c, user, &probe)?.then_some(ProofKind::Recovery(probe)))
        })
        .await?;
    if let Some(kind) = found {
        deps.limits.totp.give_back(&key(user), now);
        return Ok(Proof { user, kind });
    }
    super::self_change(deps, user, "auth.mfa_failed", now, meta, |_| Ok(())).await?;
    Err(Error::MfaInvalid)
}

/// After a correct password: nothing more for an account without a second
/// factor (`None`); otherwise the code is required and checked.
pub async fn second_factor(
    deps: &Deps<'_>,
    user: UserId,
    code: Option<&str>,
    meta: &RequestMeta,
) -> Result<Option<Proof>> {
    let enrolled = deps
        .control
        .db
        .read_async(move |c| mfa::has_second_factor(c, user))
        .await?;
    match (enrolled, code.map(str::trim).filter(|c| !c.is_empty())) {
        (false, _) => Ok(None),
        (true, None) => Err(Error::MfaRequired),
        (true, Some(c)) => check_code(deps, user, c, meta).await.map(Some),
    }
}

/// Browser sign-ins that passed the password and wait for the code, keyed by
/// the SHA-256 of a one-time token carried in the second form.
#[derive(Default)]
pub struct Pending {
    waiting: Mutex<HashMap<Vec<u8>, Waiting>>,
}

/// A sign-in waiting for its code: the account, the single sign-on it came
/// through (if any), and when it expires.
type Waiting = (UserId, Option<crate::store::sso::SsoMark>, i64);

impl Pending {
    pub fn start(&self, user: UserId, now: i64) -> String {
        self.start_sso(user, None, now)
    }

    /// A sign-in through a workspace's provider waiting for Aura's code; the
    /// session it opens keeps the mark.
    pub fn start_sso(
        &self,
        user: UserId,
        sso: Option<crate::store::sso::SsoMark>,
        now: i64,
    ) -> String {
        let token = random_token();
        let mut map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, _, expires)| *expires > now);
        map.insert(
            sha256(token.as_bytes()).to_vec(),
            (user, sso, now + PENDING_SECS),
        );
        token
    }

    /// The waiting account, if the token is live. The token stays usable
    /// for another try until it expires; the code limit bounds the tries.
    pub fn peek(&self, token: &str, now: i64) -> Option<UserId> {
        self.peek_sso(token, now).map(|(u, _)| u)
    }

    pub fn peek_sso(
        &self,
        token: &str,
        now: i64,
    ) -> Option<(UserId, Option<crate::store::sso::SsoMark>)> {
        let map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        map.get(sha256(token.as_bytes()).as_slice())
            .filter(|(_, _, expires)| *expires > now)
            .map(|(u, m, _)| (*u, *m))
    }

    pub fn finish(&self, token: &str) {
        let mut map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(sha256(token.as_bytes()).as_slice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_only() {
        let secret = [7u8; SECRET_LEN];
        let t = totp(&secret, "a@b.c").unwrap();
        let now = 1_700_000_000i64;
        let code = t.generate(now as u64);
        assert_eq!(matching_step(&secret, &code, now), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now + 90), None);
        assert_eq!(matching_step(&secret, "000000x", now), None);
        let r = recovery_code();
        assert_eq!(r.len(), 14);
        assert_eq!(normalize(&r.to_uppercase()).len(), 12);
    }
}
