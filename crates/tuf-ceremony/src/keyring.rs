//! Signing through a keyring: whatever holds private keys (a credentials file, a hardware
//! token behind it) gives a signer for a public key, or none. Keys are found by public key,
//! never by name, and each is opened once per run (a token logs in once).

use std::collections::BTreeMap;

use tuf_core::{PublicKey, Role, Root, Signature, Signed, Signer, Targets};

use crate::format::{
    document_sha256, Response, RootUpdateRequest, RootUpdateResponse, WaveRequest, WaveResponse,
};
use crate::tx::{short, Roots, Tx};
use crate::Error;

/// Private keys, found by their public part.
pub trait Keyring {
    /// A signer for `key`, if this keyring holds its private part.
    fn signer(&self, key: &PublicKey) -> Result<Option<Box<dyn Signer>>, Error>;
}

/// Signers for the keys of `role` in `root` that `ring` holds.
pub fn role_signers(
    ring: &dyn Keyring,
    root: &Root,
    role: Role,
) -> Result<Vec<Box<dyn Signer>>, Error> {
    let mut opened = Opened::new(ring);
    opened.for_role(root, role)?;
    Ok(opened.signers)
}

/// Signs both staged roots with every key in `ring` that the current or the new root trusts
/// for the root role. Returns what was signed, for people.
pub fn sign_roots(tx: &mut Tx, ring: &dyn Keyring, current: &Roots) -> Result<Vec<String>, Error> {
    let mut opened = Opened::new(ring);
    sign_roots_with(&mut opened, tx, current)
}

/// [`sign_roots`], and staged production targets with the offline targets keys of the new
/// production root that `ring` holds.
pub fn sign_tx(tx: &mut Tx, ring: &dyn Keyring, current: &Roots) -> Result<Vec<String>, Error> {
    let mut opened = Opened::new(ring);
    let mut done = sign_roots_with(&mut opened, tx, current)?;
    if let Some(t) = tx.prod_targets.as_mut() {
        for i in opened.for_role(&tx.prod_root.signed, Role::Targets)? {
            let k = &opened.signers[i];
            t.sign(k.as_ref())?;
            tx.stage_prod_targets = true;
            done.push(format!("production targets with {}", short(k.key_id())));
        }
    }
    Ok(done)
}

fn sign_roots_with(
    opened: &mut Opened<'_>,
    tx: &mut Tx,
    current: &Roots,
) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    for (which, env, cur) in [
        ("CI root", &mut tx.ci_root, &current.ci.signed),
        ("production root", &mut tx.prod_root, &current.prod.signed),
    ] {
        let mut keys = opened.for_role(cur, Role::Root)?;
        for i in opened.for_role(&env.signed, Role::Root)? {
            if !keys.contains(&i) {
                keys.push(i);
            }
        }
        for i in keys {
            let k = &opened.signers[i];
            env.sign(k.as_ref())?;
            done.push(format!("{which} with {}", short(k.key_id())));
        }
    }
    Ok(done)
}

/// The request as the transaction it describes.
pub fn as_tx(r: &RootUpdateRequest) -> Tx {
    Tx {
        txid: r.txid.clone(),
        message: r.message.clone(),
        ci_root: r.ci_root.clone(),
        prod_root: r.prod_root.clone(),
        prod_targets: r.prod_targets.clone(),
        stage_prod_targets: false,
        errors: Vec::new(),
        warnings: Vec::new(),
        server_keys: r.server_keys.clone(),
    }
}

/// Signs a checked root-update request (see [`crate::offline::check_root_update`]); the
/// response carries only the new signatures. `None` when `ring` holds no key it needs.
pub fn sign_root_update(
    r: &RootUpdateRequest,
    current: &Roots,
    ring: &dyn Keyring,
) -> Result<Option<Response>, Error> {
    let mut tx = as_tx(r);
    if sign_tx(&mut tx, ring, current)?.is_empty() {
        return Ok(None);
    }
    let mut documents = BTreeMap::new();
    add_new(&mut documents, "ci_root", &r.ci_root, &tx.ci_root);
    add_new(&mut documents, "prod_root", &r.prod_root, &tx.prod_root);
    if let (Some(before), Some(after)) = (&r.prod_targets, &tx.prod_targets) {
        add_new(&mut documents, "prod_targets", before, after);
    }
    Ok(Some(Response::RootUpdate(RootUpdateResponse {
        factory: r.factory.clone(),
        txid: r.txid.clone(),
        documents,
    })))
}

fn add_new<T: tuf_core::Metadata>(
    documents: &mut BTreeMap<String, (String, Vec<Signature>)>,
    name: &str,
    before: &Signed<T>,
    after: &Signed<T>,
) {
    let new: Vec<Signature> = after
        .signatures
        .iter()
        .filter(|s| !before.signatures.contains(s))
        .cloned()
        .collect();
    if !new.is_empty() {
        documents.insert(name.to_owned(), (document_sha256(after), new));
    }
}

/// Signs a checked wave request with the offline targets keys of `prod_root` in `ring`.
pub fn sign_wave(
    w: &WaveRequest,
    prod_root: &Root,
    ring: &dyn Keyring,
) -> Result<Option<Response>, Error> {
    let signers = role_signers(ring, prod_root, Role::Targets)?;
    if signers.is_empty() {
        return Ok(None);
    }
    let mut targets: Signed<Targets> = w.targets.clone();
    for k in &signers {
        targets.sign(k.as_ref())?;
    }
    Ok(Some(Response::Wave(Box::new(WaveResponse {
        factory: w.factory.clone(),
        wave: w.wave.clone(),
        version: w.version.clone(),
        tag: w.tag.clone(),
        targets,
        retire: w.retire.clone(),
    }))))
}

/// Signers opened so far from one keyring, so a key used for several roles is opened once.
struct Opened<'a> {
    ring: &'a dyn Keyring,
    signers: Vec<Box<dyn Signer>>,
}

impl<'a> Opened<'a> {
    fn new(ring: &'a dyn Keyring) -> Self {
        Self {
            ring,
            signers: Vec::new(),
        }
    }

    /// Indices into `signers` of the keys of `role` in `root` that the ring can sign with.
    fn for_role(&mut self, root: &Root, role: Role) -> Result<Vec<usize>, Error> {
        let mut out = Vec::new();
        for id in &root.role(role).keyids {
            let Some(pk) = root.keys.get(id) else {
                continue;
            };
            let known = self
                .signers
                .iter()
                .position(|s| s.public_key().identity() == pk.identity());
            let i = match known {
                Some(i) => i,
                None => match self.ring.signer(pk)? {
                    Some(k) => {
                        self.signers.push(k);
                        self.signers.len() - 1
                    }
                    None => continue,
                },
            };
            if !out.contains(&i) {
                out.push(i);
            }
        }
        Ok(out)
    }
}
