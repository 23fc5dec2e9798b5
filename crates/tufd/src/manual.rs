//! The manual page of `tufd`, generated from its clap definitions when the tests run:
//! `cargo test -p tufd --bin tufd manual` writes `target/man/tufd.1` (and a page per
//! command), read with `man -l target/man/tufd.1`. Fails when an option lacks help text.

use std::path::PathBuf;

use clap::CommandFactory;

#[test]
fn manual_page() {
    let cmd = super::Args::command();
    let mut missing = Vec::new();
    undocumented(&cmd, "tufd", &mut missing);
    assert!(missing.is_empty(), "undocumented: {missing:?}");
    let dir = target_dir().join("man");
    std::fs::create_dir_all(&dir).unwrap();
    clap_mangen::generate_to(cmd.clone(), &dir).unwrap();
    let page = std::fs::read_to_string(dir.join("tufd.1")).unwrap();
    assert!(
        page.starts_with(".ie") && page.contains(".SH NAME"),
        "{page}"
    );
    for arg in cmd.get_arguments().filter(|a| a.get_long().is_some()) {
        let flag = format!("\\-\\-{}", arg.get_long().unwrap().replace('-', "\\-"));
        assert!(page.contains(&flag), "{flag} missing from the page");
    }
}

fn undocumented(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let builtin = matches!(arg.get_id().as_str(), "help" | "version");
        if !builtin && arg.get_help().is_none() {
            missing.push(format!("{path} {}", arg.get_id()));
        }
    }
    for sub in cmd.get_subcommands() {
        undocumented(sub, &format!("{path} {}", sub.get_name()), missing);
    }
}

/// Where cargo builds: `CARGO_TARGET_DIR`, else the workspace's `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}
