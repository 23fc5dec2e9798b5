//! The server key: where it comes from, the check value that refuses a wrong one, and
//! `tufd rotate-server-key`.
//!
//! The key is the outer layer around every data key (crypto-shredding, `keyring`): a
//! database copy opens nothing without it. It comes from `TUFD_SERVER_KEY` (hex), else
//! `--server-key-file`, else (SQLite only) `<data-dir>/server-key`, created on first start.
//! Rotating it re-wraps the outer layer of every data key and the check value in one
//! transaction; with the default file, the new key waits in `server-key.new` until that
//! transaction has committed, and tufd refuses to start while that file exists.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use zeroize::Zeroizing;

use crate::db::{Backend, Db};
use crate::files;
use crate::vault::Vault;

/// The server key as [`load`] found it; a new one is written by [`Loaded::into_vault`].
pub struct Loaded {
    vault: Vault,
    /// A key generated for a new embedded store, and where it goes.
    new_file: Option<(PathBuf, Zeroizing<String>)>,
}

/// Reads the server key without writing anything (a new embedded store's key is generated in
/// memory). Replicas sharing PostgreSQL must share the key, so a generated file is refused
/// there.
pub fn load(file: Option<&Path>, data_dir: &Path, backend: Backend) -> anyhow::Result<Loaded> {
    let (vault, new_file) = match given(file)? {
        Some(v) => (v, None),
        None => {
            anyhow::ensure!(
                backend == Backend::Sqlite,
                "with --database-url, give the server key shared by all replicas in \
                 TUFD_SERVER_KEY (64 hex characters) or --server-key-file"
            );
            let path = data_dir.join(FILE);
            if path.exists() {
                (read(&path)?, None)
            } else {
                let hex = Vault::generate_hex()?;
                (Vault::from_hex(&hex)?, Some((path, hex)))
            }
        }
    };
    Ok(Loaded { vault, new_file })
}

impl Loaded {
    /// Writes a newly generated key to its file (0600, atomic) and returns the key.
    pub fn into_vault(self) -> anyhow::Result<Vault> {
        if let Some((path, hex)) = &self.new_file {
            files::write_secret(path, hex)?;
            tracing::info!(path = %path.display(), "created a new server key; back it up");
        }
        Ok(self.vault)
    }
}

/// The key given in `TUFD_SERVER_KEY` or `--server-key-file`, if any.
fn given(file: Option<&Path>) -> anyhow::Result<Option<Vault>> {
    if let Ok(hex_key) = std::env::var("TUFD_SERVER_KEY") {
        let hex_key = Zeroizing::new(hex_key);
        return Ok(Some(Vault::from_hex(&hex_key).context("TUFD_SERVER_KEY")?));
    }
    file.map(read).transpose()
}

fn read(path: &Path) -> anyhow::Result<Vault> {
    Vault::from_file(path).with_context(|| format!("reading the server key {}", path.display()))
}

/// Refuses to start with a server key other than the one the store was created with (it
/// could not open any stored key); a new store records a check value for this key.
pub async fn check(db: &Db, vault: &Vault) -> anyhow::Result<()> {
    let fresh = hex::encode(vault.seal(CHECK_AAD, CHECK_PLAINTEXT)?);
    let stored = db.setting_or_insert(CHECK_SETTING, &fresh).await?;
    opens(vault, &stored)
}

/// [`check`] on a store that exists, without writing: a store without a check value yet
/// passes.
pub async fn check_existing(db: &Db, key: &Loaded) -> anyhow::Result<()> {
    let Some(stored) = db.setting(CHECK_SETTING).await? else {
        return Ok(());
    };
    if let Some((path, _)) = &key.new_file {
        bail!(
            "this store was created with a server key, and {} is missing: restore that file \
             from your backup (or give the key in TUFD_SERVER_KEY or --server-key-file)",
            path.display()
        );
    }
    opens(&key.vault, &stored)
}

fn opens(vault: &Vault, stored: &str) -> anyhow::Result<()> {
    let sealed = hex::decode(stored).context("the stored server key check is not hex")?;
    vault.open(CHECK_AAD, &sealed).map_err(|_| {
        anyhow::anyhow!("the server key does not match the one this store was created with")
    })?;
    Ok(())
}

/// Refuses a data directory where a rotation stopped between its steps.
pub fn check_not_interrupted(data_dir: &Path) -> anyhow::Result<()> {
    let pending = data_dir.join(PENDING);
    anyhow::ensure!(
        !pending.exists(),
        "{} exists: a server key rotation was interrupted. Run `tufd rotate-server-key \
         --data-dir {}` again to finish it",
        pending.display(),
        data_dir.display()
    );
    Ok(())
}

/// `tufd rotate-server-key`.
#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    /// The data directory (the server key file and the SQLite store, unless
    /// --database-url).
    #[arg(long, env = "TUFD_DATA_DIR", default_value = "./tufd-data")]
    data_dir: PathBuf,
    /// The PostgreSQL store (every replica stopped).
    #[arg(long, env = "TUFD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The current key's file, when it is not `<data-dir>/server-key` (env TUFD_SERVER_KEY,
    /// hex, wins).
    #[arg(long, env = "TUFD_SERVER_KEY_FILE")]
    server_key_file: Option<PathBuf>,
    /// Where the new key goes (created 0600 if missing; an existing file is used as the new
    /// key). Required unless the current key is `<data-dir>/server-key`, which is then
    /// replaced.
    #[arg(long)]
    new_key_file: Option<PathBuf>,
}

/// Re-wraps every data key and the check value under a new server key, in one transaction.
pub async fn rotate(args: &RotateArgs) -> anyhow::Result<()> {
    files::restrict_umask();
    let default_file = args.data_dir.join(FILE);
    let external = std::env::var_os("TUFD_SERVER_KEY").is_some() || args.server_key_file.is_some();
    let new_path = match (&args.new_key_file, external) {
        (Some(p), _) => p.clone(),
        (None, false) => args.data_dir.join(PENDING),
        (None, true) => bail!(
            "the current key is not {}: name the new key's file with --new-key-file",
            default_file.display()
        ),
    };
    let old = match given(args.server_key_file.as_deref())? {
        Some(v) => v,
        None => read(&default_file)?,
    };
    let new = new_key(&new_path)?;
    let db = match &args.database_url {
        Some(url) => Db::connect(url).await?,
        None => {
            let path = args.data_dir.join(crate::db::SQLITE_FILE);
            anyhow::ensure!(path.exists(), "no tufd store at {}", path.display());
            Db::connect(&format!("sqlite://{}?mode=rw", path.display())).await?
        }
    };
    let stored = db
        .setting(CHECK_SETTING)
        .await?
        .context("this store has no server key check value: start tufd on it once first")?;
    if opens(&new, &stored).is_ok() {
        println!("the store is already under the new key (an earlier run committed)");
    } else {
        opens(&old, &stored)?;
        rewrap(&db, &old, &new).await?;
    }
    db.pool().close().await;
    if args.new_key_file.is_none() {
        std::fs::rename(&new_path, &default_file)
            .with_context(|| format!("replacing {}", default_file.display()))?;
        files::sync_dir(&default_file)?;
        println!("the server key in {} is new", default_file.display());
    } else {
        println!(
            "the store is under the key in {}: start every tufd of the store with it",
            new_path.display()
        );
    }
    Ok(())
}

/// The new key: the file's if it exists, else a new one written there (0600, created new).
fn new_key(path: &Path) -> anyhow::Result<Vault> {
    if path.exists() {
        return read(path);
    }
    let hex = Vault::generate_hex()?;
    let text = Zeroizing::new(format!("{}\n", hex.as_str()));
    files::write_new(path, text.as_bytes())?;
    Ok(Vault::from_hex(&hex)?)
}

async fn rewrap(db: &Db, old: &Vault, new: &Vault) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    // Rows an older tufd sealed under the server key alone; a start reseals them.
    let legacy: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM online_keys WHERE data_key IS NULL AND token_ref IS NULL \
         AND public_key IS NULL) + (SELECT COUNT(*) FROM credentials \
         WHERE body IS NOT NULL AND data_key IS NULL)",
    )
    .fetch_one(&mut *tx)
    .await?;
    anyhow::ensure!(
        legacy == 0,
        "{legacy} secrets were sealed by an older tufd: start this tufd on the store once \
         (it seals them under data keys), stop it, then rotate"
    );
    let n = crate::keyring::rewrap_server_layer(&mut tx, old, new).await?;
    let fresh = hex::encode(new.seal(CHECK_AAD, CHECK_PLAINTEXT)?);
    sqlx::query("UPDATE settings SET value = $1 WHERE name = $2")
        .bind(fresh)
        .bind(CHECK_SETTING)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    println!("re-wrapped {n} data keys under the new server key");
    Ok(())
}

/// The server key's file in the data directory (embedded store).
pub const FILE: &str = "server-key";
/// The new key during a rotation of [`FILE`].
pub const PENDING: &str = "server-key.new";

const CHECK_SETTING: &str = "server_key_check";
const CHECK_AAD: &str = "tufd server key check";
const CHECK_PLAINTEXT: &[u8] = b"tufd";
