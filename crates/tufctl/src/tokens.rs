//! `tufctl tokens list|create|revoke`: a Factory's API tokens (owner token, or the server's
//! admin token). Secrets are printed once, by `create`; `list` shows IDs only.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::settings::Settings;

fn base(s: &Settings) -> Result<(crate::client::Api, String)> {
    let api = s.api_with_token(None, "the Factory owner's (or the admin)")?;
    let factory = s.factory(None)?;
    Ok((api, format!("/ota/factories/{factory}/tokens")))
}

pub fn list(s: &Settings) -> Result<()> {
    let (api, path) = base(s)?;
    // Every page, newest first.
    let mut tokens = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(cursor) => format!("{path}?before={cursor}"),
            None => path.clone(),
        };
        let v = api.get_json(&url).context("listing the Factory's tokens")?;
        tokens.extend(v["tokens"].as_array().cloned().unwrap_or_default());
        match v["next"].as_str() {
            Some(cursor) if next.as_deref() != Some(cursor) => next = Some(cursor.to_owned()),
            _ => break,
        }
    }
    if s.json() {
        outln!("{}", json!({ "tokens": tokens }));
        return Ok(());
    }
    outln!("{:<14} {:<6} {:<22} NOTE", "ID", "SCOPE", "CREATED");
    for t in &tokens {
        let note = if t["current"].as_bool() == Some(true) {
            "this token"
        } else {
            ""
        };
        outln!(
            "{:<14} {:<6} {:<22} {note}",
            t["id"].as_str().unwrap_or("?"),
            t["scope"].as_str().unwrap_or("?"),
            t["created_at"].as_str().unwrap_or("?"),
        );
    }
    outln!("(last use is not tracked; see `tufctl get /ota/factories/FACTORY/audit` for what each token changed)");
    Ok(())
}

pub fn create(s: &Settings, scope: &str) -> Result<()> {
    let (api, path) = base(s)?;
    let v = api
        .post_json(&path, &json!({ "scope": scope }))
        .with_context(|| format!("creating a {scope} token"))?;
    if s.json() {
        outln!("{v}");
        return Ok(());
    }
    outln!(
        "Created a {scope} token (id {}). It is shown only this once; store it now:\n{}",
        v["id"].as_str().unwrap_or("?"),
        v["token"].as_str().unwrap_or("?")
    );
    Ok(())
}

pub fn revoke(s: &Settings, id: Option<&str>, all: bool, keep_current: bool) -> Result<()> {
    let (api, path) = base(s)?;
    let v: Value = match (id, all) {
        (Some(id), false) => api
            .delete_json(&format!("{path}/{id}"))
            .with_context(|| format!("revoking token {id}"))?,
        (None, true) => api
            .post_json(
                &format!("{path}/revoke-all"),
                &json!({ "keep_current": keep_current }),
            )
            .context("revoking all tokens of the Factory")?,
        _ => bail!("give either a token ID (see `tufctl tokens list`) or --all"),
    };
    if s.json() {
        outln!("{v}");
        return Ok(());
    }
    let revoked: Vec<&str> = v["revoked"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    outln!("Revoked {} token(s): {}", revoked.len(), revoked.join(", "));
    match v["kept"].as_str() {
        Some(k) => outln!("Kept the token making this request ({k})."),
        None if all => outln!(
            "The token making this request was revoked too (unless it is the admin token). \
             Get a new owner token from the server admin: `tufctl tokens create owner \
             --factory F --token ADMIN_TOKEN`."
        ),
        None => {}
    }
    Ok(())
}
