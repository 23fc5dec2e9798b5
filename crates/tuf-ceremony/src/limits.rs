//! How long signed metadata may be valid, and how large targets metadata may grow. The
//! server refuses the same limits the offline signer does, so neither signs what the other
//! would refuse.

use time::OffsetDateTime;
use tuf_core::Expires;

use crate::check::{Check, Refusal};

/// A root may be valid for at most this long (about five years): an "absurd" expiry is
/// refused, since a root outliving its holders' intent cannot be taken back.
pub const MAX_ROOT_VALIDITY: i64 = 5 * 366 * 24 * 3600;

/// Production targets may be valid for at most this long (ten years and a few days;
/// `tufctl waves init --expires-days` goes up to 3650): a signed release should not outlive
/// anyone's intent.
pub const MAX_TARGETS_VALIDITY: i64 = 3660 * 24 * 3600;

/// The largest targets metadata (a signed `targets.json` of either flavour, as served) a
/// Factory may publish. Devices must still read it: `tuf-agent` reads at most 32 MiB of a
/// targets role, python-tuf reads what the snapshot lists as its length (tufd always lists
/// it; without it python-tuf stops at 5,000,000 bytes). The 2 MiB left below 32 MiB are
/// for signatures added later (an online-key rotation re-signs production targets in place).
/// 100,000 production targets of a typical build (about 220 bytes each) take about 22 MB.
pub const MAX_TARGETS_BYTES: u64 = 30 * 1024 * 1024;

/// The largest root (a signed `root.json`) a root update may stage. Devices fetch roots
/// without a listed length: python-tuf reads at most 512,000 bytes of one, `tuf-agent` 512
/// KiB; a larger root would leave every device on the old one for good.
pub const MAX_ROOT_BYTES: u64 = 500_000;

/// Why targets metadata of `size` bytes is refused, when it passes `limit`.
pub fn targets_size(what: &str, size: u64, limit: u64) -> Result<(), String> {
    if size <= limit {
        return Ok(());
    }
    Err(format!(
        "the {what} targets metadata would be {size} bytes; this server publishes at most \
         {limit} (devices refuse larger files): remove targets first"
    ))
}

/// `what` (a root) expires in the future and within [`MAX_ROOT_VALIDITY`].
pub fn root_expiry(what: &str, expires: &Expires, now: OffsetDateTime) -> Result<(), Refusal> {
    within(what, expires, now, MAX_ROOT_VALIDITY, "5 years")
}

/// `what` (production targets) expire in the future and within [`MAX_TARGETS_VALIDITY`].
pub fn targets_expiry(what: &str, expires: &Expires, now: OffsetDateTime) -> Result<(), Refusal> {
    within(what, expires, now, MAX_TARGETS_VALIDITY, "10 years")
}

fn within(
    what: &str,
    expires: &Expires,
    now: OffsetDateTime,
    limit: i64,
    said: &str,
) -> Result<(), Refusal> {
    if expires.is_expired_at(now) {
        return Err(Refusal::new(
            Check::Expires,
            format!("{what}: expires {expires}, which is in the past"),
        ));
    }
    if expires.unix().saturating_sub(now.unix_timestamp()) > limit {
        return Err(Refusal::new(
            Check::Expires,
            format!("{what}: expires {expires}, more than {said} away"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> (Expires, OffsetDateTime) {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        (Expires::after(now, days * 86_400).unwrap(), now)
    }

    #[test]
    fn roots_live_up_to_five_years_and_targets_up_to_ten() {
        let (e, now) = at(5 * 366);
        root_expiry("ci_root", &e, now).unwrap();
        let (e, now) = at(5 * 366 + 1);
        let r = root_expiry("ci_root", &e, now).unwrap_err();
        assert_eq!(r.check, Check::Expires);
        assert!(r.reason.contains("more than 5 years away"), "{r}");
        let (e, now) = at(3660);
        targets_expiry("t", &e, now).unwrap();
        let (e, now) = at(3661);
        assert_eq!(
            targets_expiry("t", &e, now).unwrap_err().check,
            Check::Expires
        );
    }

    #[test]
    fn an_expiry_in_the_past_is_refused() {
        let (e, now) = at(-1);
        let r = targets_expiry("prod_targets", &e, now).unwrap_err();
        assert!(r.reason.ends_with("which is in the past"), "{r}");
        // The very second of expiry counts as expired.
        let (e, now) = at(0);
        assert!(root_expiry("r", &e, now).is_err());
    }
}
