//! `tufd restore`: a backup (`backup`) back into a data directory, checked before anything
//! takes the place of what is there; and, at the first start after it, new versions of the
//! online metadata past anything the lost server may have published.
//!
//! Steps: the archive is unpacked into `<data-dir>/.restore-in-progress/`, every entry checked
//! against the manifest (names on an allow-list, order, length, SHA-256, nothing missing or
//! extra); the database passes SQLite's integrity check, has no migration newer than this
//! tufd, matches the keyring file and (when included) the server key, and every artifact it
//! names is there. Only then does anything in the data directory move: with `--force`, what
//! was there goes to `<data-dir>/.replaced-<time>/`; the staged files move into place, and
//! removing the staging directory is the commit. tufd refuses to start while it exists, so it
//! never serves a half-restored directory.
//!
//! Devices that followed the lost server may hold newer versions of timestamp, snapshot and
//! CI targets than the backup has, and would refuse the restored ones as a rollback. So the
//! restore records a version gap (`--version-gap`), and the first start re-signs CI targets
//! and the snapshot and timestamp of both flavours that many versions past their heads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde_json::json;
use time::OffsetDateTime;
use tuf_core::{Role, Signed, Targets};

use crate::backup::{artifact_path, Hashing, Manifest, FORMAT, MANIFEST, PREFIX};
use crate::db::{begin_locked, Db};
use crate::error::ApiResult;
use crate::repo::{current_root, require_head, Flavour, OnlineKeys, Signing};
use crate::{db, files, keyring, server_key, Shared};

/// `tufd restore`.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The data directory to restore into: new or empty, unless --force.
    #[arg(long, env = "TUFD_DATA_DIR", default_value = "./tufd-data")]
    data_dir: PathBuf,
    /// The backup file (`tufd backup --out`).
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// Restore into a data directory that is not empty: its contents are moved into
    /// `<data-dir>/.replaced-<unix time>/` (stop tufd first; delete that directory once sure).
    #[arg(long)]
    force: bool,
    /// How many versions the first start moves timestamp, snapshot and CI targets past the
    /// backup's, so devices that saw newer ones accept them. At least the number of versions
    /// published after the backup (one per CI target added, plus re-signing); 0: none.
    #[arg(long, default_value_t = 1_000_000)]
    version_gap: u64,
    /// The server key's file, when the backup does not hold it (checked against the store;
    /// env TUFD_SERVER_KEY, hex, wins).
    #[arg(long, env = "TUFD_SERVER_KEY_FILE")]
    server_key_file: Option<PathBuf>,
}

/// Restores `args.from` into `args.data_dir`.
pub async fn run(args: &RestoreArgs) -> anyhow::Result<()> {
    files::restrict_umask();
    anyhow::ensure!(
        args.version_gap <= MAX_GAP,
        "--version-gap must be at most {MAX_GAP}"
    );
    let dir = &args.data_dir;
    let existing = existing_entries(dir)?;
    if !existing.is_empty() && !args.force {
        bail!(
            "{} is not empty ({}): restore into a new or empty directory, or add --force to \
             move what is there into {}/.replaced-<time>/ (stop tufd first)",
            dir.display(),
            existing.join(", "),
            dir.display()
        );
    }
    let created = !dir.exists();
    files::create_private_dir(dir)?;
    let staging = dir.join(STAGING);
    let _ = std::fs::remove_dir_all(&staging);
    files::create_private_dir(&staging)?;
    let checked = stage(args, &staging).await;
    let manifest = match checked {
        Ok(m) => m,
        Err(e) => {
            // Refused: the data directory is left as it was (absent, if it was).
            let _ = std::fs::remove_dir_all(&staging);
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    let replaced = commit(dir, &staging, &existing)?;
    println!(
        "restored {} (taken {}, keyring epoch {}) into {}",
        args.from.display(),
        manifest.created,
        manifest.keyring_epoch,
        dir.display()
    );
    if let Some(old) = replaced {
        println!(
            "what was in {} is in {}: it holds keys; delete it once the restore is confirmed",
            dir.display(),
            old.display()
        );
    }
    Ok(())
}

/// Unpacks and checks the backup in `staging`.
async fn stage(args: &RestoreArgs, staging: &Path) -> anyhow::Result<Manifest> {
    let manifest = unpack(&args.from, staging)
        .with_context(|| format!("{} is not a usable tufd backup", args.from.display()))?;
    check_staged(args, staging, &manifest).await?;
    Ok(manifest)
}

/// Refuses a data directory where a restore stopped before its end.
pub fn check_not_interrupted(data_dir: &Path) -> anyhow::Result<()> {
    let staging = data_dir.join(STAGING);
    anyhow::ensure!(
        !staging.exists(),
        "{} exists: a restore was interrupted. Run the same `tufd restore ... --force` again",
        staging.display()
    );
    Ok(())
}

/// At start: after a restore, CI targets, snapshot and timestamp of every Factory are
/// published the recorded gap past their heads (each Factory in one transaction), then the
/// record goes. Interrupted, it runs again at the next start: a larger gap harms nothing.
pub async fn catch_up(state: &Shared) -> anyhow::Result<()> {
    let Some(gap) = state.db.setting(GAP_SETTING).await? else {
        return Ok(());
    };
    let gap: u64 = gap.parse().context("the recorded restore version gap")?;
    let factories: Vec<String> = sqlx::query_scalar("SELECT name FROM factories ORDER BY name")
        .fetch_all(state.db.pool())
        .await?;
    for factory in &factories {
        jump(state, factory, gap)
            .await
            .map_err(|e| anyhow::anyhow!("{factory}: {}: {}", e.error, e.detail))
            .context("publishing new versions after the restore")?;
        crate::announce::published(state, factory).await;
    }
    sqlx::query("DELETE FROM settings WHERE name = $1")
        .bind(GAP_SETTING)
        .execute(state.db.pool())
        .await?;
    tracing::info!(
        factories = factories.len(),
        gap,
        "restored store: timestamp, snapshot and CI targets re-signed past the backup's versions"
    );
    Ok(())
}

async fn jump(state: &Shared, factory: &str, gap: u64) -> ApiResult<()> {
    let mut tx = begin_locked(&state.db, factory).await?;
    let keys = OnlineKeys::load(&mut tx, state, factory).await?;
    let signing = Signing {
        factory,
        keys: &keys,
        periods: &state.periods,
        now: OffsetDateTime::now_utc(),
    };
    for flavour in Flavour::BOTH {
        let root = current_root(&mut tx, factory, flavour).await?;
        if flavour == Flavour::Ci {
            let head = require_head(&mut tx, factory, flavour, Role::Targets).await?;
            let mut t: Signed<Targets> = head.parse()?;
            t.signed.version = crate::repo::after(head.version, gap)?;
            t.signed.expires = signing.expires(Role::Targets)?;
            signing
                .publish_targets(&mut tx, flavour, &root.signed, t.signed)
                .await?;
        }
        signing
            .publish_snapshot(&mut tx, flavour, &root.signed, gap.max(1))
            .await?;
    }
    let detail = json!({"version_gap": gap});
    crate::audit::record(
        &mut tx,
        factory,
        signing.now_unix(),
        "tufd",
        "restore.versions",
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Entries of the data directory (none when it does not exist), a leftover staging
/// directory aside.
fn existing_entries(dir: &Path) -> anyhow::Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name != STAGING {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Unpacks the archive into `staging`, checking each entry against the manifest.
fn unpack(from: &Path, staging: &Path) -> anyhow::Result<Manifest> {
    let file = std::fs::File::open(from).with_context(|| format!("reading {}", from.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut entries = archive.entries()?;
    let first = entries.next().context("the archive is empty")??;
    let manifest = read_manifest(first)?;
    let mut expected = manifest.files.iter();
    for entry in entries {
        let entry = entry?;
        let name = entry_name(&entry)?;
        let Some(f) = expected.next() else {
            bail!("{name} is not in the manifest");
        };
        anyhow::ensure!(
            name == f.path,
            "found {name} where the manifest lists {}",
            f.path
        );
        anyhow::ensure!(
            entry.header().entry_type() == tar::EntryType::Regular && entry.size() == f.length,
            "{name} is not a regular file of {} bytes",
            f.length
        );
        let dest = staging.join(&f.path);
        if let Some(parent) = dest.parent() {
            files::create_private_dir(parent)?;
        }
        let mut reader = Hashing::new(entry);
        files::copy_new(&mut reader, &dest)?;
        let (read, sha) = reader.finish();
        anyhow::ensure!(
            read == f.length && sha == f.sha256,
            "{name} is damaged: its SHA-256 is {sha}, the manifest says {}",
            f.sha256
        );
    }
    if let Some(f) = expected.next() {
        bail!("the archive ends before {} (truncated?)", f.path);
    }
    Ok(manifest)
}

fn read_manifest(mut entry: tar::Entry<'_, impl std::io::Read>) -> anyhow::Result<Manifest> {
    use std::io::Read as _;
    anyhow::ensure!(
        entry_name(&entry)? == MANIFEST && entry.size() <= MAX_MANIFEST,
        "the archive does not start with a manifest of at most {MAX_MANIFEST} bytes"
    );
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    let m: Manifest = serde_json::from_slice(&bytes).context("the manifest")?;
    anyhow::ensure!(
        m.format == FORMAT,
        "format {:?} is not {FORMAT:?} (a newer tufd's backup?)",
        m.format
    );
    let mut seen = std::collections::BTreeSet::new();
    for f in &m.files {
        anyhow::ensure!(allowed(&f.path), "the manifest lists {:?}", f.path);
        anyhow::ensure!(seen.insert(&f.path), "the manifest lists {} twice", f.path);
    }
    for needed in [keyring::FILE, db::SQLITE_FILE] {
        anyhow::ensure!(seen.contains(&needed.to_owned()), "{needed} is missing");
    }
    Ok(m)
}

fn entry_name<R: std::io::Read>(entry: &tar::Entry<'_, R>) -> anyhow::Result<String> {
    let path = entry.path()?;
    let name = path.to_str().context("an entry name that is not UTF-8")?;
    name.strip_prefix(PREFIX)
        .map(str::to_owned)
        .with_context(|| format!("entry {name:?} is outside {PREFIX}"))
}

/// The names a backup may hold: nothing else can be written by a restore.
fn allowed(path: &str) -> bool {
    match path {
        keyring::FILE | server_key::FILE | "admin-token" | db::SQLITE_FILE => true,
        _ => path
            .strip_prefix("artifacts/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, sha)| artifact_path(sha).as_deref() == Some(path)),
    }
}

/// The staged store opens as one: integrity, schema, keyring, server key, artifacts. Then the
/// version gap is recorded in it.
async fn check_staged(args: &RestoreArgs, staging: &Path, m: &Manifest) -> anyhow::Result<()> {
    let path = staging.join(db::SQLITE_FILE);
    let db = Db::connect(&format!("sqlite://{}?mode=rw", path.display())).await?;
    let checked = check_db(args, staging, m, &db).await;
    db.pool().close().await;
    checked
}

async fn check_db(args: &RestoreArgs, staging: &Path, m: &Manifest, db: &Db) -> anyhow::Result<()> {
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(db.pool())
        .await?;
    anyhow::ensure!(integrity == "ok", "the database is damaged: {integrity}");
    anyhow::ensure!(
        m.migration <= db.newest_migration(),
        "the backup is of a newer tufd (migration {}; this tufd knows up to {}): restore it \
         with tufd {} or later",
        m.migration,
        db.newest_migration(),
        m.tufd_version
    );
    keyring::file_for(&staging.join(keyring::FILE), db).await?;
    let in_backup = m.files.iter().any(|f| f.path == server_key::FILE);
    let given = std::env::var_os("TUFD_SERVER_KEY").is_some() || args.server_key_file.is_some();
    if in_backup || given {
        let key = server_key::load(
            args.server_key_file.as_deref(),
            staging,
            crate::db::Backend::Sqlite,
        )?;
        server_key::check_existing(db, &key).await?;
    } else {
        println!(
            "the backup does not hold the server key: start tufd with the key this store was \
             created with (TUFD_SERVER_KEY or --server-key-file)"
        );
    }
    let names: Vec<String> = sqlx::query_scalar("SELECT DISTINCT sha256 FROM factory_artifacts")
        .fetch_all(db.pool())
        .await?;
    for sha in names {
        let path = artifact_path(&sha).with_context(|| format!("artifact {sha:?}"))?;
        anyhow::ensure!(
            m.files.iter().any(|f| f.path == path),
            "artifact {sha} is in the database but not in the backup"
        );
    }
    if args.version_gap > 0 {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(GAP_SETTING)
        .bind(args.version_gap.to_string())
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// Moves what was in `dir` aside (if anything) and the staged files into place; removing the
/// staging directory is the last step. Returns where the old contents went.
fn commit(dir: &Path, staging: &Path, existing: &[String]) -> anyhow::Result<Option<PathBuf>> {
    files::sync_tree(staging)?;
    let replaced = if existing.is_empty() {
        None
    } else {
        let aside = dir.join(format!(".replaced-{}", crate::db::now()));
        files::create_private_dir(&aside)?;
        for name in existing {
            std::fs::rename(dir.join(name), aside.join(name))
                .with_context(|| format!("moving {name} into {}", aside.display()))?;
        }
        Some(aside)
    };
    for e in std::fs::read_dir(staging)? {
        let name = e?.file_name();
        std::fs::rename(staging.join(&name), dir.join(&name))
            .with_context(|| format!("moving {} into place", name.to_string_lossy()))?;
    }
    files::sync_dir(&dir.join(STAGING))?;
    std::fs::remove_dir(staging).with_context(|| format!("removing {}", staging.display()))?;
    files::sync_dir(&dir.join(STAGING))?;
    Ok(replaced)
}

/// Where a restore unpacks; its presence means "not finished".
pub const STAGING: &str = ".restore-in-progress";
const GAP_SETTING: &str = "restore_version_gap";
const MAX_GAP: u64 = 1 << 40;
const MAX_MANIFEST: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_names_are_restored() {
        let sha = "ab".to_owned() + &"0".repeat(62);
        for ok in ["keyring", "server-key", "admin-token", "tufd.sqlite"] {
            assert!(allowed(ok), "{ok}");
        }
        assert!(allowed(&format!("artifacts/ab/{sha}")));
        for bad in [
            format!("artifacts/cd/{sha}"),
            format!("artifacts/ab/{sha}/x"),
            format!("artifacts/ab/../{sha}"),
            "artifacts/ab/AB".to_owned(),
            "../keyring".to_owned(),
            "/etc/passwd".to_owned(),
            "tmp/x".to_owned(),
            String::new(),
        ] {
            assert!(!allowed(&bad), "{bad}");
        }
    }
}
