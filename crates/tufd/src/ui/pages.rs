//! The console's pages: each finds its viewer, authorises exactly as the API endpoint that
//! reads the same data, reads the store, builds its model and renders it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tuf_core::PublicKey;

use super::layout::{page, Frame};
use super::session::{viewer, Viewer};
use super::{audit, chain, expiry, factories as factory_list, keys, store, waves};
use super::{Path, UiError, UiResult, METADATA_READERS, OWNER_ONLY};
use crate::auth::Scope;
use crate::db::{now, require_factory};
use crate::error::ApiError;
use crate::repo::Flavour;
use crate::Shared;

/// `GET /ui/`: the admin's list of Factories, or the token's own Factory.
pub async fn home(State(state): State<Shared>, headers: HeaderMap) -> UiResult<Response> {
    let v = viewer(&state, &headers).await?;
    Ok(match &v.caller.factory {
        Some(f) if v.caller.scope != Scope::Admin => {
            Redirect::to(&super::layout::tab_href(f, "")).into_response()
        }
        _ => Redirect::to("/ui/factories").into_response(),
    })
}

#[derive(Deserialize)]
pub struct After {
    after: Option<String>,
}

/// `GET /ui/factories` (admin, as `POST /ota/factories`).
pub async fn factories(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<After>, QueryRejection>,
) -> UiResult<Response> {
    let v = viewer(&state, &headers).await?;
    if v.caller.scope != Scope::Admin {
        return Err(ApiError::forbidden("the list of Factories needs the admin token").into());
    }
    let Query(q) = query.map_err(bad_query)?;
    let rows = store::factories(&state, q.after.as_deref(), factory_list::PAGE + 1).await?;
    let (rows, next) = factory_list::page(rows);
    let body = factory_list::render(&rows, next.as_deref(), now());
    Ok(page(
        &Frame {
            title: "Factories",
            viewer: &v,
            factory: None,
        },
        body,
    )
    .into_response())
}

/// `GET /ui/f/{f}/`: keys and roots, the release requirement, the open root update.
pub async fn overview(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
) -> UiResult<Response> {
    let v = factory_viewer(&state, &headers, &factory, METADATA_READERS).await?;
    let ci = store::root(&state, &factory, Flavour::Ci).await?;
    let prod = store::root(&state, &factory, Flavour::Prod).await?;
    let online = store::online_keys(&state, &factory).await?.server_keys();
    let held = |k: &PublicKey| online.holds(k, tuf_ceremony::View::Sure);
    let update = if v.caller.require(&factory, OWNER_ONLY).is_err() {
        keys::UpdateState::NotOwner
    } else {
        match store::staged_update(&state, &factory).await? {
            None => keys::UpdateState::None,
            Some(s) => {
                keys::UpdateState::Open(keys::UpdateView::new(&s, &ci.signed, &prod.signed, &held))
            }
        }
    };
    let model = keys::Overview::new(&ci.signed, &prod.signed, &held, update);
    let body = keys::render(&model, now());
    Ok(factory_page(&v, &factory, "", body))
}

#[derive(Deserialize)]
pub struct Before {
    before: Option<i64>,
}

/// Root versions per page of the chain.
const CHAIN_PAGE: i64 = 50;

/// `GET /ui/f/{f}/roots`: the root chain.
pub async fn chain(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Before>, QueryRejection>,
) -> UiResult<Response> {
    let v = factory_viewer(&state, &headers, &factory, METADATA_READERS).await?;
    let Query(q) = query.map_err(bad_query)?;
    // One more than shown: the base of the oldest shown version's diff.
    let ci = store::root_versions(&state, &factory, Flavour::Ci, q.before, CHAIN_PAGE + 1).await?;
    let prod =
        store::root_versions(&state, &factory, Flavour::Prod, q.before, CHAIN_PAGE + 1).await?;
    let online = store::online_keys(&state, &factory).await?.server_keys();
    let held = |k: &PublicKey| online.holds(k, tuf_ceremony::View::Sure);
    let current = store::root(&state, &factory, Flavour::Ci).await?;
    let entries = chain::entries(&ci, &prod, &held, CHAIN_PAGE as usize, &current.signed);
    let older = (ci.len() as i64 > CHAIN_PAGE)
        .then(|| entries.last().map(|e| e.version))
        .flatten();
    Ok(factory_page(
        &v,
        &factory,
        "roots",
        chain::render(&entries, older),
    ))
}

/// `GET /ui/f/{f}/expiry`: every role of both flavours on one time axis.
pub async fn expiry(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
) -> UiResult<Response> {
    let v = factory_viewer(&state, &headers, &factory, METADATA_READERS).await?;
    let heads = store::heads(&state, &factory).await?;
    let at = now();
    let bars = expiry::bars(&heads, at);
    Ok(factory_page(
        &v,
        &factory,
        "expiry",
        expiry::render(&bars, at),
    ))
}

/// Waves per page.
const WAVES_SHOWN: i64 = 100;

/// `GET /ui/f/{f}/waves?hardware_id=&tag=`: waves and targets (owner, as `GET .../waves`).
pub async fn waves(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    query: Result<Query<waves::Filter>, QueryRejection>,
) -> UiResult<Response> {
    let v = factory_viewer(&state, &headers, &factory, OWNER_ONLY).await?;
    let Query(filter) = query.map_err(bad_query)?;
    let filter = filter
        .normalised()
        .map_err(|e| ApiError::bad_request("invalid filter", e))?;
    let rows = store::waves(&state, &factory, WAVES_SHOWN).await?;
    let ci = store::targets(&state, &factory, Flavour::Ci).await?;
    let model = waves::releases(&rows, &ci.signed, &filter);
    Ok(factory_page(
        &v,
        &factory,
        "waves",
        waves::render(&model, &filter),
    ))
}

/// `GET /ui/f/{f}/audit?before=ID` (owner, as `GET .../audit`).
pub async fn audit(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Before>, QueryRejection>,
) -> UiResult<Response> {
    let v = factory_viewer(&state, &headers, &factory, OWNER_ONLY).await?;
    let Query(q) = query.map_err(bad_query)?;
    let rows = store::audit(&state, &factory, q.before, audit::PAGE + 1).await?;
    let (records, next) = audit::page(rows);
    let body = audit::render(&records, next, q.before.is_none());
    Ok(factory_page(&v, &factory, "audit", body))
}

/// The viewer of a Factory page, allowed as the API allows `scopes` (a token of another
/// Factory gets 404, as if the Factory did not exist), for a Factory that exists.
async fn factory_viewer(
    state: &Shared,
    headers: &HeaderMap,
    factory: &str,
    scopes: &[Scope],
) -> UiResult<Viewer> {
    let v = viewer(state, headers).await?;
    v.caller.require(factory, scopes)?;
    require_factory(&state.db, factory).await?;
    Ok(v)
}

fn factory_page(v: &Viewer, factory: &str, tab: &str, body: maud::Markup) -> Response {
    let title = super::layout::FACTORY_TABS
        .iter()
        .find(|(path, _, _)| *path == tab)
        .map_or("Factory", |(_, t, _)| t);
    page(
        &Frame {
            title,
            viewer: v,
            factory: Some((factory, tab)),
        },
        body,
    )
    .into_response()
}

fn bad_query(e: QueryRejection) -> UiError {
    ApiError::bad_request("invalid query", e.body_text()).into()
}
