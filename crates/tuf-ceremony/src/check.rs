//! The named checks of docs/API.md and the refusal a failed one gives. Every rule that guards
//! the keys has one name here; the server and the offline signer report the same name for the
//! same fault, and tests match on [`Check`], never on message text.

use std::fmt;

/// One named rule. The names (`Check::name`) are what the API reports in `detail.check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Check {
    /// A document does not parse as what it claims to be.
    Format,
    /// A version is not exactly the current one + 1.
    Version,
    /// A new root lacks a threshold of signatures by the current root's root keys.
    CurrentRootSignatures,
    /// A new root lacks a threshold of signatures by its own root keys.
    NewRootSignatures,
    /// A threshold is below 1, or above the number of distinct usable keys of its role.
    ThresholdRange,
    /// The server's online targets key left the targets role, or CI needs more than it.
    OnlineTargetsKey,
    /// The server would hold fewer snapshot or timestamp keys than their thresholds.
    OnlineKeys,
    /// The production root differs from the CI root in more than the targets threshold.
    ProdMatchesCi,
    /// Production targets with an offline key need a threshold of at least 2.
    ProdTargetsThreshold,
    /// Production would lose its offline targets key, or the server alone could meet it.
    OfflineTargetsKey,
    /// The server alone could sign roots again once the root went offline.
    OfflineRootKeys,
    /// An expiry in the past, or further away than the validity limits.
    Expires,
    /// Staged production targets are not signed enough to publish.
    ProdTargetsSignatures,
    /// A key ID that is not the ID of its key material (a swapped key).
    KeyIds,
    /// A key added under a second ID of a key the root already lists.
    DistinctKeys,
    /// A change the review does not show (spec_version, unknown fields, ...).
    ShownChanges,
    /// Staged production targets that change more than their version and expiry.
    ProdTargetsUnchanged,
    /// A signature already on a document no longer verifies: it was edited after signing.
    SignaturesIntact,
    /// A root chain that does not lead from the trusted root, link by link.
    RootChain,
    /// A request or response for another Factory.
    Factory,
    /// A document a request is compared against does not verify under the root it belongs to.
    Provenance,
    /// A root signed inside a transaction that was cancelled or replaced.
    Transaction,
    /// A wave's proposed targets lack a valid signature by an offline targets key.
    Signatures,
    /// A wave target that is not the entry CI signed for the wave's version.
    WaveSource,
    /// A wave drops a production target it does not say it retires.
    WaveKeepsTargets,
    /// A wave that changes nothing devices install.
    WaveChangesTargets,
    /// A request that should carry no signatures carries some.
    Unsigned,
    /// A renewal that changes more than the version and the expiry.
    Unchanged,
}

impl Check {
    /// Every check, in the order they are documented.
    pub const ALL: [Check; 28] = [
        Check::Format,
        Check::Version,
        Check::CurrentRootSignatures,
        Check::NewRootSignatures,
        Check::ThresholdRange,
        Check::OnlineTargetsKey,
        Check::OnlineKeys,
        Check::ProdMatchesCi,
        Check::ProdTargetsThreshold,
        Check::OfflineTargetsKey,
        Check::OfflineRootKeys,
        Check::Expires,
        Check::ProdTargetsSignatures,
        Check::KeyIds,
        Check::DistinctKeys,
        Check::ShownChanges,
        Check::ProdTargetsUnchanged,
        Check::SignaturesIntact,
        Check::RootChain,
        Check::Factory,
        Check::Provenance,
        Check::Transaction,
        Check::Signatures,
        Check::WaveSource,
        Check::WaveKeepsTargets,
        Check::WaveChangesTargets,
        Check::Unsigned,
        Check::Unchanged,
    ];

    /// The name the API and every message use.
    pub const fn name(self) -> &'static str {
        match self {
            Check::Format => "format",
            Check::Version => "version",
            Check::CurrentRootSignatures => "current_root_signatures",
            Check::NewRootSignatures => "new_root_signatures",
            Check::ThresholdRange => "threshold_range",
            Check::OnlineTargetsKey => "online_targets_key",
            Check::OnlineKeys => "online_keys",
            Check::ProdMatchesCi => "prod_matches_ci",
            Check::ProdTargetsThreshold => "prod_targets_threshold",
            Check::OfflineTargetsKey => "offline_targets_key",
            Check::OfflineRootKeys => "offline_root_keys",
            Check::Expires => "expires",
            Check::ProdTargetsSignatures => "prod_targets_signatures",
            Check::KeyIds => "key_ids",
            Check::DistinctKeys => "distinct_keys",
            Check::ShownChanges => "shown_changes",
            Check::ProdTargetsUnchanged => "prod_targets_unchanged",
            Check::SignaturesIntact => "signatures_intact",
            Check::RootChain => "root_chain",
            Check::Factory => "factory",
            Check::Provenance => "provenance",
            Check::Transaction => "transaction",
            Check::Signatures => "signatures",
            Check::WaveSource => "wave_source",
            Check::WaveKeepsTargets => "wave_keeps_targets",
            Check::WaveChangesTargets => "wave_changes_targets",
            Check::Unsigned => "unsigned",
            Check::Unchanged => "unchanged",
        }
    }

    /// The check of that name.
    pub fn from_name(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether more signatures can make the check pass: such failures mean "not yet" while a
    /// transaction collects signatures, not "wrong".
    pub fn awaits_signatures(self) -> bool {
        matches!(
            self,
            Check::CurrentRootSignatures | Check::NewRootSignatures | Check::ProdTargetsSignatures
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed check: which rule, and why, for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{check}: {reason}")]
pub struct Refusal {
    /// The rule that refused.
    pub check: Check,
    /// Why, for the person who reads it.
    pub reason: String,
}

impl Refusal {
    /// A refusal by `check` because of `reason`.
    pub fn new(check: Check, reason: impl Into<String>) -> Self {
        Self {
            check,
            reason: reason.into(),
        }
    }
}

/// Refusals collected by a run of checks, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings(Vec<Refusal>);

impl Findings {
    /// No refusal yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a refusal.
    pub fn fail(&mut self, check: Check, reason: impl Into<String>) {
        self.0.push(Refusal::new(check, reason));
    }

    /// Keeps the refusal of a check that returned one.
    pub fn note(&mut self, result: Result<(), Refusal>) {
        if let Err(r) = result {
            self.0.push(r);
        }
    }

    /// Appends the refusals of another run, keeping their order.
    pub fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }

    /// Whether every check passed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `check` refused at least once.
    pub fn has(&self, check: Check) -> bool {
        self.0.iter().any(|r| r.check == check)
    }

    /// The first refusal found, the one a single-error answer reports.
    pub fn first(&self) -> Option<&Refusal> {
        self.0.first()
    }

    /// Every refusal, in the order found.
    pub fn iter(&self) -> std::slice::Iter<'_, Refusal> {
        self.0.iter()
    }

    /// The first refusal as an error, or `Ok` when every check passed.
    pub fn into_result(self) -> Result<(), Refusal> {
        match self.0.into_iter().next() {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }

    /// Refusals that more signatures cannot mend.
    pub fn faults(&self) -> impl Iterator<Item = &Refusal> {
        self.0.iter().filter(|r| !r.check.awaits_signatures())
    }
}

impl From<Refusal> for Findings {
    fn from(r: Refusal) -> Self {
        Self(vec![r])
    }
}

impl IntoIterator for Findings {
    type Item = Refusal;
    type IntoIter = std::vec::IntoIter<Refusal>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_distinct_name_that_reads_back() {
        let mut names: Vec<&str> = Check::ALL.iter().map(|c| c.name()).collect();
        for c in Check::ALL {
            assert_eq!(Check::from_name(c.name()), Some(c));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Check::ALL.len());
        assert_eq!(Check::from_name("nope"), None);
    }

    #[test]
    fn a_refusal_reads_as_name_then_reason() {
        let r = Refusal::new(Check::Version, "ci_root: version is 3, must be 2");
        assert_eq!(r.to_string(), "version: ci_root: version is 3, must be 2");
    }
}
