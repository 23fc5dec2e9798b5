//! `tufctl`: the operator CLI. Factory bootstrap, the offline keys file, root updates,
//! targets and waves. Every command exits 0 on success; otherwise it prints one paragraph
//! saying what failed and what to do next (or, with `--json`, a JSON error on standard
//! error) and exits with the code of the failure's kind (`outcome`).

// The doc comments of the commands and options are clap's `--help` text, written for a
// terminal (`<key name>.sec`, `https://...`), not for rustdoc's Markdown.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

#[macro_use]
mod output;

mod active;
mod backup;
mod catalogue;
mod cli;
mod client;
mod config;
mod creds;
mod crypt;
mod document;
mod export;
mod hardware;
mod keygen;
mod keys;
mod login;
mod manual;
mod outcome;
mod progress;
mod render;
mod renew;
mod rotation;
mod server;
mod settings;
mod shares;
mod sign;
mod status;
mod targets;
mod tokens;
mod updates;
mod upload;
mod waves;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{
    Cli, Command, FactoryCommand, Global, KeysCommand, TargetsCommand, TokensCommand, TufCommand,
    WavesCommand,
};
use crate::settings::Settings;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return outcome::usage(e, outcome::wants_json(&args)),
    };
    let json = cli.global.json;
    output::init(json);
    progress::init(json);
    let result = run(cli);
    let code = match &result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => outcome::report(e, json),
    };
    match (output::write_failure(), result) {
        (Some(w), Ok(())) => outcome::report(&anyhow::anyhow!(w), json),
        _ => code,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.global.json;
    match cli.command {
        // Offline: no server, token, Factory or config file settings; only what opens the
        // keys (passphrase, token module and PIN).
        command @ Command::Sign { .. } => {
            let global = Global {
                json,
                passphrase_file: cli.global.passphrase_file,
                pkcs11: cli.global.pkcs11,
                pin_file: cli.global.pin_file,
                ..Global::default()
            };
            dispatch(&Settings::offline(global), command)
        }
        // Completions and manual pages need no settings (and work without a config file).
        Command::Completions { shell } => manual::completions(json, shell),
        Command::Man { command, out_dir } => manual::man(json, &command, out_dir.as_deref()),
        command => dispatch(&Settings::new(cli.global)?, command),
    }
}

fn dispatch(s: &Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Sign {
            request,
            creds,
            out,
            yes,
            qr,
        } => sign::sign(
            s,
            &sign::SignArgs {
                request,
                creds,
                out,
                yes,
                qr,
            },
        ),
        Command::Factory {
            command: FactoryCommand::Create { name, out },
        } => keys::factory_create(s, &name, out.as_deref()),
        Command::Get { path } => keys::get(s, &path),
        Command::Login => login::login(s),
        Command::Keys { command } => keys_command(s, command),
        Command::Targets { command } => match command {
            TargetsCommand::Add(args) => upload::add(s, &args),
            TargetsCommand::List { filter, prod } => targets::list(s, &filter, prod),
            TargetsCommand::Show { targets, prod } => targets::show(s, &targets, prod),
            TargetsCommand::Tag {
                targets,
                tags,
                append,
                remove,
            } => targets::tag(s, &targets, &tags, targets::TagMode::of(append, remove)),
            TargetsCommand::Prune(args) => targets::prune(s, &args),
        },
        Command::Tokens { command } => match command {
            TokensCommand::List => tokens::list(s),
            TokensCommand::Create { scope } => tokens::create(s, &scope),
            TokensCommand::Revoke {
                id,
                all,
                keep_current,
            } => tokens::revoke(s, id.as_deref(), all, keep_current),
        },
        Command::Waves { command } => waves_command(s, command),
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

/// `keys ...`: the commands that change roots here, the rest in [`keys_file_command`].
fn keys_command(s: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::RotateRoot {
            key_type,
            slot,
            owner,
            cancel_open,
            creds,
        } => rotation::rotate_root(
            s,
            &creds,
            rotation::Options {
                key_type,
                slot,
                owner,
                cancel_open,
            },
        ),
        KeysCommand::RotateTargets {
            key_type,
            slot,
            owner,
            cancel_open,
            creds,
        } => rotation::rotate_targets(
            s,
            &creds,
            rotation::Options {
                key_type,
                slot,
                owner,
                cancel_open,
            },
        ),
        KeysCommand::RotateOnline {
            roles,
            key_type,
            cancel_open,
            creds,
        } => rotation::rotate_online(s, &creds, &roles, key_type, cancel_open),
        KeysCommand::ResignRoot {
            creds,
            expires_days,
            export,
            cancel_open,
        } => renew::resign_root(
            s,
            &creds,
            &renew::Renewal {
                expires_days,
                export: export.as_deref(),
                cancel_open,
            },
        ),
        KeysCommand::Tuf {
            command: TufCommand::Updates { command },
        } => updates::run(s, command),
        other => keys_file_command(s, other),
    }
}

/// `keys ...` that work on the credentials file (and read the server at most).
fn keys_file_command(s: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Download { url, out, encrypt } => keys::download(s, &url, &out, encrypt),
        KeysCommand::Encrypt { creds } => crypt::encrypt(s, &creds),
        KeysCommand::Decrypt { creds } => crypt::decrypt(s, &creds),
        KeysCommand::ExportRoot { creds, out } => export::export_root(s, &creds, out.as_deref()),
        KeysCommand::CopyTargets { creds, out } => keys::copy_targets(s, &creds, &out),
        KeysCommand::Backup {
            creds,
            shares,
            threshold,
            out,
            include_targets,
        } => backup::backup(
            s,
            &backup::BackupArgs {
                creds,
                shares,
                threshold,
                out,
                include_targets,
            },
        ),
        KeysCommand::Restore {
            shares,
            out,
            factory_check,
            encrypt,
        } => backup::restore(
            s,
            &backup::RestoreArgs {
                shares,
                out,
                factory_check,
                encrypt,
            },
        ),
        KeysCommand::ShowRoot { prod } => keys::show_root(s, prod),
        KeysCommand::Status {
            creds,
            check,
            within,
        } => status::status(s, &creds, status::Expiry { check, within }),
        KeysCommand::Generate {
            creds,
            role,
            key_type,
            slot,
            owner,
            out,
        } => keygen::generate(s, &creds, &role, key_type, slot.as_deref(), owner, &out),
        // Every other command is dispatched by `keys_command` before it gets here.
        _ => Err(anyhow::anyhow!(
            "this keys command is dispatched by keys_command"
        )),
    }
}

fn waves_command(s: &Settings, command: WavesCommand) -> anyhow::Result<()> {
    match command {
        WavesCommand::Init {
            creds,
            wave,
            version,
            tag,
            expires_days,
            export,
            retire_versions,
            retire_targets,
        } => {
            let release = waves::Release {
                wave: &wave,
                version: &version,
                tag: &tag,
                expires_days,
                retire: tuf_ceremony::wave::Retire {
                    versions: retire_versions,
                    targets: retire_targets,
                },
            };
            match (export, creds) {
                (Some(out), creds) => waves::export(s, creds.as_deref(), &release, &out),
                (None, Some(creds)) => waves::init(s, &creds, &release),
                (None, None) => Err(anyhow::anyhow!(
                    "waves init needs -k TARGETS-ONLY.tgz (or --export REQUEST.json)"
                )),
            }
        }
        WavesCommand::Import { response, request } => {
            waves::import(s, &response, request.as_deref())
        }
        WavesCommand::Resign {
            creds,
            wave,
            expires_days,
        } => waves::resign(s, &creds, &wave, expires_days),
        WavesCommand::Complete { wave } => waves::action(s, &wave, "complete"),
        WavesCommand::Cancel { wave } => waves::action(s, &wave, "cancel"),
        WavesCommand::List => waves::list(s),
        WavesCommand::Show {
            wave,
            hardware_id,
            tag,
        } => waves::show(s, &wave, hardware_id.as_deref(), tag.as_deref()),
    }
}
