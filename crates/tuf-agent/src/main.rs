//! `tuf-agent`: the device client. Speaks the TUF conformance-suite client protocol
//! (`init`, `refresh`, `download`) and updates real devices (`update`).
//!
//! Exit status: 0 on success, exactly 1 on any failure, usage errors and panics included.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::Deserialize;
use tuf_agent::installed::Installed;
use tuf_agent::{store, Limits, TlsOptions, Updater, UpdaterConfig};

#[derive(Parser)]
#[command(
    name = "tuf-agent",
    version = VERSION,
    about = "TUF device client of tuf-factory",
    after_help = "`update` installs the newest release: numeric versions compare as numbers, \
                  semantic versions by SemVer precedence, anything else is refused \
                  (`tuf-agent update --help` says more).\n\
                  Proxies: HTTPS_PROXY for https URLs, HTTP_PROXY for http URLs, ALL_PROXY \
                  for either, NO_PROXY for hosts reached directly (lower-case names too)."
)]
struct Cli {
    /// Base URL of the repository metadata (e.g. https://host/repo/FACTORY/prod/metadata/).
    #[arg(long, global = true)]
    metadata_url: Option<String>,
    /// Directory of the trusted metadata.
    #[arg(long, global = true)]
    metadata_dir: Option<PathBuf>,
    /// Target path to download (repeatable).
    #[arg(long = "target-name", global = true)]
    target_names: Vec<String>,
    /// Directory downloaded targets are stored in.
    #[arg(long, global = true)]
    target_dir: Option<PathBuf>,
    /// Base URL of the target files.
    #[arg(long, global = true)]
    target_base_url: Option<String>,
    /// Hardware ID of this device (`update`).
    #[arg(long, global = true)]
    hardware_id: Option<String>,
    /// Only install targets carrying this tag (`update`).
    #[arg(long, global = true)]
    tag: Option<String>,
    /// Command run with the verified target file as its argument (`update`).
    #[arg(long, global = true)]
    install_cmd: Option<String>,
    /// Keep the N newest target files `update` wrote in --target-dir and remove older ones
    /// (`update`; never the current target, never files `update` did not write).
    #[arg(long, global = true, value_name = "N")]
    keep: Option<usize>,
    /// The most bytes of snapshot or targets metadata read, even when the repository lists
    /// a larger length (default 33554432, 32 MiB): a device's memory bound. A length the
    /// repository lists below it is the bound.
    #[arg(long, global = true, value_name = "BYTES")]
    max_metadata_bytes: Option<u64>,
    /// PEM file of the certificate authorities to trust for https URLs, instead of the
    /// bundled web PKI roots (a private CA).
    #[arg(long, global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first) to show servers that ask for one (mTLS).
    #[arg(long, global = true, value_name = "PEM", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert (PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(long, global = true, value_name = "PEM", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// JSON file with any of the keys metadata_url, metadata_dir, target_dir,
    /// target_base_url, hardware_id, tag, install_cmd, keep, max_metadata_bytes, ca_file,
    /// client_cert, client_key; flags override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trust TRUSTED_ROOT_FILE: copy it into the metadata directory as root.json.
    Init {
        /// The root.json this device trusts first (e.g. version 1 of the repository's root).
        trusted_root: PathBuf,
    },
    /// Update the trusted metadata from the repository.
    Refresh,
    /// Refresh, then download and verify every --target-name into --target-dir.
    Download,
    /// Refresh, pick the newest target for this device, download, verify and install it.
    ///
    /// Release order: versions made of digits only compare as numbers (10 is newer than 9);
    /// semantic versions (MAJOR.MINOR.PATCH[-PRE][+BUILD]) by SemVer precedence (1.10.0 is
    /// newer than 1.9.0, 1.0.0-rc.1 older than 1.0.0, build metadata ignored). All candidates
    /// must use one of the two schemes: any other version, or the two mixed, is refused.
    /// Equal versions: the greater version string (byte order) wins, then the greater
    /// target path.
    #[command(verbatim_doc_comment)]
    Update,
}

/// The `--config` file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    metadata_url: Option<String>,
    metadata_dir: Option<PathBuf>,
    target_dir: Option<PathBuf>,
    target_base_url: Option<String>,
    hardware_id: Option<String>,
    tag: Option<String>,
    install_cmd: Option<String>,
    keep: Option<usize>,
    max_metadata_bytes: Option<u64>,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

/// The version, and which crypto the build verifies signatures and speaks TLS with.
#[cfg(feature = "pure-rust")]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (crypto: RustCrypto)");
#[cfg(not(feature = "pure-rust"))]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (crypto: aws-lc-rs)");

fn main() -> ExitCode {
    // A panic is a failure like any other: exit status 1, never 101.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("tuf-agent: internal error: {info}");
        std::process::exit(1);
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(1);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuf-agent: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let file = match &cli.config {
        Some(path) => {
            let text =
                fs::read(path).with_context(|| format!("reading config {}", path.display()))?;
            serde_json::from_slice::<ConfigFile>(&text)
                .with_context(|| format!("parsing config {}", path.display()))?
        }
        None => ConfigFile::default(),
    };
    let metadata_dir = cli
        .metadata_dir
        .clone()
        .or(file.metadata_dir)
        .context("--metadata-dir is required")?;
    let metadata_url = cli.metadata_url.clone().or(file.metadata_url);
    let tls = TlsOptions {
        ca_file: cli.ca_file.clone().or(file.ca_file),
        client_cert: cli.client_cert.clone().or(file.client_cert),
        client_key: cli.client_key.clone().or(file.client_key),
    };
    let mut limits = Limits::default();
    if let Some(max) = cli.max_metadata_bytes.or(file.max_metadata_bytes) {
        anyhow::ensure!(
            max >= 1024,
            "--max-metadata-bytes is {max}; give at least 1024 (metadata is never smaller)"
        );
        limits.snapshot_max = max;
        limits.targets_max = max;
    }
    let updater = || -> Result<Updater> {
        let metadata_url = metadata_url.clone().context("--metadata-url is required")?;
        Ok(Updater::new(UpdaterConfig {
            metadata_url,
            metadata_dir: metadata_dir.clone(),
            limits: limits.clone(),
            tls: tls.clone(),
        })?)
    };
    match cli.command {
        Command::Init { trusted_root } => init(&metadata_dir, &trusted_root),
        Command::Refresh => {
            updater()?.refresh().context("refresh failed")?;
            Ok(())
        }
        Command::Download => {
            let target_dir = cli
                .target_dir
                .or(file.target_dir)
                .context("--target-dir is required")?;
            let base = cli
                .target_base_url
                .or(file.target_base_url)
                .context("--target-base-url is required")?;
            let mut updater = updater()?;
            updater.refresh().context("refresh failed")?;
            fs::create_dir_all(&target_dir)
                .with_context(|| format!("creating {}", target_dir.display()))?;
            for name in &cli.target_names {
                let info = updater
                    .target_info(name)
                    .with_context(|| format!("looking up target {name:?}"))?
                    .ok_or_else(|| tuf_agent::Error::TargetNotFound(name.clone()))?;
                updater
                    .download_target(name, &info, &target_dir, &base)
                    .with_context(|| format!("downloading target {name:?}"))?;
            }
            Ok(())
        }
        Command::Update => {
            let target_dir = cli
                .target_dir
                .or(file.target_dir)
                .context("--target-dir is required")?;
            let base = cli
                .target_base_url
                .or(file.target_base_url)
                .context("--target-base-url is required")?;
            let hardware_id = cli
                .hardware_id
                .or(file.hardware_id)
                .context("--hardware-id is required")?;
            let tag = cli.tag.or(file.tag);
            let install_cmd = cli.install_cmd.or(file.install_cmd);
            let keep = cli.keep.or(file.keep);
            if keep == Some(0) {
                bail!("--keep must be at least 1 (the target just installed always stays)");
            }
            let mut updater = updater()?;
            let args = UpdateArgs {
                target_dir: &target_dir,
                base: &base,
                hardware_id: &hardware_id,
                tag: tag.as_deref(),
                install_cmd: install_cmd.as_deref(),
                keep,
            };
            update(&mut updater, &args)
        }
    }
}

/// `init`: no request, just a copy of the trusted root, written atomically.
fn init(metadata_dir: &Path, trusted_root: &Path) -> Result<()> {
    let bytes = fs::read(trusted_root)
        .with_context(|| format!("reading trusted root {}", trusted_root.display()))?;
    tuf_core::Signed::<tuf_core::Root>::from_slice(&bytes)
        .with_context(|| format!("{} is not a root.json", trusted_root.display()))?;
    fs::create_dir_all(metadata_dir)
        .with_context(|| format!("creating {}", metadata_dir.display()))?;
    store::write_atomic(&metadata_dir.join("root.json"), &bytes)?;
    Ok(())
}

/// What `update` needs besides the updater.
struct UpdateArgs<'a> {
    target_dir: &'a Path,
    base: &'a str,
    hardware_id: &'a str,
    tag: Option<&'a str>,
    install_cmd: Option<&'a str>,
    keep: Option<usize>,
}

/// `update`: the newest target for this device, unless it is the one installed already.
fn update(updater: &mut Updater, args: &UpdateArgs<'_>) -> Result<()> {
    updater.refresh().context("refresh failed")?;
    let newest = updater
        .newest_release(args.hardware_id, args.tag)
        .context("searching the targets roles")?;
    let Some(newest) = newest else {
        match args.tag {
            Some(tag) => bail!(
                "no target for hardware id {:?} with tag {tag:?}",
                args.hardware_id
            ),
            None => bail!("no target for hardware id {:?}", args.hardware_id),
        }
    };
    let target_dir = args.target_dir;
    fs::create_dir_all(target_dir).with_context(|| format!("creating {}", target_dir.display()))?;
    let installed = Installed::new(target_dir);
    let sha = newest.info.hashes.get("sha256").map_or("", String::as_str);
    let record = Installed::record(&newest.path, sha);
    if installed.is_current(&record) {
        println!("up to date: {}", newest.path);
        let local = tuf_agent::artifact::local_path(target_dir, &newest.path)?;
        return prune(&installed, args.keep, &local);
    }
    let file = updater
        .download_target(&newest.path, &newest.info, target_dir, args.base)
        .with_context(|| format!("downloading target {:?}", newest.path))?;
    installed.note_written(&file)?;
    let Some(cmd) = args.install_cmd else {
        println!(
            "downloaded {} to {} (no --install-cmd given)",
            newest.path,
            file.display()
        );
        return prune(&installed, args.keep, &file);
    };
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{cmd} \"$1\""))
        .arg("tuf-agent")
        .arg(&file)
        .env("TUF_AGENT_TARGET_FILE", &file)
        .status()
        .with_context(|| format!("running install command {cmd:?}"))?;
    if !status.success() {
        bail!(
            "install command {cmd:?} failed ({status}) for {}",
            newest.path
        );
    }
    installed.set_current(&record)?;
    println!("installed {}", newest.path);
    prune(&installed, args.keep, &file)
}

/// `--keep N`: the N newest target files `update` wrote stay, `current` among them.
fn prune(installed: &Installed, keep: Option<usize>, current: &Path) -> Result<()> {
    let Some(keep) = keep else {
        return Ok(());
    };
    for name in installed.prune(keep, current)? {
        println!("removed old target file {name}");
    }
    Ok(())
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

#[cfg(test)]
mod manual;
