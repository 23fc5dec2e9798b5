//! The Factory on the server, as the online commands use it: every call of the transaction
//! API, the root chains, and the documents a signing request carries. What the server says
//! about roots is verified from the root a credentials file trusts before anything is signed.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tuf_ceremony::format::{env_value, Request, RootUpdateRequest};
use tuf_ceremony::{offline, tx, Roots, Tx};
use tuf_core::{Role, Root, Signed, Targets};
use tuf_credentials::Config;

use crate::client::{status_of, Api};
use crate::creds::CredsFile;
use crate::settings::Settings;

/// One Factory on one server, with the owner's token.
pub struct Factory {
    pub api: Api,
    pub name: String,
    /// `/ota/repo/<factory>/api/v1/user_repo`
    pub repo: String,
}

/// The outcome of staging a transaction and applying it if it is complete.
pub enum Staged {
    Applied,
    /// Still open: the root signatures that are missing, for people.
    Missing(Vec<String>),
}

impl Staged {
    /// Reports a staged transaction that still needs signatures; true when it was applied.
    pub fn report(self, json: bool, txid: &str) -> bool {
        let Staged::Missing(missing) = self else {
            return true;
        };
        if json {
            crate::output::json(&json!({"txid": txid, "applied": false, "missing": missing}));
            return false;
        }
        outln!(
            "Staged root-update transaction {txid}; it needs more signatures before it can be \
             applied:"
        );
        for m in &missing {
            outln!("  - {m}");
        }
        outln!(
            "Each key holder runs `tufctl keys tuf updates sign -k THEIR.tgz`, then anyone runs \
             `tufctl keys tuf updates apply`."
        );
        false
    }
}

impl Factory {
    /// The Factory of the settings (or of a credentials file's config), owner token required.
    pub fn owner(s: &Settings, cfg: Option<&Config>) -> Result<Self> {
        Ok(Self {
            api: s.api_with_token(cfg, "the Factory owner's")?,
            name: s.factory(cfg)?,
            repo: s.repo_path(cfg)?,
        })
    }

    /// The Factory of the settings, for reading: a token is sent when one is configured.
    pub fn reader(s: &Settings, cfg: Option<&Config>) -> Result<Self> {
        Ok(Self {
            api: s.api(cfg)?,
            name: s.factory(cfg)?,
            repo: s.repo_path(cfg)?,
        })
    }

    /// The Factory of an opened credentials file.
    pub fn of_file(s: &Settings, file: &CredsFile) -> Result<Self> {
        Self::owner(s, Some(&file.creds.config().clone()))
    }

    /// The current CI and production roots, as served.
    pub fn roots(&self) -> Result<Roots> {
        let ci = Signed::from_slice(&self.api.get(&format!("{}/root.json", self.repo))?)
            .context("the server's CI root.json is not valid")?;
        let prod = Signed::from_slice(
            &self
                .api
                .get(&format!("{}/root.json?production=1", self.repo))?,
        )
        .context("the server's production root.json is not valid")?;
        Ok(Roots { ci, prod })
    }

    /// The current roots, verified along the chains the server serves from the root `file`
    /// trusts (its `roles/root.json`), as `tufctl sign` verifies a request: a server that
    /// lies about the roots cannot have a key sign for a root it made up. Only the versions
    /// from the trusted one on are fetched, and the file then remembers the newest CI root
    /// it verified, so the next run verifies only what is new. A file without a stored root
    /// has nothing to verify from; the roots are then taken as served, with a note.
    pub fn verified_roots(&self, file: &mut CredsFile) -> Result<Roots> {
        let served = self.roots()?;
        let Some(anchor) = file.stored_root()? else {
            errln!(
                "note: {} holds no roles/root.json, so the server's roots cannot be verified \
                 from a root this file trusts; they are used as served",
                file.path.display()
            );
            return Ok(served);
        };
        let from = anchor.signed.version;
        let ci_chain = self.root_chain(from, served.ci.signed.version, false)?;
        let prod_chain = self.root_chain(from, served.prod.signed.version, true)?;
        let roots = offline::trusted_roots(&ci_chain, &prod_chain, &anchor).with_context(|| {
            format!(
                "the server's roots do not verify from the root stored in {}; nothing was signed",
                file.path.display()
            )
        })?;
        if roots.ci.signed.version > from {
            remember(file, &roots.ci);
        }
        Ok(roots)
    }

    /// Stores the Factory's current CI root in `file` as `roles/root.json`, the root the file
    /// trusts from now on. A failure is only a warning: the keys in the file are complete.
    pub fn store_root(&self, file: &mut CredsFile) {
        let stored = self
            .api
            .get(&format!("{}/root.json", self.repo))
            .and_then(|b| Ok(file.creds.set_root_json(&b)?))
            .and_then(|_| file.save());
        if let Err(e) = stored {
            errln!(
                "warning: the root changed, but updating roles/root.json in {} failed ({}); \
                 the keys in the file are complete, only that reference copy is stale",
                file.path.display(),
                crate::outcome::paragraph(&e)
            );
        }
    }

    /// Root versions `from..=newest` of one flavour, as served.
    pub fn root_chain(&self, from: u64, newest: u64, prod: bool) -> Result<Vec<Signed<Root>>> {
        let q = if prod { "?production=1" } else { "" };
        (from.max(1)..=newest)
            .map(|v| {
                let bytes = self.api.get(&format!("{}/{v}.root.json{q}", self.repo))?;
                Signed::from_slice(&bytes)
                    .with_context(|| format!("root version {v} from the server is not valid"))
            })
            .collect()
    }

    /// The CI or production targets.json, as served.
    pub fn targets(&self, prod: bool) -> Result<Signed<Targets>> {
        let q = if prod { "?production=1" } else { "" };
        let which = if prod { "production" } else { "CI" };
        Signed::from_slice(&self.api.get(&format!("{}/targets.json{q}", self.repo))?)
            .with_context(|| format!("the {which} targets.json from the server is not valid"))
    }

    pub fn open_tx(&self) -> Result<Option<Tx>> {
        match self.api.get_opt(&format!("{}/root/updates", self.repo))? {
            None => Ok(None),
            Some(b) => {
                let v = serde_json::from_slice(&b).context("the open transaction is not JSON")?;
                Ok(Some(Tx::from_value(v)?))
            }
        }
    }

    /// The open transaction, or an error saying there is none.
    pub fn require_open(&self) -> Result<Tx> {
        self.open_tx()?.ok_or_else(|| {
            anyhow!("there is no open root-update transaction; start one with `tufctl keys tuf updates init -m MESSAGE`")
        })
    }

    pub fn init_tx(&self, message: &str) -> Result<Tx> {
        let path = format!("{}/root/updates", self.repo);
        match self.api.post_json(&path, &json!({ "message": message })) {
            Ok(v) => Ok(Tx::from_value(v)?),
            Err(e) if status_of(&e) == Some(409) => Err(e.context(
                "another root-update transaction is already open: review it with `tufctl keys \
                 tuf updates review`, then finish it (sign/apply) or cancel it (`tufctl keys \
                 tuf updates cancel`)",
            )),
            Err(e) => Err(e.context("opening a root-update transaction")),
        }
    }

    /// Opens a transaction for a one-step command. An open one (from a crashed run, or
    /// another key holder) is reused when `reusable` says it is ours, cancelled with
    /// `cancel_open`, and otherwise explained.
    pub fn begin(
        &self,
        message: &str,
        cancel_open: bool,
        reusable: impl Fn(&Tx) -> bool,
    ) -> Result<Tx> {
        if let Some(open) = self.open_tx()? {
            if reusable(&open) {
                errln!(
                    "note: reusing open root-update transaction {} (\"{}\"), left by an \
                     interrupted run",
                    open.txid,
                    open.message
                );
                return Ok(open);
            }
            if !cancel_open {
                bail!(
                    "an open root-update transaction {} (\"{}\") already exists, probably left \
                     by an interrupted run or started by another key holder; nothing was \
                     changed. Inspect it with `tufctl keys tuf updates review`, then either \
                     finish it (`sign`/`apply`) or re-run this command with --cancel-open to \
                     cancel it and start over",
                    open.txid,
                    open.message
                );
            }
            self.cancel(&open.txid)?;
            errln!("cancelled open root-update transaction {}", open.txid);
        }
        self.init_tx(message)
    }

    pub fn stage(&self, tx: &Tx) -> Result<Tx> {
        let v = self
            .api
            .put_json(&format!("{}/root/updates", self.repo), &tx.stage_body()?)
            .context("staging the edited roots")?;
        let mut staged = Tx::from_value(v)?;
        // Keep our prod_targets if the server echoes an older copy.
        if tx.stage_prod_targets {
            staged.stage_prod_targets = true;
            if staged
                .prod_targets
                .as_ref()
                .is_none_or(|t| t.signatures.is_empty())
            {
                staged.prod_targets = tx.prod_targets.clone();
            }
        }
        Ok(staged)
    }

    pub fn apply(&self, txid: &str) -> Result<Value> {
        self.api
            .post_json(
                &format!("{}/root/updates/apply", self.repo),
                &json!({ "txid": txid }),
            )
            .context(
                "applying the root update (the server rejected it; nothing changed on the server)",
            )
    }

    pub fn cancel(&self, txid: &str) -> Result<()> {
        self.api
            .post_json(
                &format!("{}/root/updates/cancel", self.repo),
                &json!({ "txid": txid }),
            )
            .context("cancelling the root-update transaction")?;
        Ok(())
    }

    /// Stages `tx`, then applies it when every root signature is there.
    pub fn stage_and_apply(&self, tx: &Tx, current: &Roots) -> Result<Staged> {
        let staged = self.stage(tx)?;
        for w in &staged.warnings {
            errln!("warning: {w}");
        }
        let missing = tx::missing_signatures(tx, current);
        if !missing.is_empty() {
            return Ok(Staged::Missing(missing));
        }
        self.apply(&tx.txid).map_err(|e| {
            if staged.errors.is_empty() {
                e
            } else {
                e.context(format!("server checks: {}", staged.errors.join("; ")))
            }
        })?;
        Ok(Staged::Applied)
    }

    /// The signing request for the open transaction `tx`.
    pub fn root_update_request(&self, tx: &Tx, current: &Roots) -> Result<Request> {
        let current_prod_targets = self.targets(true)?;
        // The staged production targets matter when they carry signatures already, or when
        // the new production root changes the targets role (the current ones may stop
        // verifying).
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
            factory: self.name.clone(),
            txid: tx.txid.clone(),
            message: tx.message.clone(),
            ci_chain: self.root_chain(1, current.ci.signed.version, false)?,
            prod_chain: self.root_chain(1, current.prod.signed.version, true)?,
            ci_root: tx.ci_root.clone(),
            prod_root: tx.prod_root.clone(),
            prod_targets,
            current_prod_targets,
            server_keys: tx.server_keys.clone(),
        })))
    }

    /// Creates a wave from production targets signed offline.
    pub fn create_wave(
        &self,
        wave: &str,
        version: &str,
        tag: &str,
        targets: &Signed<Targets>,
        retire: &tuf_ceremony::wave::Retire,
    ) -> Result<Value> {
        let mut body = json!({
            "name": wave, "version": version, "tag": tag, "targets": env_value(targets)?,
        });
        if !retire.is_empty() {
            body["retire"] = serde_json::to_value(retire)?;
        }
        self.api
            .post_json(&format!("/ota/factories/{}/waves", self.name), &body)
            .with_context(|| format!("creating wave {wave:?}"))
    }
}

/// Stores `root` (verified) as the file's trusted root, best effort: a file that cannot be
/// written is verified from its older root again next time.
fn remember(file: &mut CredsFile, root: &Signed<Root>) {
    let saved = file
        .creds
        .set_root_json(&root.to_bytes())
        .map_err(anyhow::Error::from)
        .and_then(|()| file.save());
    if let Err(e) = saved {
        let e = crate::outcome::paragraph(&e);
        errln!(
            "note: could not record root version {} in {} ({e:#}); the next run verifies the \
             chain from the older root again",
            root.signed.version,
            file.path.display()
        );
    }
}

/// Checks the open transaction with the server's own named checks against `current`, roots
/// the caller verified from the root its credentials file trusts. Every online command that
/// signs a transaction runs this first, as `tufctl sign` does offline.
pub fn check_tx(tx: &Tx, current: &Roots) -> Result<()> {
    offline::check_tx(tx, current, OffsetDateTime::now_utc()).map_err(|e| {
        anyhow!(e).context(format!(
            "refusing to sign root-update transaction {}: it does not pass the checks; nothing \
             was signed",
            tx.txid
        ))
    })
}
