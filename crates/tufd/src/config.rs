//! `tufd --config FILE`: the server's settings in a TOML file.
//!
//! Keys are the long options with `_` for `-` (`listen`, `data_dir`, `tls_cert`, ...), values
//! strings or integers. Precedence, highest first: the command line, then the `TUFD_*`
//! environment, then the file, then the built-in defaults. The file's settings are checked
//! with the options' own parsers and then placed in front of the command line (an option
//! given twice takes its last value, so the command line wins); a key whose environment
//! variable is set is left out, so the environment wins too. Unknown keys are refused by name.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::CommandFactory;

/// Parses the command line of `C`, with the settings of the config file (`--config FILE` or
/// `TUFD_CONFIG`) applied below the command line and the environment. Usage errors exit the
/// process with clap's message, as `C::parse()` would.
pub fn parse<C: CommandFactory + clap::FromArgMatches>() -> anyhow::Result<C> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let Some(file) = config_path(&argv) else {
        return Ok(matches::<C>(&argv));
    };
    let settings = read(&file, &C::command())?;
    let mut merged = Vec::with_capacity(argv.len() + settings.len());
    merged.extend(argv.first().cloned());
    merged.extend(settings);
    merged.extend(argv.into_iter().skip(1));
    Ok(matches::<C>(&merged))
}

/// The config file named on the command line (`--config F`, `--config=F`), else in
/// `TUFD_CONFIG`. Found before parsing: the file may hold what the command line needs (the
/// `--tls-key` of a `--tls-cert`).
fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("TUFD_CONFIG").map(PathBuf::from)
}

fn matches<C: CommandFactory + clap::FromArgMatches>(argv: &[OsString]) -> C {
    let cmd = C::command().args_override_self(true);
    let parsed = cmd
        .try_get_matches_from(argv)
        .and_then(|m| C::from_arg_matches(&m));
    parsed.unwrap_or_else(|e| e.exit())
}

/// The file's settings as `--option=value` arguments, each checked by its option's parser.
pub fn read(file: &Path, cmd: &clap::Command) -> anyhow::Result<Vec<OsString>> {
    let text = read_capped(file)?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", file.display()))?;
    let mut out = Vec::with_capacity(table.len());
    for (key, value) in &table {
        let Some(arg) = setting(cmd, key) else {
            bail!(
                "{}: unknown key `{key}` (keys are the long options with `_`: {})",
                file.display(),
                keys(cmd).join(", ")
            );
        };
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            other => bail!(
                "{}: `{key}` must be a string or an integer, not a {}",
                file.display(),
                other.type_str()
            ),
        };
        let long = arg.get_long().unwrap_or(key);
        check_value(arg, &value).map_err(|e| {
            let why = e.to_string();
            let why = why
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            anyhow::anyhow!("{}: `{key}` = {value:?}: {why}", file.display())
        })?;
        let overridden = arg.get_env().is_some_and(|v| std::env::var_os(v).is_some());
        if !overridden {
            out.push(OsString::from(format!("--{long}={value}")));
        }
    }
    Ok(out)
}

/// The value checked by the option's own parser (numbers, enums, paths), on its own.
fn check_value(arg: &clap::Arg, value: &str) -> Result<(), clap::Error> {
    let probe = clap::Command::new("tufd")
        .no_binary_name(true)
        .arg(clap::Arg::new("value").value_parser(arg.get_value_parser().clone()));
    probe.try_get_matches_from([OsStr::new(value)]).map(|_| ())
}

/// The option a config key names: one that takes a value, other than `config` itself.
fn setting<'a>(cmd: &'a clap::Command, key: &str) -> Option<&'a clap::Arg> {
    cmd.get_arguments()
        .filter(|a| a.get_action().takes_values() && !a.is_positional())
        .find(|a| a.get_long().map(|l| l.replace('-', "_")).as_deref() == Some(key))
        .filter(|a| a.get_id() != "config")
}

/// Every key a config file may hold, in the order of `--help`.
pub fn keys(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| a.get_action().takes_values() && !a.is_positional())
        .filter(|a| a.get_id() != "config")
        .filter_map(|a| a.get_long().map(|l| l.replace('-', "_")))
        .collect()
}

fn read_capped(file: &Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let f = std::fs::File::open(file)
        .with_context(|| format!("reading the config file {}", file.display()))?;
    let mut text = String::new();
    f.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading the config file {}", file.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_BYTES,
        "{} is larger than {MAX_BYTES} bytes: not a tufd config file",
        file.display()
    );
    Ok(text)
}

/// A config file is a few lines; anything this large is the wrong file.
const MAX_BYTES: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Demo {
        #[arg(long, env = "TUFD_TEST_CONFIG_DEMO_LISTEN", default_value = "a")]
        listen: String,
        #[arg(long, default_value_t = 1)]
        max_connections: usize,
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    }

    fn settings(text: &str) -> anyhow::Result<Vec<OsString>> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tufd.toml");
        std::fs::write(&file, text).unwrap();
        read(&file, &Demo::command())
    }

    #[test]
    fn keys_are_the_long_options_with_underscores() {
        let got = settings("listen = \"0.0.0.0:1\"\nmax_connections = 5\n").unwrap();
        assert_eq!(got, ["--listen=0.0.0.0:1", "--max-connections=5"]);
        assert_eq!(keys(&Demo::command()), ["listen", "max_connections"]);
    }

    #[test]
    fn unknown_keys_and_wrong_values_are_refused_by_name() {
        let e = settings("max-connections = 5").unwrap_err().to_string();
        assert!(e.contains("unknown key `max-connections`"), "{e}");
        let e = settings("config = \"x\"").unwrap_err().to_string();
        assert!(e.contains("unknown key `config`"), "{e}");
        let e = settings("max_connections = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`max_connections` = \"many\""), "{e}");
        let e = settings("listen = 1.5").unwrap_err().to_string();
        assert!(
            e.contains("must be a string or an integer, not a float"),
            "{e}"
        );
        let e = settings("[listen]\nx = 1").unwrap_err().to_string();
        assert!(e.contains("not a table"), "{e}");
        assert!(settings("listen = ").is_err());
    }
}
