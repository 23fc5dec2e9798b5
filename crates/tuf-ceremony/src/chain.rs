//! The root chain: each root version is trusted only because the one before it signed it.
//! One link is spec section 5.3.4 to 5.3.6 (signed by a threshold of the trusted root's root
//! keys and of its own, version exactly one more); a chain is links from an anchor the
//! verifier already trusts. The device client, the offline signer and the online commands
//! that sign all walk chains with these functions.

use tuf_core::{verify_role, Role, Root, Signature, Signed, Verification};

use crate::check::{Check, Refusal};

/// Why a root does not follow the trusted one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkFault {
    /// Not signed by a threshold of the trusted (previous) root's root keys.
    NotSignedByTrusted(Box<Verification>),
    /// Not signed by a threshold of its own root keys.
    NotSelfSigned(Box<Verification>),
    /// Not the trusted version + 1.
    Version {
        /// The trusted version + 1.
        expected: u64,
        /// The version the new root has.
        got: u64,
    },
}

/// Checks that `next` (its parsed root, canonical bytes and signatures) follows `trusted`.
pub fn link(
    trusted: &Root,
    next: &Root,
    canonical: &[u8],
    signatures: &[Signature],
) -> Result<(), LinkFault> {
    let v = verify_role(
        "root",
        trusted.role(Role::Root),
        &trusted.keys,
        canonical,
        signatures,
    );
    if !v.is_met() {
        return Err(LinkFault::NotSignedByTrusted(Box::new(v)));
    }
    let v = verify_role(
        "root",
        next.role(Role::Root),
        &next.keys,
        canonical,
        signatures,
    );
    if !v.is_met() {
        return Err(LinkFault::NotSelfSigned(Box::new(v)));
    }
    let expected = trusted.version.saturating_add(1);
    if next.version != expected {
        return Err(LinkFault::Version {
            expected,
            got: next.version,
        });
    }
    Ok(())
}

/// Walks `chain` (consecutive versions as served, from version 1 or from any version up to the
/// anchor's) from `anchor`, a root the caller already trusts, which must be the chain's entry
/// of the same version byte for byte; returns the chain's last root. `which` names the chain
/// in messages ("CI", "production").
pub fn walk<'c>(
    which: &str,
    anchor: &Signed<Root>,
    chain: &'c [Signed<Root>],
) -> Result<&'c Signed<Root>, Refusal> {
    let start = numbered(which, anchor, chain)?;
    if chain[start].canonical() != anchor.canonical() {
        return Err(fault(format!(
            "{which} root version {} in the chain is not the trusted one: the chain does not \
             start from a root this machine trusts",
            anchor.signed.version
        )));
    }
    follow(which, &chain[start..])
}

/// Walks a production chain from the trusted CI root `anchor`: the production root of the
/// same version lists the same root keys, so it must be signed by a threshold of the
/// anchor's root keys (and of its own) to be trusted.
pub fn walk_sibling<'c>(
    which: &str,
    anchor: &Signed<Root>,
    chain: &'c [Signed<Root>],
) -> Result<&'c Signed<Root>, Refusal> {
    let start = numbered(which, anchor, chain)?;
    let (a, p) = (&anchor.signed, &chain[start]);
    let by_anchor = p.verify_role("root", a.role(Role::Root), &a.keys);
    let by_itself = p.verify_role("root", p.signed.role(Role::Root), &p.signed.keys);
    if !by_anchor.is_met() || !by_itself.is_met() {
        return Err(fault(format!(
            "{which} root version {} is not signed by a threshold of the trusted root's keys",
            p.signed.version
        )));
    }
    follow(which, &chain[start..])
}

/// Checks the chain is numbered consecutively (it may start at any version: a verifier needs
/// only the roots from the one it trusts) and holds the anchor's version; returns the
/// anchor's index.
fn numbered(which: &str, anchor: &Signed<Root>, chain: &[Signed<Root>]) -> Result<usize, Refusal> {
    let Some(first) = chain.first().map(|r| r.signed.version) else {
        return Err(fault(format!("the {which} root chain is empty")));
    };
    for (i, r) in chain.iter().enumerate() {
        let want = first.saturating_add(i as u64);
        if r.signed.version != want {
            return Err(fault(format!(
                "the {which} root chain is not consecutive versions: after version {}, entry \
                 {} has version {}",
                want.saturating_sub(1),
                i + 1,
                r.signed.version
            )));
        }
    }
    let trusted = anchor.signed.version;
    if trusted < first {
        return Err(fault(format!(
            "the {which} root chain starts at version {first}, after version {trusted} that \
             this machine trusts: the versions between are needed to verify it"
        )));
    }
    let start = usize::try_from(trusted - first)
        .map_err(|_| fault("the trusted root's version is out of range".to_owned()))?;
    if chain.len() <= start {
        let last = first.saturating_add(chain.len() as u64 - 1);
        return Err(fault(format!(
            "the {which} root chain ends at version {last}, before version {trusted} that this \
             machine trusts: the request is older than the trusted root, or was cut short"
        )));
    }
    Ok(start)
}

/// Every link of `chain` (which starts at a trusted root); returns its last root.
fn follow<'c>(which: &str, chain: &'c [Signed<Root>]) -> Result<&'c Signed<Root>, Refusal> {
    for pair in chain.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        link(
            &prev.signed,
            &next.signed,
            next.canonical(),
            &next.signatures,
        )
        .map_err(|f| fault(describe(which, next.signed.version, &f)))?;
    }
    chain
        .last()
        .ok_or_else(|| fault(format!("the {which} root chain is empty")))
}

/// The link fault of `version` in words.
pub fn describe(which: &str, version: u64, f: &LinkFault) -> String {
    match f {
        LinkFault::NotSignedByTrusted(v) | LinkFault::NotSelfSigned(v) => {
            let whose = match f {
                LinkFault::NotSignedByTrusted(_) => "previous",
                _ => "its own",
            };
            format!(
                "{which} root version {version} is not signed by a threshold of {whose} root \
                 keys ({} of {}): the chain is broken",
                v.distinct_valid, v.threshold
            )
        }
        LinkFault::Version { expected, got } => {
            format!(
                "{which} root version {got} follows version {}: expected {expected}",
                expected.saturating_sub(1)
            )
        }
    }
}

fn fault(reason: String) -> Refusal {
    Refusal::new(Check::RootChain, reason)
}
