//! Signing requests and responses: the files that carry what an offline key holder is asked
//! to sign to an air-gapped machine, and the signatures back (docs/SIGNING-REQUESTS.md).
//!
//! Online side: `keys tuf updates export` / `waves init --export` write a request;
//! `keys tuf updates import` / `waves import` check a response against what the server holds
//! and add its signatures. The offline side is `sign`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use tuf_core::{
    canonical, hash, KeyId, Metadata, PublicKey, Role, RoleKeys, Root, Signature, Signed, Targets,
    Threshold,
};

use crate::client::Api;
use crate::creds::CredsFile;
use crate::settings::Settings;
use crate::updates::{self, Current, Tx};
use crate::waves;

/// The version of the request and response formats this program writes and reads.
pub const FORMAT: u64 = 1;
pub const ROOT_REQUEST: &str = "tuf-factory/root-update-request";
pub const WAVE_REQUEST: &str = "tuf-factory/wave-request";
pub const ROOT_RESPONSE: &str = "tuf-factory/root-update-response";
pub const WAVE_RESPONSE: &str = "tuf-factory/wave-response";
pub const WAVE_SIGNATURES: &str = "tuf-factory/wave-signatures";

/// An open root-update transaction, with everything needed to check it offline.
pub struct RootUpdateRequest {
    pub factory: String,
    pub txid: String,
    pub message: String,
    /// CI root versions 1..=current, as served.
    pub ci_chain: Vec<Signed<Root>>,
    /// Production root versions 1..=current, as served.
    pub prod_chain: Vec<Signed<Root>>,
    pub ci_root: Signed<Root>,
    pub prod_root: Signed<Root>,
    /// Staged production targets, when the transaction publishes new ones.
    pub prod_targets: Option<Signed<Targets>>,
    /// The production targets devices install now (what staged ones are compared with).
    pub current_prod_targets: Signed<Targets>,
}

/// Proposed production targets of a wave, unsigned, with what they are checked against.
pub struct WaveRequest {
    pub factory: String,
    pub wave: String,
    pub version: String,
    pub tag: String,
    pub ci_chain: Vec<Signed<Root>>,
    pub prod_chain: Vec<Signed<Root>>,
    /// CI targets.json (signed by the online targets key) the wave's targets come from.
    pub ci_targets: Signed<Targets>,
    /// The production targets devices install now.
    pub current_targets: Signed<Targets>,
    /// The proposed production targets (current version + 1).
    pub targets: Signed<Targets>,
}

pub enum Request {
    RootUpdate(Box<RootUpdateRequest>),
    Wave(Box<WaveRequest>),
}

/// Signatures one offline key holder added to the documents of a root-update transaction.
pub struct RootUpdateResponse {
    pub factory: String,
    pub txid: String,
    /// Document name (`ci_root`, `prod_root`, `prod_targets`) → (SHA-256 of the canonical
    /// `signed` bytes, new signatures).
    pub documents: BTreeMap<String, (String, Vec<Signature>)>,
}

/// A wave's production targets with the offline signatures.
pub struct WaveResponse {
    pub factory: String,
    pub wave: String,
    pub version: String,
    pub tag: String,
    pub targets: Signed<Targets>,
}

/// A wave response without the targets themselves: what fits in a QR code however many
/// targets the wave has. `waves import --request` joins it to the request it answers.
pub struct WaveSignatures {
    pub factory: String,
    pub wave: String,
    pub version: String,
    pub tag: String,
    /// SHA-256 of the canonical `signed` bytes of the request's proposed targets.
    pub sha256: String,
    pub signatures: Vec<Signature>,
}

impl WaveResponse {
    /// The same signatures, naming the targets by hash.
    pub fn compact(&self) -> WaveSignatures {
        WaveSignatures {
            factory: self.factory.clone(),
            wave: self.wave.clone(),
            version: self.version.clone(),
            tag: self.tag.clone(),
            sha256: document_sha256(&self.targets),
            signatures: self.targets.signatures.clone(),
        }
    }
}

impl WaveSignatures {
    /// The full response, with the targets of `request` (which must be the one these
    /// signatures answer).
    pub fn join(self, request: &WaveRequest) -> Result<WaveResponse> {
        let same = (
            &request.factory,
            &request.wave,
            &request.version,
            &request.tag,
        ) == (&self.factory, &self.wave, &self.version, &self.tag);
        if !same || document_sha256(&request.targets) != self.sha256 {
            bail!(
                "the signatures answer another request (wave {:?} of Factory {:?}, targets \
                 {}); nothing was changed",
                self.wave,
                self.factory,
                self.sha256
            );
        }
        let mut targets = request.targets.clone();
        targets.signatures = self.signatures;
        Ok(WaveResponse {
            factory: self.factory,
            wave: self.wave,
            version: self.version,
            tag: self.tag,
            targets,
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let v = json!({
            "type": WAVE_SIGNATURES, "format": FORMAT, "factory": self.factory,
            "wave": self.wave, "version": self.version, "tag": self.tag,
            "sha256": self.sha256, "signatures": serde_json::to_value(&self.signatures)?,
        });
        Ok(canonical::to_text(&v)?)
    }
}

pub enum Response {
    RootUpdate(RootUpdateResponse),
    Wave(Box<WaveResponse>),
    WaveSignatures(WaveSignatures),
}

// --- the file formats ------------------------------------------------------------------------

impl Request {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let v = match self {
            Self::RootUpdate(r) => json!({
                "type": ROOT_REQUEST, "format": FORMAT, "factory": r.factory, "txid": r.txid,
                "message": r.message,
                "ci_chain": chain_value(&r.ci_chain)?, "prod_chain": chain_value(&r.prod_chain)?,
                "ci_root": env_value(&r.ci_root)?, "prod_root": env_value(&r.prod_root)?,
                "prod_targets": r.prod_targets.as_ref().map(env_value).transpose()?,
                "current_prod_targets": env_value(&r.current_prod_targets)?,
            }),
            Self::Wave(w) => json!({
                "type": WAVE_REQUEST, "format": FORMAT, "factory": w.factory, "wave": w.wave,
                "version": w.version, "tag": w.tag,
                "ci_chain": chain_value(&w.ci_chain)?, "prod_chain": chain_value(&w.prod_chain)?,
                "ci_targets": env_value(&w.ci_targets)?,
                "current_targets": env_value(&w.current_targets)?,
                "targets": env_value(&w.targets)?,
            }),
        };
        Ok(canonical::to_text(&v)?)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let mut o = top_object(bytes, &[ROOT_REQUEST, WAVE_REQUEST])?;
        let kind = text(&o, "type")?;
        if kind == ROOT_REQUEST {
            let prod_targets = match o.remove("prod_targets") {
                None | Some(Value::Null) => None,
                Some(v) => Some(envelope("prod_targets", v)?),
            };
            return Ok(Self::RootUpdate(Box::new(RootUpdateRequest {
                factory: text(&o, "factory")?,
                txid: text(&o, "txid")?,
                message: text(&o, "message")?,
                ci_chain: chain(&mut o, "ci_chain")?,
                prod_chain: chain(&mut o, "prod_chain")?,
                ci_root: take_envelope(&mut o, "ci_root")?,
                prod_root: take_envelope(&mut o, "prod_root")?,
                prod_targets,
                current_prod_targets: take_envelope(&mut o, "current_prod_targets")?,
            })));
        }
        Ok(Self::Wave(Box::new(WaveRequest {
            factory: text(&o, "factory")?,
            wave: text(&o, "wave")?,
            version: text(&o, "version")?,
            tag: text(&o, "tag")?,
            ci_chain: chain(&mut o, "ci_chain")?,
            prod_chain: chain(&mut o, "prod_chain")?,
            ci_targets: take_envelope(&mut o, "ci_targets")?,
            current_targets: take_envelope(&mut o, "current_targets")?,
            targets: take_envelope(&mut o, "targets")?,
        })))
    }
}

impl Response {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let v = match self {
            Self::WaveSignatures(w) => return w.to_bytes(),
            Self::RootUpdate(r) => {
                let mut docs = Map::new();
                for (name, (sha, sigs)) in &r.documents {
                    docs.insert(
                        name.clone(),
                        json!({"sha256": sha, "signatures": serde_json::to_value(sigs)?}),
                    );
                }
                json!({"type": ROOT_RESPONSE, "format": FORMAT, "factory": r.factory,
                       "txid": r.txid, "documents": docs})
            }
            Self::Wave(w) => json!({
                "type": WAVE_RESPONSE, "format": FORMAT, "factory": w.factory, "wave": w.wave,
                "version": w.version, "tag": w.tag, "targets": env_value(&w.targets)?,
            }),
        };
        Ok(canonical::to_text(&v)?)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let mut o = top_object(bytes, &[ROOT_RESPONSE, WAVE_RESPONSE, WAVE_SIGNATURES])?;
        if text(&o, "type")? == WAVE_SIGNATURES {
            let sha256 = text(&o, "sha256")?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("\"sha256\" is not a SHA-256 in hex");
            }
            let signatures: Vec<Signature> =
                serde_json::from_value(o.remove("signatures").unwrap_or(Value::Null))
                    .map_err(|e| anyhow!("\"signatures\": {e}"))?;
            return Ok(Self::WaveSignatures(WaveSignatures {
                factory: text(&o, "factory")?,
                wave: text(&o, "wave")?,
                version: text(&o, "version")?,
                tag: text(&o, "tag")?,
                sha256,
                signatures,
            }));
        }
        if text(&o, "type")? == WAVE_RESPONSE {
            return Ok(Self::Wave(Box::new(WaveResponse {
                factory: text(&o, "factory")?,
                wave: text(&o, "wave")?,
                version: text(&o, "version")?,
                tag: text(&o, "tag")?,
                targets: take_envelope(&mut o, "targets")?,
            })));
        }
        let Some(Value::Object(docs)) = o.remove("documents") else {
            bail!("the response has no \"documents\" object");
        };
        let mut documents = BTreeMap::new();
        for (name, d) in docs {
            if !matches!(name.as_str(), "ci_root" | "prod_root" | "prod_targets") {
                bail!("the response names an unknown document {name:?}");
            }
            let sha = d
                .get("sha256")
                .and_then(Value::as_str)
                .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| anyhow!("documents.{name}.sha256 is not a SHA-256 in hex"))?
                .to_owned();
            let sigs: Vec<Signature> =
                serde_json::from_value(d.get("signatures").cloned().unwrap_or(Value::Null))
                    .map_err(|e| anyhow!("documents.{name}.signatures: {e}"))?;
            documents.insert(name, (sha, sigs));
        }
        Ok(Self::RootUpdate(RootUpdateResponse {
            factory: text(&o, "factory")?,
            txid: text(&o, "txid")?,
            documents,
        }))
    }
}

/// Reads a request or response file (capped), or standard input for `-`.
pub fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let result = if path == Path::new("-") {
        std::io::stdin().take(MAX_FILE + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
    };
    result.with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        bail!(
            "the {what} {} is larger than {} MiB; it is not one of ours",
            path.display(),
            MAX_FILE >> 20
        );
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write_file(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    tuf_credentials::save_atomic(path, bytes)
        .with_context(|| format!("cannot write the {what} {}", path.display()))?;
    Ok(())
}

/// SHA-256 (hex) of the canonical `signed` bytes: what a response names a document by.
pub fn document_sha256<T: Metadata>(env: &Signed<T>) -> String {
    hash::sha256_hex(env.canonical())
}

/// Whether `sig` is a valid signature over `env` by the key `keys` lists under its key ID.
pub fn signature_valid<T: Metadata>(
    env: &Signed<T>,
    sig: &Signature,
    keys: &BTreeMap<KeyId, PublicKey>,
) -> bool {
    let Some(key) = keys.get(&sig.keyid) else {
        return false;
    };
    let Ok(one) = Threshold::new(1) else {
        return false;
    };
    let only: BTreeMap<KeyId, PublicKey> = [(sig.keyid.clone(), key.clone())].into();
    let role = RoleKeys::new(vec![sig.keyid.clone()], one);
    tuf_core::verify_role(
        "signature",
        &role,
        &only,
        env.canonical(),
        std::slice::from_ref(sig),
    )
    .is_met()
}

// --- online: export ---------------------------------------------------------------------------

/// `keys tuf updates export REQUEST.json`.
pub fn export_root_update(s: &Settings, out: &Path) -> Result<()> {
    let api = s.api_with_token(None, "the Factory owner's")?;
    let repo = s.repo_path(None)?;
    let tx = updates::require_open(&api, &repo)?;
    let current = updates::current_roots(&api, &repo)?;
    let request = root_update_request(&api, &repo, &s.factory(None)?, &tx, &current)?;
    write_file(out, &request.to_bytes()?, "signing request")?;
    println!(
        "Wrote the signing request for root-update transaction {} ({}) to {}. Carry it to the \
         offline machine, run `tufctl sign {} -k CREDS.tgz --out RESPONSE.json` there, and bring \
         RESPONSE.json back to `tufctl keys tuf updates import RESPONSE.json`.",
        tx.txid,
        tx.message,
        out.display(),
        out.display()
    );
    Ok(())
}

/// The request for the open transaction `tx`.
pub fn root_update_request(
    api: &Api,
    repo: &str,
    factory: &str,
    tx: &Tx,
    current: &Current,
) -> Result<Request> {
    let current_prod_targets = prod_targets_now(api, repo)?;
    // The staged production targets matter when they carry signatures already, or when the
    // new production root changes the targets role (the current ones may stop verifying).
    let (cur, new) = (
        current.prod.signed.role(Role::Targets),
        tx.prod_root.signed.role(Role::Targets),
    );
    let targets_role_changes = cur.keyids != new.keyids || cur.threshold != new.threshold;
    let prod_targets = tx
        .prod_targets
        .clone()
        .filter(|t| targets_role_changes || !t.signatures.is_empty());
    Ok(Request::RootUpdate(Box::new(RootUpdateRequest {
        factory: factory.to_owned(),
        txid: tx.txid.clone(),
        message: tx.message.clone(),
        ci_chain: root_chain(api, repo, current.ci.signed.version, false)?,
        prod_chain: root_chain(api, repo, current.prod.signed.version, true)?,
        ci_root: tx.ci_root.clone(),
        prod_root: tx.prod_root.clone(),
        prod_targets,
        current_prod_targets,
    })))
}

/// `waves init [-k CREDS] WAVE VERSION TAG --export REQUEST.json`: no private key needed.
pub fn export_wave(
    s: &Settings,
    creds: Option<&Path>,
    wave: &str,
    version: &str,
    tag: &str,
    expires_days: u32,
    out: &Path,
) -> Result<()> {
    // A tarball, when given, only says where the server is.
    let cfg = match creds {
        Some(p) => Some(crate::creds::CredsFile::open(s, p)?.creds.config().clone()),
        None => None,
    };
    let api = s.api_with_token(cfg.as_ref(), "the Factory owner's")?;
    let repo = s.repo_path(cfg.as_ref())?;
    let factory = s.factory(cfg.as_ref())?;
    let p = waves::propose(&api, &repo, version, tag, expires_days)?;
    let prod_version = p.prod_root.signed.version;
    let ci_version = updates::current_roots(&api, &repo)?.ci.signed.version;
    let request = Request::Wave(Box::new(WaveRequest {
        factory,
        wave: wave.to_owned(),
        version: version.to_owned(),
        tag: tag.to_owned(),
        ci_chain: root_chain(&api, &repo, ci_version, false)?,
        prod_chain: root_chain(&api, &repo, prod_version, true)?,
        ci_targets: p.ci,
        current_targets: p.prod,
        targets: Signed::new(p.next)?,
    }));
    write_file(out, &request.to_bytes()?, "signing request")?;
    println!(
        "Wrote the signing request for wave {wave} ({} target(s) of version {version} tagged \
         {tag}) to {}. Sign it offline with `tufctl sign {} -k TARGETS-ONLY.tgz --out \
         RESPONSE.json`, then create the wave with `tufctl waves import RESPONSE.json`.",
        p.added,
        out.display(),
        out.display()
    );
    Ok(())
}

/// The current roots, verified along the chains the server serves from the root `file`
/// trusts (its `roles/root.json`), as `tufctl sign` verifies a request: a server that lies
/// about the roots cannot have an offline key sign for a root it made up. A file without a
/// stored root has nothing to verify from; the roots are then taken as served, with a note.
pub fn verified_roots(api: &Api, repo: &str, file: &CredsFile) -> Result<Current> {
    let served = updates::current_roots(api, repo)?;
    let Some(anchor) = file.stored_root()? else {
        eprintln!(
            "note: {} holds no roles/root.json, so the server's roots cannot be verified from \
             a root this file trusts; they are used as served",
            file.path.display()
        );
        return Ok(served);
    };
    let ci_chain = root_chain(api, repo, served.ci.signed.version, false)?;
    let prod_chain = root_chain(api, repo, served.prod.signed.version, true)?;
    let (ci, prod) =
        crate::sign::trusted_chains(&ci_chain, &prod_chain, &anchor).with_context(|| {
            format!(
                "the server's roots do not verify from the root stored in {}; nothing was signed",
                file.path.display()
            )
        })?;
    Ok(Current { ci, prod })
}

/// Root versions 1..=`newest` of one flavour, as served.
fn root_chain(api: &Api, repo: &str, newest: u64, prod: bool) -> Result<Vec<Signed<Root>>> {
    if newest > MAX_CHAIN {
        bail!("the root has {newest} versions, more than a signing request carries ({MAX_CHAIN})");
    }
    let q = if prod { "?production=1" } else { "" };
    (1..=newest)
        .map(|v| {
            let bytes = api.get(&format!("{repo}/{v}.root.json{q}"))?;
            Signed::from_slice(&bytes)
                .with_context(|| format!("root version {v} from the server is not valid"))
        })
        .collect()
}

fn prod_targets_now(api: &Api, repo: &str) -> Result<Signed<Targets>> {
    Signed::from_slice(&api.get(&format!("{repo}/targets.json?production=1"))?)
        .context("the production targets.json from the server is not valid")
}

// --- online: import ---------------------------------------------------------------------------

/// Reads a response given as a file path, `-` (standard input), or the QR payload text itself.
pub fn read_response(arg: &str) -> Result<Response> {
    let trimmed = arg.trim_start();
    let bytes = if trimmed.starts_with('{') && !Path::new(arg).exists() {
        trimmed.as_bytes().to_vec()
    } else {
        read_file(Path::new(arg), "signing response")?
    };
    Response::from_slice(&bytes).with_context(|| format!("{arg} is not a signing response"))
}

/// `keys tuf updates import RESPONSE.json`.
pub fn import_root_update(s: &Settings, arg: &str) -> Result<()> {
    let Response::RootUpdate(r) = read_response(arg)? else {
        bail!("{arg} is the response to a wave; import it with `tufctl waves import`");
    };
    let api = s.api_with_token(None, "the Factory owner's")?;
    let repo = s.repo_path(None)?;
    let factory = s.factory(None)?;
    if r.factory != factory {
        bail!(
            "the response is for Factory {:?}, not {factory:?}; nothing was changed",
            r.factory
        );
    }
    let mut tx = updates::require_open(&api, &repo)?;
    if tx.txid != r.txid {
        bail!(
            "the response signs root-update transaction {}, but the open one is {} ({}); it was \
             cancelled or replaced since the request was exported. Nothing was changed: export \
             a new request",
            r.txid,
            tx.txid,
            tx.message
        );
    }
    let current = updates::current_roots(&api, &repo)?;
    let mut added = Vec::new();
    for (name, (sha, sigs)) in &r.documents {
        let n = match name.as_str() {
            "ci_root" => {
                let keys = root_signing_keys(&current.ci.signed, &tx.ci_root.signed);
                add_checked(&mut tx.ci_root, name, sha, sigs, &keys)?
            }
            "prod_root" => {
                let keys = root_signing_keys(&current.prod.signed, &tx.prod_root.signed);
                add_checked(&mut tx.prod_root, name, sha, sigs, &keys)?
            }
            _ => {
                let keys = tx.prod_root.signed.role_keys(Role::Targets);
                let t = tx.prod_targets.as_mut().ok_or_else(|| {
                    anyhow!("the response signs production targets the transaction does not have")
                })?;
                let n = add_checked(t, name, sha, sigs, &keys)?;
                tx.stage_prod_targets = true;
                n
            }
        };
        added.push(format!("{n} signature(s) on {name}"));
    }
    updates::stage(&api, &repo, &tx)?;
    println!(
        "Imported into root-update transaction {}: {}.",
        tx.txid,
        added.join(", ")
    );
    let missing = updates::missing_signatures(&tx, &current);
    if missing.is_empty() {
        println!("All root signatures are present: run `tufctl keys tuf updates apply`.");
    } else {
        for m in missing {
            println!("still missing: {m}");
        }
    }
    Ok(())
}

/// `waves import RESPONSE.json [--request REQUEST.json]`: checks the offline signatures
/// against the current production root, then creates the wave. A response from a QR code
/// names the targets by hash only; `--request` supplies them.
pub fn import_wave(s: &Settings, arg: &str, request: Option<&Path>) -> Result<()> {
    let w = match read_response(arg)? {
        Response::Wave(w) => w,
        Response::WaveSignatures(sigs) => {
            let Some(path) = request else {
                bail!(
                    "{arg} carries the wave's signatures without its targets (the QR form): \
                     pass the request it answers with --request REQUEST.json"
                );
            };
            let Request::Wave(req) = Request::from_slice(&read_file(path, "signing request")?)
                .with_context(|| format!("{} is not a signing request", path.display()))?
            else {
                bail!("{} is not a wave request", path.display());
            };
            Box::new(sigs.join(&req)?)
        }
        Response::RootUpdate(_) => bail!(
            "{arg} is the response to a root update; import it with `tufctl keys tuf updates import`"
        ),
    };
    let api = s.api_with_token(None, "the Factory owner's")?;
    let repo = s.repo_path(None)?;
    let factory = s.factory(None)?;
    if w.factory != factory {
        bail!(
            "the response is for Factory {:?}, not {factory:?}; nothing was changed",
            w.factory
        );
    }
    let prod_root = updates::current_roots(&api, &repo)?.prod;
    let keys = prod_root.signed.role_keys(Role::Targets);
    if w.targets.signatures.is_empty() {
        bail!("the response carries no signature; nothing was changed");
    }
    for sig in &w.targets.signatures {
        if !signature_valid(&w.targets, sig, &keys) {
            bail!(
                "the signature of key {} on the wave's targets does not verify with the current \
                 production root's targets keys; nothing was changed",
                sig.keyid
            );
        }
    }
    let body = json!({
        "name": w.wave, "version": w.version, "tag": w.tag,
        "targets": serde_json::from_slice::<Value>(&w.targets.to_bytes())?,
    });
    let answer = api
        .post_json(&format!("/ota/factories/{factory}/waves"), &body)
        .with_context(|| format!("creating wave {:?}", w.wave))?;
    if s.json() {
        println!("{answer}");
    } else {
        println!(
            "Wave {} created from the signed response: production targets version {}. Publish \
             it with `tufctl waves complete {}`.",
            w.wave, w.targets.signed.version, w.wave
        );
    }
    Ok(())
}

/// Keys that may sign a staged root: those of the current and of the new root.
pub fn root_signing_keys(current: &Root, new: &Root) -> BTreeMap<KeyId, PublicKey> {
    let mut keys = current.role_keys(Role::Root);
    keys.extend(new.role_keys(Role::Root));
    keys
}

/// Adds `sigs` to `env` after checking the response names these very bytes and that every
/// signature verifies with one of `keys`. Returns how many were added.
fn add_checked<T: Metadata>(
    env: &mut Signed<T>,
    name: &str,
    sha: &str,
    sigs: &[Signature],
    keys: &BTreeMap<KeyId, PublicKey>,
) -> Result<usize> {
    let staged = document_sha256(env);
    if !staged.eq_ignore_ascii_case(sha) {
        bail!(
            "the response signs a {name} (SHA-256 {sha}) that is not the one staged in the open \
             transaction ({staged}); the transaction changed after the request was exported. \
             Nothing was changed: export a new request"
        );
    }
    for sig in sigs {
        if !signature_valid(env, sig, keys) {
            bail!(
                "the signature of key {} on {name} does not verify with a key allowed to sign \
                 it; nothing was changed",
                sig.keyid
            );
        }
        env.add_signature(sig.clone());
    }
    Ok(sigs.len())
}

// --- parsing helpers --------------------------------------------------------------------------

fn top_object(bytes: &[u8], kinds: &[&str]) -> Result<Map<String, Value>> {
    let v = canonical::parse(bytes).map_err(|e| anyhow!("not valid JSON: {e}"))?;
    let Value::Object(o) = v else {
        bail!("not a JSON object");
    };
    let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
    if !kinds.contains(&kind) {
        bail!(
            "its \"type\" is {kind:?}, expected one of {}",
            kinds.join(", ")
        );
    }
    match o.get("format").and_then(Value::as_u64) {
        Some(FORMAT) => Ok(o),
        Some(f) => bail!(
            "it uses format version {f}; this tufctl reads version {FORMAT}: use the same \
             tufctl version on both machines"
        ),
        None => bail!("it has no \"format\" version"),
    }
}

fn text(o: &Map<String, Value>, key: &str) -> Result<String> {
    o.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{key:?} is missing or not a string"))
}

fn envelope<T: Metadata>(key: &str, v: Value) -> Result<Signed<T>> {
    Signed::from_value(v).with_context(|| format!("{key:?} is not valid {} metadata", T::TYPE))
}

fn take_envelope<T: Metadata>(o: &mut Map<String, Value>, key: &str) -> Result<Signed<T>> {
    let v = o.remove(key).ok_or_else(|| anyhow!("{key:?} is missing"))?;
    envelope(key, v)
}

fn chain(o: &mut Map<String, Value>, key: &str) -> Result<Vec<Signed<Root>>> {
    let Some(Value::Array(items)) = o.remove(key) else {
        bail!("{key:?} is missing or not a list");
    };
    if items.len() as u64 > MAX_CHAIN {
        bail!("{key:?} has more than {MAX_CHAIN} roots");
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| envelope(&format!("{key}[{i}]"), v))
        .collect()
}

fn env_value<T: Metadata>(env: &Signed<T>) -> Result<Value> {
    Ok(canonical::parse(&env.to_bytes())?)
}

fn chain_value(chain: &[Signed<Root>]) -> Result<Value> {
    chain
        .iter()
        .map(env_value)
        .collect::<Result<Vec<_>>>()
        .map(Value::Array)
}

/// Requests are small; anything this large is not one.
const MAX_FILE: u64 = 32 << 20;
/// Root versions a request carries at most.
const MAX_CHAIN: u64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_or_broken_files_are_errors_naming_why() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "not valid JSON"),
            (b"[1]", "not a JSON object"),
            (
                br#"{"type": "other", "format": 1}"#,
                "\"type\" is \"other\"",
            ),
            (
                br#"{"type": "tuf-factory/wave-response", "format": 2}"#,
                "format version 2",
            ),
            (br#"{"type": "tuf-factory/wave-response"}"#, "no \"format\""),
            (
                br#"{"type": "tuf-factory/wave-response", "format": 1, "factory": "f"}"#,
                "\"wave\" is missing",
            ),
        ];
        for (bytes, why) in cases {
            let e = match Response::from_slice(bytes) {
                Ok(_) => panic!("accepted {:?}", String::from_utf8_lossy(bytes)),
                Err(e) => format!("{e:#}"),
            };
            assert!(e.contains(why), "{e} (expected {why:?})");
        }
        // A request is not a response and the other way round.
        let e = Request::from_slice(br#"{"type": "tuf-factory/wave-response", "format": 1}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("expected one of"), "{e}");
    }

    #[test]
    fn wave_signatures_round_trip_and_a_bad_hash_is_refused() {
        let w = WaveSignatures {
            factory: "acme".into(),
            wave: "w1".into(),
            version: "42".into(),
            tag: "production".into(),
            sha256: "ab".repeat(32),
            signatures: Vec::new(),
        };
        let bytes = w.to_bytes().unwrap();
        let Response::WaveSignatures(back) = Response::from_slice(&bytes).unwrap() else {
            panic!("not wave signatures");
        };
        assert_eq!((back.wave.as_str(), back.sha256), ("w1", "ab".repeat(32)));
        let bad = String::from_utf8(bytes)
            .unwrap()
            .replace(&"ab".repeat(32), "xyz");
        let e = Response::from_slice(bad.as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a SHA-256"), "{e}");
    }

    #[test]
    fn a_wave_response_round_trips_as_canonical_json() {
        let expires: tuf_core::Expires = "2030-01-01T00:00:00Z".parse().unwrap();
        let mut targets = Signed::new(Targets::new(7, expires)).unwrap();
        let key = tuf_core::PrivateKey::generate(tuf_core::KeyType::Ed25519).unwrap();
        targets.sign(&key).unwrap();
        let r = Response::Wave(Box::new(WaveResponse {
            factory: "acme".into(),
            wave: "w1".into(),
            version: "42".into(),
            tag: "production".into(),
            targets,
        }));
        let bytes = r.to_bytes().unwrap();
        assert_eq!(
            canonical::to_text(&canonical::parse(&bytes).unwrap()).unwrap(),
            bytes
        );
        let Response::Wave(back) = Response::from_slice(&bytes).unwrap() else {
            panic!("not a wave response");
        };
        assert_eq!(back.targets.signed.version, 7);
        let keys: BTreeMap<KeyId, PublicKey> = [(
            tuf_core::Signer::key_id(&key).clone(),
            tuf_core::Signer::public_key(&key).clone(),
        )]
        .into();
        assert!(signature_valid(
            &back.targets,
            &back.targets.signatures[0],
            &keys
        ));
        // One byte of the signed part changed: the signature no longer verifies.
        let mut changed = back.targets.clone();
        changed.signed.version = 8;
        let changed = Signed::new(changed.signed).unwrap();
        assert!(!signature_valid(
            &changed,
            &back.targets.signatures[0],
            &keys
        ));
    }
}
