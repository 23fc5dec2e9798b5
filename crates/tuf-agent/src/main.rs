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
use tuf_agent::{store, Limits, Updater, UpdaterConfig};

#[derive(Parser)]
#[command(
    name = "tuf-agent",
    version,
    about = "TUF device client of tuf-factory"
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
    /// JSON file with any of the keys metadata_url, metadata_dir, target_dir,
    /// target_base_url, hardware_id, tag, install_cmd; flags override it.
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
}

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
    let updater = || -> Result<Updater> {
        let metadata_url = metadata_url.clone().context("--metadata-url is required")?;
        Ok(Updater::new(UpdaterConfig {
            metadata_url,
            metadata_dir: metadata_dir.clone(),
            limits: Limits::default(),
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
            let mut updater = updater()?;
            update(
                &mut updater,
                &target_dir,
                &base,
                &hardware_id,
                tag.as_deref(),
                install_cmd.as_deref(),
            )
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

/// `update`: the newest target for this device, unless it is the one installed already.
fn update(
    updater: &mut Updater,
    target_dir: &Path,
    base: &str,
    hardware_id: &str,
    tag: Option<&str>,
    install_cmd: Option<&str>,
) -> Result<()> {
    updater.refresh().context("refresh failed")?;
    let newest = updater
        .newest_release(hardware_id, tag)
        .context("searching the targets roles")?;
    let Some(newest) = newest else {
        match tag {
            Some(tag) => bail!("no target for hardware id {hardware_id:?} with tag {tag:?}"),
            None => bail!("no target for hardware id {hardware_id:?}"),
        }
    };
    fs::create_dir_all(target_dir).with_context(|| format!("creating {}", target_dir.display()))?;
    let marker = target_dir.join(INSTALLED);
    let installed = fs::read_to_string(&marker).unwrap_or_default();
    let sha = newest
        .info
        .hashes
        .get("sha256")
        .cloned()
        .unwrap_or_default();
    let record = format!("{}\n{sha}\n", newest.path);
    if installed == record {
        println!("up to date: {}", newest.path);
        return Ok(());
    }
    let file = updater
        .download_target(&newest.path, &newest.info, target_dir, base)
        .with_context(|| format!("downloading target {:?}", newest.path))?;
    let Some(cmd) = install_cmd else {
        println!(
            "downloaded {} to {} (no --install-cmd given)",
            newest.path,
            file.display()
        );
        return Ok(());
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
    store::write_atomic(&marker, record.as_bytes())?;
    println!("installed {}", newest.path);
    Ok(())
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// Records which target the install command last succeeded with, beside the targets.
/// `+` is always percent-encoded in target file names, so no target can be stored as this.
const INSTALLED: &str = "+installed";

#[cfg(test)]
mod manual;
