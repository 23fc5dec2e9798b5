//! Opening and saving the credentials file on disk: passphrases, leftover temporary files,
//! atomic replacement.

use std::path::{Path, PathBuf};

use std::io::IsTerminal;

use anyhow::{anyhow, bail, Context, Result};
use tuf_ceremony::server_keys::{owner_of, SERVER_OWNER};
use tuf_ceremony::tx::KeyOrigin;
use tuf_core::{KeyId, KeyType, PrivateKey, PublicKey, Role, Root, Signed, Signer};
use tuf_credentials::{Credentials, Error as CredError, PrivatePart, StoredKey};
use tuf_pkcs11::KeyRef;
use zeroize::Zeroizing;

use crate::hardware::TokenAccess;
use crate::settings::Settings;

pub struct CredsFile {
    pub path: PathBuf,
    pub creds: Credentials,
    passphrase: Option<Zeroizing<String>>,
    /// How to reach the hardware tokens of token keys (asked for their PIN lazily).
    pub tokens: TokenAccess,
}

impl CredsFile {
    /// Reads and parses `path`, decrypting it if needed; reports leftover temporary files.
    pub fn open(s: &Settings, path: &Path) -> Result<Self> {
        let loaded = tuf_credentials::load(path)
            .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
        explain_leftovers(path, &loaded.leftovers);
        let (creds, passphrase) = match Credentials::read(&loaded.bytes) {
            Ok(c) => (c, None),
            Err(CredError::Encrypted) => {
                let pass = passphrase(s).with_context(|| {
                    format!("{} is encrypted with a passphrase", path.display())
                })?;
                let c = Credentials::read_encrypted(&loaded.bytes, &pass)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                (c, Some(pass))
            }
            Err(e) => {
                return Err(anyhow!(e).context(format!(
                    "{} is not a usable credentials file (it was left unchanged); check that \
                     you passed the tarball from `tufctl keys download`, or restore it from a backup",
                    path.display()
                )))
            }
        };
        // The file decides its Factory and server; a flag naming another is a mistake.
        s.check_file_config(creds.config())
            .with_context(|| format!("{} was not used", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            creds,
            passphrase,
            tokens: TokenAccess::new(s),
        })
    }

    /// Wraps credentials that were just read from `path` by other means (e.g. a download).
    pub fn in_memory(s: &Settings, path: &Path, creds: Credentials) -> Self {
        Self {
            path: path.to_owned(),
            creds,
            passphrase: None,
            tokens: TokenAccess::new(s),
        }
    }

    /// A new tarball holding only `config.json`, created at `path` (never overwriting).
    pub fn create(s: &Settings, path: &Path, config: tuf_credentials::Config) -> Result<Self> {
        let creds = Credentials::new(config);
        tuf_credentials::save_new(path, &creds.to_bytes()?)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self::in_memory(s, path, creds))
    }

    /// Atomically replaces the file with the current contents (encrypted again with the same
    /// passphrase if it was encrypted). Durable on return.
    pub fn save(&self) -> Result<()> {
        let bytes = self.encode(&self.creds)?;
        tuf_credentials::save_atomic(&self.path, &bytes).with_context(|| {
            format!(
                "cannot write {} (it still holds its previous contents)",
                self.path.display()
            )
        })?;
        Ok(())
    }

    /// The bytes of `creds` as this file is stored: encrypted with the same passphrase when
    /// this file is encrypted, plain otherwise.
    pub fn encode(&self, creds: &Credentials) -> Result<Zeroizing<Vec<u8>>> {
        Ok(match &self.passphrase {
            Some(p) => Zeroizing::new(creds.to_encrypted_bytes(p)?),
            None => creds.to_bytes()?,
        })
    }

    pub fn is_encrypted(&self) -> bool {
        self.passphrase.is_some()
    }

    /// A signer for the stored key `key`: its private key from the file, or the key on its
    /// hardware token (which asks for the token PIN, once per run). `None` when the file
    /// holds only the public key.
    pub fn signer(&self, key: &StoredKey) -> Result<Option<Box<dyn Signer>>> {
        match &key.private {
            PrivatePart::File => Ok(Some(Box::new(self.creds.private_key(&key.name)?))),
            PrivatePart::Token { .. } => {
                let key_ref = self.token_ref(&key.name)?;
                let signer = self.tokens.open(&key_ref)?;
                // The token must hold the very key the file records, not another one that
                // happens to have the same ID.
                if !tuf_credentials::same_key(signer.public_key(), &key.public) {
                    bail!(
                        "the key {} on token {} is not the key recorded as keys/{}.pub in {}",
                        key_ref.id,
                        key_ref.token_name(),
                        key.name,
                        self.path.display()
                    );
                }
                Ok(Some(Box::new(signer)))
            }
            _ => Ok(None),
        }
    }

    /// A signer for the key whose public part is `public`, found by key material.
    pub fn find_signer(&self, public: &PublicKey) -> Result<Option<Box<dyn Signer>>> {
        match self.creds.find_key(public)? {
            Some(k) => self.signer(&k),
            None => Ok(None),
        }
    }

    /// The parsed `keys/<name>.pkcs11` reference of a token key.
    pub fn token_ref(&self, name: &str) -> Result<KeyRef> {
        let raw = self.creds.token_key_ref(name)?;
        KeyRef::from_json(&raw)
            .with_context(|| format!("reading keys/{name}.pkcs11 in {}", self.path.display()))
    }

    /// The stored `roles/root.json`, parsed.
    pub fn stored_root(&self) -> Result<Option<Signed<Root>>> {
        self.creds
            .root()
            .with_context(|| format!("reading roles/root.json in {}", self.path.display()))
    }
}

/// The passphrase of an existing encrypted file: `--passphrase-file`, else
/// `TUFCTL_PASSPHRASE`, else a prompt on the terminal (never echoed).
pub fn passphrase(s: &Settings) -> Result<Zeroizing<String>> {
    get_passphrase(s, "Passphrase of the credentials file: ", false)
}

/// A passphrase to encrypt with: like [`passphrase`], but a terminal prompt asks twice and
/// an empty passphrase is refused.
pub fn new_passphrase(s: &Settings) -> Result<Zeroizing<String>> {
    let p = get_passphrase(s, "New passphrase for the credentials file: ", true)?;
    if p.is_empty() {
        bail!("the passphrase is empty; refusing to encrypt with it");
    }
    Ok(p)
}

fn get_passphrase(s: &Settings, prompt: &str, confirm: bool) -> Result<Zeroizing<String>> {
    if let Some(file) = &s.global.passphrase_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading passphrase file {}", file.display()))?,
        );
        return Ok(Zeroizing::new(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        ));
    }
    if let Ok(p) = std::env::var("TUFCTL_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no passphrase given and standard input is not a terminal to ask for one: pass \
             --passphrase-file FILE or set TUFCTL_PASSPHRASE"
        );
    }
    // rpassword reads from the controlling terminal with echo turned off.
    let first = Zeroizing::new(
        rpassword::prompt_password(prompt).context("reading the passphrase from the terminal")?,
    );
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the passphrase: ")
                .context("reading the passphrase from the terminal")?,
        );
        if *again != *first {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    Ok(first)
}

pub fn explain_leftovers(path: &Path, leftovers: &[PathBuf]) {
    for l in leftovers {
        errln!(
            "note: found {}, a temporary file left by an interrupted write of {}. {} itself \
             is intact (the interrupted write never replaced it) and is used as it is. The \
             temporary file may be a complete newer copy: inspect it with `tufctl keys status \
             {}`, keep it if it holds a key you need, otherwise delete it.",
            l.display(),
            path.display(),
            path.display(),
            l.display()
        );
    }
}

impl tuf_ceremony::Keyring for CredsFile {
    fn signer(&self, key: &PublicKey) -> Result<Option<Box<dyn Signer>>, tuf_ceremony::Error> {
        self.find_signer(key)
            .map_err(|e| tuf_ceremony::Error::Keyring(e.into()))
    }
}

/// Name of a key file: `tufctl-<role>-<keyid>`.
pub fn key_name(role: &str, id: &KeyId) -> String {
    format!("tufctl-{role}-{id}")
}

/// Generates a new `role` key into `file` (in memory; the caller saves): a file key, or with
/// `slot` a key on that hardware token, whose reference is stored. Returns the public key,
/// labelled with where it lives (`x-key-origin`), and the entry it is stored as
/// (`<name>.sec` or `<name>.pkcs11`).
pub fn new_key_into(
    file: &mut CredsFile,
    role: Role,
    key_type: KeyType,
    slot: Option<&str>,
) -> Result<(PublicKey, String)> {
    Ok(match slot {
        None => {
            let key = PrivateKey::generate(key_type)?;
            let name = key_name(role.as_str(), key.key_id());
            file.creds.add_key(&name, &key)?;
            (
                KeyOrigin::File.label(key.public_key()),
                format!("{name}.sec"),
            )
        }
        Some(slot) => {
            let label = format!("tufctl-{role}");
            let (_, key_ref, public) = file.tokens.generate(slot, key_type, &label)?;
            let name = key_name(role.as_str(), &public.key_id());
            file.creds
                .add_token_key(&name, &public, &key_ref.to_json()?)?;
            (KeyOrigin::Token.label(&public), format!("{name}.pkcs11"))
        }
    })
}

/// The server's online targets keys: owned by "tufd" in x-key-owners; failing that, the
/// targets keys the tarball holds no copy of.
pub fn online_targets_keys(root: &Root, creds: &Credentials) -> Result<Vec<KeyId>> {
    let ids = &root.role(Role::Targets).keyids;
    let by_owner: Vec<KeyId> = ids
        .iter()
        .filter(|id| owner_of(root, id).as_deref() == Some(SERVER_OWNER))
        .cloned()
        .collect();
    if !by_owner.is_empty() {
        return Ok(by_owner);
    }
    let mut out = Vec::new();
    for id in ids {
        if let Some(pk) = root.keys.get(id) {
            if creds.key_name_of(pk)?.is_none() {
                out.push(id.clone());
            }
        }
    }
    Ok(out)
}
