//! `tufctl login`: checks a token with the server and stores it for that server and Factory
//! (`config::store_token`, 0600), so later commands need no token on their command line.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};
use serde_json::json;
use zeroize::Zeroizing;

use crate::client::{status_of, Api};
use crate::config;
use crate::settings::Settings;

pub fn login(s: &Settings) -> Result<()> {
    let api_url = s.api_url(None)?;
    let factory = s.factory(None)?;
    let token = read_token(s)?;
    let api = Api::new(&api_url, Some(token.as_str().to_owned()))?;
    let scope = check(&api, &factory)?;
    let stored = config::store_token(&api_url, &factory, &token)?;
    let config_written = config::create_default(&api_url, &factory)?;
    if s.json() {
        crate::output::json(&json!({
            "api": api_url, "factory": factory, "scope": scope, "stored_in": stored,
            "config_written": config_written,
        }));
        return Ok(());
    }
    outln!(
        "Logged in to Factory {factory} at {api_url} ({}). The token is stored in {} (mode \
         0600); commands for this server and Factory use it.",
        match &scope {
            Some(s) => format!("{s} token"),
            None => "a ci or read token".to_owned(),
        },
        stored.display()
    );
    if let Some(p) = config_written {
        outln!(
            "Wrote {} with this server and Factory as the defaults.",
            p.display()
        );
    }
    Ok(())
}

/// The token to store: `--token-file`, `--token`, else standard input (a prompt without echo
/// on a terminal).
fn read_token(s: &Settings) -> Result<Zeroizing<String>> {
    if s.global.token_file.is_some() || s.global.token.is_some() {
        if let Some(t) = s.token(None)? {
            return Ok(t);
        }
    }
    if std::io::stdin().is_terminal() {
        let t = rpassword::prompt_password("Token: ").context("reading the token")?;
        return Ok(Zeroizing::new(t.trim().to_owned()));
    }
    let mut raw = Zeroizing::new(String::new());
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut raw)
        .context("reading the token from standard input")?;
    let t = raw.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        bail!("standard input must hold one token on one line");
    }
    Ok(Zeroizing::new(t.to_owned()))
}

/// Checks the token with the server: it must read the Factory's root. Returns its scope when
/// the server tells it (an owner token may list the Factory's tokens; others may not).
fn check(api: &Api, factory: &str) -> Result<Option<String>> {
    api.get(&format!("/ota/repo/{factory}/api/v1/user_repo/root.json"))
        .map_err(|e| match status_of(&e) {
            Some(401) => e.context("the server does not know this token; nothing was stored"),
            Some(404) => e.context(format!(
                "the token does not belong to Factory {factory:?} (or there is no such Factory); \
                 nothing was stored"
            )),
            _ => e.context("checking the token with the server; nothing was stored"),
        })?;
    let listed = match api.get_json(&format!("/ota/factories/{factory}/tokens")) {
        Ok(v) => v,
        Err(e) if status_of(&e) == Some(403) => return Ok(None),
        Err(e) => return Err(e.context("checking the token's scope; nothing was stored")),
    };
    let current = listed["current"]["scope"].as_str();
    // The admin token lists every Factory's tokens but is none of them.
    Ok(Some(current.unwrap_or("admin").to_owned()))
}
