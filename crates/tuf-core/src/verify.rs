//! Threshold verification: "do the signatures on this metadata meet this role's threshold?"
//!
//! Rules: only keys listed in the role count; each distinct public key counts once, however
//! many key IDs name it and however its JSON spells it (hex case, PEM line breaks); a signature that does not verify is reported and ignored, so an
//! extra bad signature never hides a met threshold. (Duplicate key IDs in `signatures` are
//! refused earlier, when the envelope is parsed.)

use std::collections::{BTreeMap, BTreeSet};

use crate::key::{KeyId, PublicKey};
use crate::metadata::{Metadata, RoleKeys, Signature, Signed};
use crate::Error;

/// The outcome of checking one role's signatures, for decisions and for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The role whose signatures were checked.
    pub role: String,
    /// How many distinct valid signatures it needs.
    pub threshold: u32,
    /// Role keys whose signature verified.
    pub valid: Vec<KeyId>,
    /// Role keys that signed, but whose signature did not verify, with the reason.
    pub invalid: Vec<(KeyId, String)>,
    /// Role keys that did not sign.
    pub missing: Vec<KeyId>,
    /// Signatures by keys that are not in the role (harmless, not counted).
    pub ignored: Vec<KeyId>,
    /// Valid signatures counted after merging key IDs that name the same key.
    pub distinct_valid: u32,
}

impl Verification {
    /// Whether enough distinct trusted keys signed.
    pub fn is_met(&self) -> bool {
        self.distinct_valid >= self.threshold
    }

    /// `Ok(self)` when the threshold is met, else [`Error::ThresholdNotMet`].
    pub fn require(self) -> Result<Self, Error> {
        if self.is_met() {
            Ok(self)
        } else {
            Err(Error::ThresholdNotMet {
                role: self.role,
                needed: self.threshold,
                valid: self.distinct_valid,
            })
        }
    }
}

/// Checks `signatures` over `canonical` against `role`, whose keys are looked up in `keys`.
pub fn verify_role(
    role_name: &str,
    role: &RoleKeys,
    keys: &BTreeMap<KeyId, PublicKey>,
    canonical: &[u8],
    signatures: &[Signature],
) -> Verification {
    let by_id: BTreeMap<&KeyId, &Signature> = signatures.iter().map(|s| (&s.keyid, s)).collect();
    let mut out = Verification {
        role: role_name.to_owned(),
        threshold: role.threshold.get(),
        valid: Vec::new(),
        invalid: Vec::new(),
        missing: Vec::new(),
        ignored: Vec::new(),
        distinct_valid: 0,
    };
    let mut identities: BTreeSet<(&'static str, Vec<u8>)> = BTreeSet::new();
    for keyid in &role.keyids {
        let Some(sig) = by_id.get(keyid) else {
            out.missing.push(keyid.clone());
            continue;
        };
        let Some(key) = keys.get(keyid) else {
            out.invalid
                .push((keyid.clone(), "no public key for this key ID".to_owned()));
            continue;
        };
        let checked = hex::decode(&sig.sig)
            .map_err(|_| "signature is not hex".to_owned())
            .and_then(|raw| key.verify_material(canonical, &raw));
        match checked {
            Ok(material) => {
                out.valid.push(keyid.clone());
                identities.insert(material);
            }
            Err(reason) => out.invalid.push((keyid.clone(), reason)),
        }
    }
    let role_ids: BTreeSet<&KeyId> = role.keyids.iter().collect();
    out.ignored = signatures
        .iter()
        .filter(|s| !role_ids.contains(&s.keyid))
        .map(|s| s.keyid.clone())
        .collect();
    out.distinct_valid = u32::try_from(identities.len()).unwrap_or(u32::MAX);
    out
}

impl<T: Metadata> Signed<T> {
    /// Checks this envelope's signatures against `role`.
    pub fn verify_role(
        &self,
        role_name: &str,
        role: &RoleKeys,
        keys: &BTreeMap<KeyId, PublicKey>,
    ) -> Verification {
        verify_role(role_name, role, keys, self.canonical(), &self.signatures)
    }
}

#[cfg(test)]
#[cfg(feature = "aws-lc")]
mod tests {
    use super::*;
    use crate::key::{KeyType, PrivateKey, Signer};
    use crate::metadata::{Targets, Threshold};

    fn setup(n: usize) -> (Vec<PrivateKey>, BTreeMap<KeyId, PublicKey>, Signed<Targets>) {
        let keys: Vec<PrivateKey> = (0..n)
            .map(|_| PrivateKey::generate(KeyType::Ed25519).unwrap())
            .collect();
        let map = keys
            .iter()
            .map(|k| (k.key_id().clone(), k.public_key().clone()))
            .collect();
        let env = Signed::new(Targets::new(1, "2030-01-01T00:00:00Z".parse().unwrap())).unwrap();
        (keys, map, env)
    }

    fn role(keys: &[PrivateKey], threshold: u64) -> RoleKeys {
        RoleKeys::new(
            keys.iter().map(|k| k.key_id().clone()).collect(),
            Threshold::new(threshold).unwrap(),
        )
    }

    #[test]
    fn threshold_met_and_not_met() {
        let (keys, map, mut env) = setup(3);
        env.sign(&keys[0]).unwrap();
        let r = env.verify_role("targets", &role(&keys, 2), &map);
        assert!(!r.is_met());
        assert_eq!(r.missing.len(), 2);
        assert!(matches!(
            r.require(),
            Err(Error::ThresholdNotMet {
                needed: 2,
                valid: 1,
                ..
            })
        ));
        env.sign(&keys[2]).unwrap();
        assert!(env.verify_role("targets", &role(&keys, 2), &map).is_met());
    }

    #[test]
    fn invalid_extra_signature_is_ignored_when_threshold_met() {
        let (keys, map, mut env) = setup(2);
        env.sign(&keys[0]).unwrap();
        env.add_signature(Signature {
            keyid: keys[1].key_id().clone(),
            sig: "00".repeat(64),
            extra: BTreeMap::new(),
        });
        let r = env.verify_role("targets", &role(&keys, 1), &map);
        assert!(r.is_met());
        assert_eq!(r.invalid.len(), 1);
    }

    #[test]
    fn one_key_under_two_ids_counts_once() {
        let (keys, mut map, mut env) = setup(1);
        let alias = KeyId::new("alias").unwrap();
        map.insert(alias.clone(), keys[0].public_key().clone());
        env.sign(&keys[0]).unwrap();
        let sig = env.signatures[0].sig.clone();
        env.add_signature(Signature {
            keyid: alias.clone(),
            sig,
            extra: BTreeMap::new(),
        });
        let r = RoleKeys::new(
            vec![keys[0].key_id().clone(), alias],
            Threshold::new(2).unwrap(),
        );
        let v = env.verify_role("targets", &r, &map);
        assert_eq!(v.valid.len(), 2);
        assert_eq!(v.distinct_valid, 1);
        assert!(!v.is_met());
    }

    #[test]
    fn one_key_spelled_two_ways_counts_once() {
        // The same ed25519 key with its hex upper-cased: another string, another key ID.
        let (keys, mut map, mut env) = setup(1);
        let mut upper = keys[0].public_key().clone();
        upper.keyval.public = upper.keyval.public.to_uppercase();
        let alias = upper.key_id();
        assert_ne!(&alias, keys[0].key_id());
        map.insert(alias.clone(), upper);
        env.sign(&keys[0]).unwrap();
        let sig = env.signatures[0].sig.clone();
        env.add_signature(Signature {
            keyid: alias.clone(),
            sig,
            extra: BTreeMap::new(),
        });
        let r = RoleKeys::new(
            vec![keys[0].key_id().clone(), alias],
            Threshold::new(2).unwrap(),
        );
        let v = env.verify_role("targets", &r, &map);
        assert_eq!((v.valid.len(), v.distinct_valid), (2, 1));
        assert!(!v.is_met());
    }

    #[test]
    fn pem_line_breaks_do_not_make_a_second_key() {
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let mut map = BTreeMap::new();
        map.insert(key.key_id().clone(), key.public_key().clone());
        let mut crlf = key.public_key().clone();
        crlf.keyval.public = crlf.keyval.public.replace('\n', "\r\n");
        let alias = crlf.key_id();
        map.insert(alias.clone(), crlf);
        let mut env =
            Signed::new(Targets::new(1, "2030-01-01T00:00:00Z".parse().unwrap())).unwrap();
        env.sign(&key).unwrap();
        let mut second = env.signatures[0].clone();
        second.keyid = alias.clone();
        env.add_signature(second);
        let r = RoleKeys::new(
            vec![key.key_id().clone(), alias],
            Threshold::new(2).unwrap(),
        );
        let v = env.verify_role("targets", &r, &map);
        assert_eq!((v.valid.len(), v.distinct_valid), (2, 1), "{v:?}");
    }

    #[test]
    fn compressed_ecdsa_points_are_refused() {
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let pem = pem::parse(&key.public_key().keyval.public).unwrap();
        let der = pem.contents();
        let (x, y) = (&der[der.len() - 64..der.len() - 32], &der[der.len() - 32..]);
        let mut compressed =
            hex::decode("3039301306072a8648ce3d020106082a8648ce3d030107032200").unwrap();
        compressed.push(2 + (y[31] & 1));
        compressed.extend_from_slice(x);
        let mut pk = key.public_key().clone();
        pk.keyval.public = pem::encode(&pem::Pem::new("PUBLIC KEY", compressed));
        let s = key.sign(b"m").unwrap();
        key.public_key().verify(b"m", &s).unwrap();
        let err = pk.verify(b"m", &s).unwrap_err();
        assert!(err.contains("uncompressed"), "{err}");
    }

    #[test]
    fn signatures_from_outside_the_role_do_not_count() {
        let (keys, map, mut env) = setup(2);
        env.sign(&keys[1]).unwrap();
        let v = env.verify_role("targets", &role(&keys[..1], 1), &map);
        assert!(!v.is_met());
        assert_eq!(v.ignored, vec![keys[1].key_id().clone()]);
    }
}
