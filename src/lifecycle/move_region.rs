//! Residency of workspace moves. `move-out` names the target appliance's
//! region (`--target-region`, carried in the bundle); a region other than the
//! workspace's own and the appliance's `residency` is refused unless the
//! operator gives `--allow-cross-region REASON`, which both appliances record
//! in their audit chains. `move-in` checks the bundle against its own
//! `residency` the same way. Nothing is written before these checks pass.

use serde_json::{Value, json};

use crate::config::residency::region_allowed;
use crate::error::{Error, Result};

/// Longest reason accepted (it is sealed into two audit chains).
const MAX_REASON: usize = 500;

/// What the operator asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct Ask {
    pub target_region: Option<String>,
    pub allow_cross_region: Option<String>,
}

/// Where a move-out goes, as decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Destination {
    /// Empty when neither the operator nor a rule named one.
    pub target_region: String,
    /// Set when the move leaves the workspace's region.
    pub cross_region_reason: Option<String>,
}

impl Destination {
    /// What the audit entries carry.
    pub fn detail(&self) -> Value {
        json!({
            "target_region": self.target_region,
            "cross_region_reason": self.cross_region_reason,
        })
    }
}

fn reason(flag: &str, r: Option<&str>) -> Result<Option<String>> {
    match r.map(str::trim) {
        None => Ok(None),
        Some("") => Err(Error::Usage(format!(
            "{flag}: say why the workspace may leave its region (it is recorded in the audit log)"
        ))),
        Some(r) if r.chars().count() > MAX_REASON => Err(Error::Usage(format!(
            "{flag}: at most {MAX_REASON} characters"
        ))),
        Some(r) => Ok(Some(r.to_owned())),
    }
}

/// The regions a workspace's data is bound to: the appliance's residency
/// and the workspace's own region, each when set.
fn home(residency: &str, workspace_region: &str) -> Vec<String> {
    [residency, workspace_region]
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Decides a move-out: the target region must be every home region, or the
/// operator allows the crossing with a reason.
pub fn move_out(
    residency: &str,
    workspace_region: &str,
    target_region: Option<&str>,
    allow_cross_region: Option<&str>,
) -> Result<Destination> {
    let allow = reason("--allow-cross-region", allow_cross_region)?;
    let home = home(residency, workspace_region);
    let target = match target_region.map(str::trim) {
        Some(t) => crate::workspace::validate_region(t)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::Usage(
                    "--target-region: a region label like EU or IN (letters, digits, - and _)"
                        .into(),
                )
            })?,
        None if home.is_empty() => return Ok(Destination::default()),
        None => {
            return Err(Error::Usage(format!(
                "--target-region is required: this workspace's data is bound to region `{}`; name the target appliance's region (its /trust.json shows it)",
                home.join("` and `")
            )));
        }
    };
    let outside: Vec<&String> = home
        .iter()
        .filter(|h| !region_allowed(h, &target))
        .collect();
    if outside.is_empty() {
        return Ok(Destination {
            target_region: target,
            cross_region_reason: None,
        });
    }
    match allow {
        Some(r) => Ok(Destination {
            target_region: target,
            cross_region_reason: Some(r),
        }),
        None => Err(Error::Usage(format!(
            "--target-region `{target}` is outside this workspace's region `{}` (the appliance's `residency` and the workspace's region); nothing was changed. A cross-region move needs --allow-cross-region REASON, recorded in the audit log here and on the target",
            outside
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("` and `")
        ))),
    }
}

/// What a move-in records about regions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arrival {
    /// The region the workspace has here.
    pub region: String,
    /// The target's own reason (`move-in --allow-cross-region`).
    pub allowed_here: Option<String>,
}

/// Checks a bundle against this appliance's residency: a bundle made for
/// another region needs `--allow-cross-region` here; a workspace from
/// another region needs a reason, the source's (in the bundle) or this
/// operator's.
pub fn move_in(
    residency: &str,
    own_region: &str,
    bundle_target_region: &str,
    workspace_region: &str,
    bundle_reason: Option<&str>,
    allow_cross_region: Option<&str>,
) -> Result<Arrival> {
    let allow = reason("--allow-cross-region", allow_cross_region)?;
    let r = residency.trim();
    let made_for = bundle_target_region.trim();
    if !r.is_empty() {
        if !made_for.is_empty() && !region_allowed(r, made_for) && allow.is_none() {
            return Err(Error::Usage(format!(
                "bundle rejected: it was made for region `{made_for}`, and this appliance's residency is `{r}`; nothing was imported. Import it anyway with --allow-cross-region REASON"
            )));
        }
        let from = workspace_region.trim();
        let crossing = from.is_empty() || !region_allowed(r, from);
        let reasoned = bundle_reason.is_some_and(|s| !s.trim().is_empty()) || allow.is_some();
        if crossing && !reasoned {
            return Err(Error::Usage(format!(
                "bundle rejected: the workspace's region is `{}`, not this appliance's residency `{r}`, and the source gave no --allow-cross-region reason; nothing was imported. Import it anyway with --allow-cross-region REASON",
                if from.is_empty() { "unknown" } else { from }
            )));
        }
    }
    let region = [r, own_region.trim(), made_for, workspace_region.trim()]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_owned();
    Ok(Arrival {
        region,
        allowed_here: allow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_out_stays_in_region_or_says_why() {
        assert_eq!(
            move_out("", "", None, None).unwrap(),
            Destination::default()
        );
        assert_eq!(
            move_out("EU", "EU", Some("eu"), None)
                .unwrap()
                .target_region,
            "eu"
        );
        assert!(move_out("EU", "", None, None).is_err(), "region required");
        assert!(move_out("", "IN", Some("EU"), None).is_err());
        assert!(move_out("EU", "", Some("US"), None).is_err());
        assert!(move_out("EU", "", Some("US"), Some("  ")).is_err());
        let d = move_out("EU", "", Some("US"), Some("customer moved")).unwrap();
        assert_eq!(d.cross_region_reason.as_deref(), Some("customer moved"));
        assert!(move_out("EU", "", Some("U S"), Some("x")).is_err());
    }

    #[test]
    fn move_in_checks_the_bundle_against_residency() {
        assert!(move_in("", "", "", "", None, None).is_ok());
        assert!(move_in("EU", "EU", "EU", "EU", None, None).is_ok());
        assert!(move_in("EU", "EU", "US", "US", Some("r"), None).is_err());
        assert!(move_in("EU", "EU", "US", "US", Some("r"), Some("ok")).is_ok());
        assert!(move_in("US", "US", "US", "EU", None, None).is_err());
        let a = move_in("US", "US", "US", "EU", Some("r"), None).unwrap();
        assert_eq!(a.region, "US");
        assert!(
            move_in("EU", "", "", "", None, None).is_err(),
            "unknown origin"
        );
    }
}
