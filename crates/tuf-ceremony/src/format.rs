//! The files of air-gapped signing (docs/SIGNING-REQUESTS.md): requests carry what an
//! offline key holder is asked to sign, with everything needed to check it; responses carry
//! the signatures back; a public-key file carries a key made offline. All are canonical JSON
//! with a `type` and a `format` version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tuf_core::{canonical, KeyId, Metadata, PublicKey, Role, Root, Signature, Signed, Targets};

use crate::check::{Check, Refusal};
use crate::server_keys::HeldKey;
pub use crate::signature::{document_sha256, signature_valid};
use crate::wave::Retire;
use crate::Error;

/// The version of the formats this library writes and reads.
pub const FORMAT: u64 = 1;
/// `type` of a root-update request file.
pub const ROOT_REQUEST: &str = "tuf-factory/root-update-request";
/// `type` of a wave request file.
pub const WAVE_REQUEST: &str = "tuf-factory/wave-request";
/// `type` of a root-update response file.
pub const ROOT_RESPONSE: &str = "tuf-factory/root-update-response";
/// `type` of a wave response file.
pub const WAVE_RESPONSE: &str = "tuf-factory/wave-response";
/// `type` of a wave response without the targets (what fits a QR code).
pub const WAVE_SIGNATURES: &str = "tuf-factory/wave-signatures";
/// `type` of the public-key file `tufctl keys generate` writes.
pub const PUBLIC_KEY: &str = "tuf-factory/public-key";

/// An open root-update transaction, with everything needed to check it offline.
#[derive(Clone, Debug)]
pub struct RootUpdateRequest {
    /// The Factory the transaction belongs to; a signer refuses a request for another.
    pub factory: String,
    /// The transaction's ID; signatures made for it do not count in another.
    pub txid: String,
    /// What the transaction is for, as its opener wrote it (shown in the review, unverified).
    pub message: String,
    /// CI root versions 1..=current, as served.
    pub ci_chain: Vec<Signed<Root>>,
    /// Production root versions 1..=current, as served.
    pub prod_chain: Vec<Signed<Root>>,
    /// The staged CI root.
    pub ci_root: Signed<Root>,
    /// The staged production root.
    pub prod_root: Signed<Root>,
    /// Staged production targets, when the transaction publishes new ones.
    pub prod_targets: Option<Signed<Targets>>,
    /// The production targets devices install now (what staged ones are compared with).
    pub current_prod_targets: Signed<Targets>,
    /// The keys the server says it holds (public parts): they make the checks about what the
    /// server could sign alone stricter, never looser.
    pub server_keys: Vec<HeldKey>,
}

/// Proposed production targets of a wave, unsigned, with what they are checked against.
#[derive(Clone, Debug)]
pub struct WaveRequest {
    /// The Factory the wave belongs to.
    pub factory: String,
    /// The wave's name.
    pub wave: String,
    /// The CI build version the wave publishes.
    pub version: String,
    /// The tag the wave publishes it under.
    pub tag: String,
    /// CI root versions 1..=current, as served.
    pub ci_chain: Vec<Signed<Root>>,
    /// Production root versions 1..=current, as served.
    pub prod_chain: Vec<Signed<Root>>,
    /// CI targets.json (signed by the online targets key) the wave's targets come from.
    pub ci_targets: Signed<Targets>,
    /// The production targets devices install now.
    pub current_targets: Signed<Targets>,
    /// The proposed production targets (current version + 1).
    pub targets: Signed<Targets>,
    /// The production targets the wave retires (absent from the file when none).
    pub retire: Retire,
}

/// A signing-request file of either kind, as read by `tufctl sign`.
#[derive(Clone, Debug)]
pub enum Request {
    /// A root-update transaction to sign.
    RootUpdate(Box<RootUpdateRequest>),
    /// A wave's production targets to sign.
    Wave(Box<WaveRequest>),
}

/// Signatures one offline key holder added to the documents of a root-update transaction.
#[derive(Clone, Debug)]
pub struct RootUpdateResponse {
    /// The Factory the transaction belongs to.
    pub factory: String,
    /// The transaction the signatures were made for.
    pub txid: String,
    /// Document name (`ci_root`, `prod_root`, `prod_targets`) → (SHA-256 of the canonical
    /// `signed` bytes, new signatures).
    pub documents: BTreeMap<String, (String, Vec<Signature>)>,
}

/// A wave's production targets with the offline signatures.
#[derive(Clone, Debug)]
pub struct WaveResponse {
    /// The Factory the wave belongs to.
    pub factory: String,
    /// The wave's name.
    pub wave: String,
    /// The CI build version the wave publishes.
    pub version: String,
    /// The tag the wave publishes it under.
    pub tag: String,
    /// The production targets with the offline signatures added.
    pub targets: Signed<Targets>,
    /// What the wave retires, as the request said.
    pub retire: Retire,
}

/// A wave response without the targets themselves: what fits in a QR code however many
/// targets the wave has. [`WaveSignatures::join`] puts it together with its request again.
#[derive(Clone, Debug)]
pub struct WaveSignatures {
    /// The Factory the wave belongs to.
    pub factory: String,
    /// The wave's name.
    pub wave: String,
    /// The CI build version the wave publishes.
    pub version: String,
    /// The tag the wave publishes it under.
    pub tag: String,
    /// SHA-256 of the canonical `signed` bytes of the request's proposed targets.
    pub sha256: String,
    /// The offline signatures over those bytes.
    pub signatures: Vec<Signature>,
}

/// A signing-response file of any kind, as imported on the online machine.
#[derive(Clone, Debug)]
pub enum Response {
    /// Signatures for a root-update transaction.
    RootUpdate(RootUpdateResponse),
    /// A wave's signed production targets.
    Wave(Box<WaveResponse>),
    /// A wave's signatures without the targets.
    WaveSignatures(WaveSignatures),
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
    pub fn join(self, request: &WaveRequest) -> Result<WaveResponse, Error> {
        let same = (
            &request.factory,
            &request.wave,
            &request.version,
            &request.tag,
        ) == (&self.factory, &self.wave, &self.version, &self.tag);
        if !same || document_sha256(&request.targets) != self.sha256 {
            return Err(Error::Format(format!(
                "the signatures answer another request (wave {:?} of Factory {:?}, targets \
                 {}); nothing was changed",
                self.wave, self.factory, self.sha256
            )));
        }
        let mut targets = request.targets.clone();
        targets.signatures = self.signatures;
        Ok(WaveResponse {
            factory: self.factory,
            wave: self.wave,
            version: self.version,
            tag: self.tag,
            targets,
            retire: request.retire.clone(),
        })
    }

    /// The file's bytes (canonical JSON, control characters escaped).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let v = json!({
            "type": WAVE_SIGNATURES, "format": FORMAT, "factory": self.factory,
            "wave": self.wave, "version": self.version, "tag": self.tag,
            "sha256": self.sha256, "signatures": to_value(&self.signatures)?,
        });
        Ok(canonical::to_text(&v)?)
    }
}

impl Request {
    /// The file's bytes (canonical JSON, control characters escaped).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let v = match self {
            Self::RootUpdate(r) => json!({
                "type": ROOT_REQUEST, "format": FORMAT, "factory": r.factory, "txid": r.txid,
                "message": r.message,
                "ci_chain": chain_value(&r.ci_chain)?, "prod_chain": chain_value(&r.prod_chain)?,
                "ci_root": env_value(&r.ci_root)?, "prod_root": env_value(&r.prod_root)?,
                "prod_targets": r.prod_targets.as_ref().map(env_value).transpose()?,
                "current_prod_targets": env_value(&r.current_prod_targets)?,
                "server_keys": to_value(&r.server_keys)?,
            }),
            Self::Wave(w) => {
                let mut v = json!({
                    "type": WAVE_REQUEST, "format": FORMAT, "factory": w.factory,
                    "wave": w.wave, "version": w.version, "tag": w.tag,
                    "ci_chain": chain_value(&w.ci_chain)?,
                    "prod_chain": chain_value(&w.prod_chain)?,
                    "ci_targets": env_value(&w.ci_targets)?,
                    "current_targets": env_value(&w.current_targets)?,
                    "targets": env_value(&w.targets)?,
                });
                put_retire(&mut v, &w.retire)?;
                v
            }
        };
        Ok(canonical::to_text(&v)?)
    }

    /// Parses a request file. Staged roots go through [`crate::root_update::parse_staged`],
    /// so an impossible threshold is refused as `threshold_range`, as the server refuses it.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let mut o = top_object(bytes, &[ROOT_REQUEST, WAVE_REQUEST])?;
        if text(&o, "type")? == ROOT_REQUEST {
            let prod_targets = match o.remove("prod_targets") {
                None | Some(Value::Null) => None,
                Some(v) => Some(envelope("prod_targets", v)?),
            };
            let server_keys = match o.remove("server_keys") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => serde_json::from_value(v)
                    .map_err(|e| Error::Format(format!("\"server_keys\": {e}")))?,
            };
            return Ok(Self::RootUpdate(Box::new(RootUpdateRequest {
                factory: text(&o, "factory")?,
                txid: text(&o, "txid")?,
                message: text(&o, "message")?,
                ci_chain: chain(&mut o, "ci_chain")?,
                prod_chain: chain(&mut o, "prod_chain")?,
                ci_root: staged_root(&mut o, "ci_root")?,
                prod_root: staged_root(&mut o, "prod_root")?,
                prod_targets,
                current_prod_targets: take_envelope(&mut o, "current_prod_targets")?,
                server_keys,
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
            retire: take_retire(&mut o)?,
        })))
    }
}

impl Response {
    /// The file's bytes (canonical JSON, control characters escaped).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let v = match self {
            Self::WaveSignatures(w) => return w.to_bytes(),
            Self::RootUpdate(r) => {
                let mut docs = Map::new();
                for (name, (sha, sigs)) in &r.documents {
                    docs.insert(
                        name.clone(),
                        json!({"sha256": sha, "signatures": to_value(sigs)?}),
                    );
                }
                json!({"type": ROOT_RESPONSE, "format": FORMAT, "factory": r.factory,
                       "txid": r.txid, "documents": docs})
            }
            Self::Wave(w) => {
                let mut v = json!({
                    "type": WAVE_RESPONSE, "format": FORMAT, "factory": w.factory,
                    "wave": w.wave, "version": w.version, "tag": w.tag,
                    "targets": env_value(&w.targets)?,
                });
                put_retire(&mut v, &w.retire)?;
                v
            }
        };
        Ok(canonical::to_text(&v)?)
    }

    /// Reads a response file of any kind; refuses unknown types, formats and fields.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let mut o = top_object(bytes, &[ROOT_RESPONSE, WAVE_RESPONSE, WAVE_SIGNATURES])?;
        let kind = text(&o, "type")?;
        if kind == WAVE_SIGNATURES {
            let sha256 = sha256_field(&o, "sha256", "\"sha256\"")?;
            let signatures = signatures(o.remove("signatures"), "\"signatures\"")?;
            return Ok(Self::WaveSignatures(WaveSignatures {
                factory: text(&o, "factory")?,
                wave: text(&o, "wave")?,
                version: text(&o, "version")?,
                tag: text(&o, "tag")?,
                sha256,
                signatures,
            }));
        }
        if kind == WAVE_RESPONSE {
            return Ok(Self::Wave(Box::new(WaveResponse {
                factory: text(&o, "factory")?,
                wave: text(&o, "wave")?,
                version: text(&o, "version")?,
                tag: text(&o, "tag")?,
                targets: take_envelope(&mut o, "targets")?,
                retire: take_retire(&mut o)?,
            })));
        }
        let Some(Value::Object(docs)) = o.remove("documents") else {
            return Err(Error::Format(
                "the response has no \"documents\" object".to_owned(),
            ));
        };
        let mut documents = BTreeMap::new();
        for (name, d) in docs {
            if !matches!(name.as_str(), "ci_root" | "prod_root" | "prod_targets") {
                return Err(Error::Format(format!(
                    "the response names an unknown document {name:?}"
                )));
            }
            let Value::Object(mut d) = d else {
                return Err(Error::Format(format!("documents.{name} is not an object")));
            };
            let sha = sha256_field(&d, "sha256", &format!("documents.{name}.sha256"))?;
            let sigs = signatures(
                d.remove("signatures"),
                &format!("documents.{name}.signatures"),
            )?;
            documents.insert(name, (sha, sigs));
        }
        Ok(Self::RootUpdate(RootUpdateResponse {
            factory: text(&o, "factory")?,
            txid: text(&o, "txid")?,
            documents,
        }))
    }
}

/// Adds the signatures of a response to `env` after checking the response names these very
/// bytes (`sha`) and that every signature verifies with one of `keys`. Returns how many were
/// added. Either every signature is added or none.
pub fn add_signatures<T: Metadata>(
    env: &mut Signed<T>,
    name: &str,
    sha: &str,
    sigs: &[Signature],
    keys: &BTreeMap<KeyId, PublicKey>,
) -> Result<usize, Error> {
    let staged = document_sha256(env);
    if !staged.eq_ignore_ascii_case(sha) {
        return Err(Refusal::new(
            Check::Transaction,
            format!(
                "the response signs a {name} (SHA-256 {sha}) that is not the one staged in the \
                 open transaction ({staged}); the transaction changed after the request was \
                 exported. Nothing was changed: export a new request"
            ),
        )
        .into());
    }
    for sig in sigs {
        if !signature_valid(env, sig, keys) {
            return Err(Refusal::new(
                Check::SignaturesIntact,
                format!(
                    "the signature of key {} on {name} does not verify with a key allowed to \
                     sign it; nothing was changed",
                    sig.keyid
                ),
            )
            .into());
        }
    }
    for sig in sigs {
        env.add_signature(sig.clone());
    }
    Ok(sigs.len())
}

/// The file `keys generate` writes: a new key's public part and what it is for.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyFile {
    /// `type`: always [`PUBLIC_KEY`].
    #[serde(rename = "type")]
    pub kind: String,
    /// `format`: [`FORMAT`].
    pub format: u64,
    /// The Factory the key is for.
    pub factory: String,
    /// The role the key is meant for (`root` or `targets`).
    pub role: String,
    /// Who holds the private part, as they said (shown, never verified).
    pub owner: String,
    /// The key's ID; checked to be the ID of `key`.
    pub keyid: KeyId,
    /// The public key as it will appear in root.json.
    pub key: PublicKey,
}

impl PublicKeyFile {
    /// A file for a new `role` key of `factory`.
    pub fn new(factory: &str, role: Role, owner: &str, key: PublicKey) -> Self {
        Self {
            kind: PUBLIC_KEY.to_owned(),
            format: FORMAT,
            factory: factory.to_owned(),
            role: role.as_str().to_owned(),
            owner: owner.to_owned(),
            keyid: key.key_id(),
            key,
        }
    }

    /// Parses and checks a public-key file: its type and format, a root or targets role, and
    /// a key ID that is the one computed from the key (a swapped key is refused).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let value: Value = canonical::parse(bytes)
            .map_err(|e| Error::Format(format!("it is not valid JSON: {e}")))?;
        let f: Self = serde_json::from_value(value).map_err(|e| {
            Error::Format(format!(
                "it is not a public-key file of `tufctl keys generate`: {e}"
            ))
        })?;
        if f.kind != PUBLIC_KEY {
            return Err(Error::Format(format!(
                "its type is {:?}, not {PUBLIC_KEY:?}",
                f.kind
            )));
        }
        if f.format != FORMAT {
            return Err(Error::Format(format!(
                "it is format {}, this tufctl reads format {FORMAT}",
                f.format
            )));
        }
        f.role()?;
        let computed = f.key.key_id();
        if computed != f.keyid {
            return Err(Refusal::new(
                Check::KeyIds,
                format!(
                    "it names key {} but holds key {computed}: the key was swapped",
                    f.keyid
                ),
            )
            .into());
        }
        Ok(f)
    }

    /// The role the key is meant for; refused unless an offline key may hold it.
    pub fn role(&self) -> Result<Role, Error> {
        offline_role(&self.role)
    }

    /// The file's bytes (canonical JSON).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(canonical::to_text(&to_value(self)?)?)
    }
}

/// The role of an offline key: root or targets (the server holds the others).
pub fn offline_role(name: &str) -> Result<Role, Error> {
    match name {
        "root" => Ok(Role::Root),
        "targets" => Ok(Role::Targets),
        other => Err(Error::Role(format!(
            "role {other:?}: offline keys are for the root or targets role only"
        ))),
    }
}

/// A top-level role by name.
pub fn parse_role(s: &str) -> Result<Role, Error> {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| {
            Error::Role(format!(
                "unknown role {s:?}: use root, targets, snapshot or timestamp"
            ))
        })
}

/// An envelope as a JSON value, for a request body or a file.
pub fn env_value<T: Metadata>(env: &Signed<T>) -> Result<Value, Error> {
    Ok(canonical::parse(&env.to_bytes())?)
}

// --- parsing helpers --------------------------------------------------------------------------

fn to_value<T: Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Format(e.to_string()))
}

fn top_object(bytes: &[u8], kinds: &[&str]) -> Result<Map<String, Value>, Error> {
    let v = canonical::parse(bytes).map_err(|e| Error::Format(format!("not valid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(Error::Format("not a JSON object".to_owned()));
    };
    let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
    if !kinds.contains(&kind) {
        return Err(Error::Format(format!(
            "its \"type\" is {kind:?}, expected one of {}",
            kinds.join(", ")
        )));
    }
    match o.get("format").and_then(Value::as_u64) {
        Some(FORMAT) => Ok(o),
        Some(f) => Err(Error::Format(format!(
            "it uses format version {f}; this tufctl reads version {FORMAT}: use the same \
             tufctl version on both machines"
        ))),
        None => Err(Error::Format("it has no \"format\" version".to_owned())),
    }
}

fn text(o: &Map<String, Value>, key: &str) -> Result<String, Error> {
    o.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::Format(format!("{key:?} is missing or not a string")))
}

fn sha256_field(o: &Map<String, Value>, key: &str, what: &str) -> Result<String, Error> {
    o.get(key)
        .and_then(Value::as_str)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .ok_or_else(|| Error::Format(format!("{what} is not a SHA-256 in hex")))
}

fn signatures(v: Option<Value>, what: &str) -> Result<Vec<Signature>, Error> {
    serde_json::from_value(v.unwrap_or(Value::Null))
        .map_err(|e| Error::Format(format!("{what}: {e}")))
}

fn envelope<T: Metadata>(key: &str, v: Value) -> Result<Signed<T>, Error> {
    Signed::from_value(v)
        .map_err(|e| Error::Format(format!("{key:?} is not valid {} metadata: {e}", T::TYPE)))
}

/// `"retire"`, written only when the wave retires something (files of waves that retire
/// nothing stay as they were).
fn put_retire(v: &mut Value, retire: &Retire) -> Result<(), Error> {
    if !retire.is_empty() {
        v["retire"] = to_value(retire)?;
    }
    Ok(())
}

fn take_retire(o: &mut Map<String, Value>) -> Result<Retire, Error> {
    match o.remove("retire") {
        None => Ok(Retire::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| Error::Format(format!("\"retire\": {e}"))),
    }
}

fn take_envelope<T: Metadata>(o: &mut Map<String, Value>, key: &str) -> Result<Signed<T>, Error> {
    let v = o
        .remove(key)
        .ok_or_else(|| Error::Format(format!("{key:?} is missing")))?;
    envelope(key, v)
}

fn staged_root(o: &mut Map<String, Value>, key: &str) -> Result<Signed<Root>, Error> {
    let v = o
        .remove(key)
        .ok_or_else(|| Error::Format(format!("{key:?} is missing")))?;
    crate::root_update::parse_staged(key, v).map_err(|f| match f.into_result() {
        Err(r) => Error::Refused(r),
        Ok(()) => Error::Format(format!("{key:?} is not a valid root")),
    })
}

fn chain(o: &mut Map<String, Value>, key: &str) -> Result<Vec<Signed<Root>>, Error> {
    let Some(Value::Array(items)) = o.remove(key) else {
        return Err(Error::Format(format!("{key:?} is missing or not a list")));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| envelope(&format!("{key}[{i}]"), v))
        .collect()
}

fn chain_value(chain: &[Signed<Root>]) -> Result<Value, Error> {
    chain
        .iter()
        .map(env_value)
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}
