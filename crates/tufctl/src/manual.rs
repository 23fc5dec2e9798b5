//! `tufctl completions bash|zsh|fish` and `tufctl man`: generated from the clap definitions
//! in `cli`, so they always match the commands.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use serde_json::json;

use crate::cli::{Cli, ShellArg};

/// Prints the completion script for `shell` (with `--json`: `{"shell", "script"}`).
pub fn completions(json: bool, shell: ShellArg) -> Result<()> {
    let (gen, name) = match shell {
        ShellArg::Bash => (clap_complete::Shell::Bash, "bash"),
        ShellArg::Zsh => (clap_complete::Shell::Zsh, "zsh"),
        ShellArg::Fish => (clap_complete::Shell::Fish, "fish"),
    };
    let mut script = Vec::new();
    clap_complete::generate(gen, &mut Cli::command(), "tufctl", &mut script);
    if json {
        let text = String::from_utf8_lossy(&script);
        crate::output::json(&json!({"shell": name, "script": text}));
    } else {
        crate::output::write_bytes(&script);
    }
    Ok(())
}

/// Prints the manual page of tufctl or of the command named by `words` (e.g. `keys status`),
/// or writes every page into `out_dir`.
pub fn man(json: bool, words: &[String], out_dir: Option<&Path>) -> Result<()> {
    if let Some(dir) = out_dir {
        return write_all(json, dir);
    }
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut cmd = &root;
    for w in words {
        cmd = match cmd.find_subcommand(w) {
            Some(sub) => sub,
            None => bail!(
                "`{}` has no command {w:?}; `tufctl {} --help` lists them",
                cmd.get_display_name().unwrap_or(cmd.get_name()),
                words.join(" ")
            ),
        };
    }
    let page = page_of(cmd.clone());
    let mut roff = Vec::new();
    page.render(&mut roff)
        .context("rendering the manual page")?;
    if json {
        let text = String::from_utf8_lossy(&roff);
        crate::output::json(&json!({"page": page.get_filename(), "roff": text}));
    } else {
        crate::output::write_bytes(&roff);
    }
    Ok(())
}

/// Writes `tufctl.1` and one page per command (`tufctl-keys-status.1`, ...) into `dir`.
fn write_all(json: bool, dir: &Path) -> Result<()> {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut todo = vec![root];
    while let Some(cmd) = todo.pop() {
        todo.extend(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
        let page = page_of(cmd);
        let path = page
            .generate_to(dir)
            .with_context(|| format!("writing a manual page into {}", dir.display()))?;
        written.push(path);
    }
    written.sort();
    if json {
        crate::output::json(&json!({ "written": written }));
    } else {
        outln!(
            "Wrote {} manual pages into {} (read one with `man -l {}`).",
            written.len(),
            dir.display(),
            dir.join("tufctl.1").display()
        );
    }
    Ok(())
}

/// The page of one command, its source naming tufctl and its version.
fn page_of(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .source(format!("tufctl {}", env!("CARGO_PKG_VERSION")))
        .manual("tuf-factory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_every_command() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tufctl", &mut script);
            let text = String::from_utf8(script).unwrap();
            for word in ["rotate-root", "prune", "completions", "--token-file"] {
                assert!(text.contains(word), "{shell}: {word} missing");
            }
        }
    }

    #[test]
    fn pages_for_every_command() {
        let dir = tempfile::tempdir().unwrap();
        write_all(false, dir.path()).unwrap();
        let status = std::fs::read_to_string(dir.path().join("tufctl-keys-status.1")).unwrap();
        assert!(status.starts_with(".ie"), "roff: {}", &status[..40]);
        assert!(status.contains("\\-\\-within"), "{status}");
        let top = std::fs::read_to_string(dir.path().join("tufctl.1")).unwrap();
        assert!(top.contains("Exit codes"), "{top}");
        assert!(dir.path().join("tufctl-targets-prune.1").exists());
    }
}
