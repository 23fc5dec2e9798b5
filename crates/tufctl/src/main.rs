//! `tufctl`: the operator CLI. Factory bootstrap, the offline keys file, root updates,
//! targets and waves. Every command exits 0 on success; otherwise it prints one paragraph
//! saying what failed and what to do next, and exits 1.

mod backup;
mod cli;
mod client;
mod creds;
mod crypt;
mod document;
mod export;
mod hardware;
mod keygen;
mod keys;
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
mod waves;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{
    Cli, Command, FactoryCommand, Global, KeysCommand, TargetsCommand, TokensCommand, TufCommand,
    WavesCommand,
};
use crate::settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", settings::paragraph(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = if matches!(cli.command, Command::Sign { .. }) {
        // Offline: no server, token, Factory or config file settings; only what opens the
        // keys (passphrase, token module and PIN).
        Global {
            json: cli.global.json,
            passphrase_file: cli.global.passphrase_file,
            pkcs11: cli.global.pkcs11,
            pin_file: cli.global.pin_file,
            ..Global::default()
        }
    } else {
        cli.global
    };
    let s = Settings::new(global)?;
    match cli.command {
        Command::Sign {
            request,
            creds,
            out,
            yes,
            qr,
        } => sign::sign(
            &s,
            &sign::SignArgs {
                request,
                creds,
                out,
                yes,
                qr,
            },
        ),
        Command::Factory {
            command: FactoryCommand::Create { name },
        } => keys::factory_create(&s, &name),
        Command::Get { path } => keys::get(&s, &path),
        Command::Keys { command } => match command {
            KeysCommand::Download { url, out, encrypt } => keys::download(&s, &url, &out, encrypt),
            KeysCommand::Encrypt { creds } => crypt::encrypt(&s, &creds),
            KeysCommand::Decrypt { creds } => crypt::decrypt(&s, &creds),
            KeysCommand::ExportRoot { creds, out } => {
                export::export_root(&s, &creds, out.as_deref())
            }
            KeysCommand::RotateRoot {
                key_type,
                slot,
                owner,
                cancel_open,
                creds,
            } => rotation::rotate_root(
                &s,
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
                &s,
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
            } => rotation::rotate_online(&s, &creds, &roles, key_type, cancel_open),
            KeysCommand::CopyTargets { creds, out } => keys::copy_targets(&s, &creds, &out),
            KeysCommand::Backup {
                creds,
                shares,
                threshold,
                out,
                include_targets,
            } => backup::backup(
                &s,
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
                &s,
                &backup::RestoreArgs {
                    shares,
                    out,
                    factory_check,
                    encrypt,
                },
            ),
            KeysCommand::ShowRoot { prod } => keys::show_root(&s, prod),
            KeysCommand::Status { creds } => status::status(&s, &creds),
            KeysCommand::Generate {
                creds,
                role,
                key_type,
                slot,
                owner,
                out,
            } => keygen::generate(&s, &creds, &role, key_type, slot.as_deref(), owner, &out),
            KeysCommand::ResignRoot {
                creds,
                expires_days,
                export,
                cancel_open,
            } => renew::resign_root(
                &s,
                &creds,
                &renew::Renewal {
                    expires_days,
                    export: export.as_deref(),
                    cancel_open,
                },
            ),
            KeysCommand::Tuf {
                command: TufCommand::Updates { command },
            } => updates::run(&s, command),
        },
        Command::Targets {
            command: TargetsCommand::Add(args),
        } => targets::add(&s, &args),
        Command::Tokens { command } => match command {
            TokensCommand::List => tokens::list(&s),
            TokensCommand::Create { scope } => tokens::create(&s, &scope),
            TokensCommand::Revoke {
                id,
                all,
                keep_current,
            } => tokens::revoke(&s, id.as_deref(), all, keep_current),
        },
        Command::Waves { command } => match command {
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
                    (Some(out), creds) => waves::export(&s, creds.as_deref(), &release, &out),
                    (None, Some(creds)) => waves::init(&s, &creds, &release),
                    (None, None) => Err(anyhow::anyhow!(
                        "waves init needs -k TARGETS-ONLY.tgz (or --export REQUEST.json)"
                    )),
                }
            }
            WavesCommand::Import { response, request } => {
                waves::import(&s, &response, request.as_deref())
            }
            WavesCommand::Resign {
                creds,
                wave,
                expires_days,
            } => waves::resign(&s, &creds, &wave, expires_days),
            WavesCommand::Complete { wave } => waves::action(&s, &wave, "complete"),
            WavesCommand::Cancel { wave } => waves::action(&s, &wave, "cancel"),
            WavesCommand::List => waves::list(&s),
        },
    }
}
