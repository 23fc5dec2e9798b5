//! Curating the CI targets (owner): removing targets (`DELETE .../targets/{t}`, `POST
//! .../targets/prune`) and changing a target's tags (`PUT .../targets/{t}/tags`). Each call is
//! one transaction that locks the Factory, edits the CI targets, re-signs CI targets, snapshot
//! and timestamp with the online keys, and writes the audit record. Production targets are
//! never touched: they change only through Waves. Artifacts stay stored (production
//! targets or a device's cached metadata may still name them).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tuf_core::{Role, TargetChanges, TargetsBytes};

use crate::auth::{authenticate, Caller, Scope};
use crate::db::begin_locked;
use crate::error::{ApiError, ApiResult};
use crate::input::{check_label, JsonBody, Path};
use crate::repo::{current_root, edit_targets, Edited, Flavour, OnlineKeys, Signing};
use crate::targets::{keep_unchanged_ci_targets, stored_ci_targets};
use crate::{audit, Shared};

/// Most targets one prune request removes (the client sends larger prunes in batches).
pub const PRUNE_LIMIT: usize = 1000;

/// Most tags a target carries, as `targets add` accepts.
const TAG_LIMIT: usize = 64;

/// `DELETE /ota/factories/{f}/targets/{target}` (owner).
pub async fn remove(
    State(state): State<Shared>,
    Path((factory, target)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    check_target(&target)?;
    let edit = Removal {
        targets: vec![target],
    };
    Ok(Json(edit_ci(&state, &factory, &caller, edit).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    targets: Vec<String>,
}

/// `POST /ota/factories/{f}/targets/prune` `{"targets": [..]}` (owner): all or nothing.
pub async fn prune(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: PruneRequest = body.parse()?;
    if req.targets.is_empty() || req.targets.len() > PRUNE_LIMIT {
        return Err(ApiError::bad_request(
            "invalid targets",
            format!("give between 1 and {PRUNE_LIMIT} target names"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &req.targets {
        check_target(t)?;
        if !seen.insert(t.as_str()) {
            return Err(ApiError::bad_request(
                "invalid targets",
                format!("{t} is given twice"),
            ));
        }
    }
    let edit = Removal {
        targets: req.targets,
    };
    Ok(Json(edit_ci(&state, &factory, &caller, edit).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsRequest {
    tags: Vec<String>,
}

/// `PUT /ota/factories/{f}/targets/{target}/tags` `{"tags": [..]}` (owner): replaces the
/// target's `custom.tags`. The same tags again change nothing.
pub async fn set_tags(
    State(state): State<Shared>,
    Path((factory, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    check_target(&target)?;
    let req: TagsRequest = body.parse()?;
    if req.tags.len() > TAG_LIMIT {
        return Err(ApiError::bad_request(
            "invalid tags",
            format!("at most {TAG_LIMIT} tags"),
        ));
    }
    for t in &req.tags {
        check_label("tags", t, 128)?;
    }
    let mut tags = req.tags;
    tags.sort();
    tags.dedup();
    let edit = Retag { target, tags };
    Ok(Json(edit_ci(&state, &factory, &caller, edit).await?))
}

/// One change to the CI targets.
trait Edit {
    /// The audit action.
    const ACTION: &'static str;
    /// The change to make to `current`, nothing when there is nothing to change. Refuses
    /// when the change cannot be made.
    fn changes(&self, current: &TargetsBytes) -> ApiResult<TargetChanges>;
    /// What the answer and the audit record say about it.
    fn describe(&self) -> Value;
}

struct Removal {
    targets: Vec<String>,
}

impl Edit for Removal {
    const ACTION: &'static str = "target.delete";

    fn changes(&self, current: &TargetsBytes) -> ApiResult<TargetChanges> {
        let mut changes = TargetChanges::new();
        for t in &self.targets {
            if current.get(t)?.is_none() {
                return Err(ApiError::not_found(format!(
                    "CI target {t:?} (nothing was removed)"
                )));
            }
            changes.insert(t.clone(), None);
        }
        Ok(changes)
    }

    fn describe(&self) -> Value {
        json!({"removed": self.targets})
    }
}

struct Retag {
    target: String,
    tags: Vec<String>,
}

impl Edit for Retag {
    const ACTION: &'static str = "target.tags";

    fn changes(&self, current: &TargetsBytes) -> ApiResult<TargetChanges> {
        let mut entry = current
            .get(&self.target)?
            .ok_or_else(|| ApiError::not_found(format!("CI target {:?}", self.target)))?;
        let custom = match &mut entry.custom {
            Some(Value::Object(c)) => c,
            _ => {
                return Err(ApiError::conflict(
                    "target not tagged",
                    format!(
                        "{} has no custom fields of a target added through this server",
                        self.target
                    ),
                ))
            }
        };
        let tags = json!(self.tags);
        if custom.get("tags") == Some(&tags) {
            return Ok(TargetChanges::new());
        }
        custom.insert("tags".to_owned(), tags);
        Ok(TargetChanges::from([(self.target.clone(), Some(entry))]))
    }

    fn describe(&self) -> Value {
        json!({"target": self.target, "tags": self.tags})
    }
}

/// Locks the Factory, applies `edit` to the CI targets and, when it changed them, publishes
/// CI targets, snapshot and timestamp and records the audit entry, all in one transaction.
async fn edit_ci<E: Edit>(
    state: &Shared,
    factory: &str,
    caller: &Caller,
    edit: E,
) -> ApiResult<Value> {
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, factory).await?;
    let (head_version, head_sha, stored) = stored_ci_targets(state, &mut tx, factory).await?;
    let mut answer = edit.describe();
    let expires = state.periods.expires(Role::Targets, now)?;
    let edited = edit_targets(stored, expires, |current| {
        let changes = edit.changes(current)?;
        Ok((!changes.is_empty()).then_some(changes))
    })?;
    let next = match edited {
        Edited::Next(next) => next,
        Edited::Unchanged(stored) => {
            keep_unchanged_ci_targets(state, factory, head_sha, stored);
            answer["targets_version"] = json!(head_version);
            return Ok(answer);
        }
    };
    let root = current_root(&mut tx, factory, Flavour::Ci).await?;
    let keys = OnlineKeys::load(&mut tx, state, factory).await?;
    let signing = Signing {
        factory,
        keys: &keys,
        periods: &state.periods,
        now,
    };
    let next = signing.sign_next_targets(&root.signed, next)?;
    let sha = signing
        .publish_next_targets(&mut tx, Flavour::Ci, &root.signed, &next)
        .await?;
    let version = next.version;
    answer["targets_version"] = json!(version);
    audit::record(
        &mut tx,
        factory,
        signing.now_unix(),
        &caller.actor,
        E::ACTION,
        answer.clone(),
    )
    .await?;
    // Read under the Factory's lock, which the commit gives up.
    let generation = state.cache.generation(factory).after_commit();
    tx.commit().await?;
    crate::announce::published(state, factory).await;
    state.cache.published_targets(
        factory,
        Flavour::Ci,
        (sha, Bytes::from(next.body)),
        generation,
    );
    tracing::info!(factory = %factory, action = E::ACTION, version, "CI targets edited");
    Ok(answer)
}

/// A target path as `targets add` makes them (`{name}-{version}`): the label rules, up to
/// the longest such path.
fn check_target(target: &str) -> ApiResult<()> {
    check_label("target", target, 128 + 1 + 64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tuf_core::{Expires, Signed, TargetFile, Targets};

    use super::*;

    fn targets() -> Targets {
        let mut t = Targets::new(3, Expires::from_unix(4_000_000_000).unwrap());
        for (path, custom) in [
            ("app-1", Some(json!({"name": "app", "tags": ["ci"]}))),
            ("app-2", Some(json!({"name": "app", "tags": ["ci"]}))),
            ("raw-1", None),
        ] {
            let file = TargetFile {
                length: 1,
                hashes: BTreeMap::from([("sha256".to_owned(), "00".repeat(32))]),
                custom,
                extra: BTreeMap::new(),
            };
            t.targets.insert(path.to_owned(), file);
        }
        t
    }

    /// `edit` applied to `targets()`: its refusal, or the target list it leaves.
    /// Made as `edit_ci` makes it (`repo::edit_targets`, here in the stored buffer).
    fn edited(edit: &impl Edit) -> ApiResult<Option<Targets>> {
        let bytes = Signed::new(targets()).unwrap().to_bytes();
        let expires = Expires::from_unix(4_100_000_000).unwrap();
        let edited = crate::repo::edit_targets(Bytes::from(bytes), expires, |current| {
            let changes = edit.changes(current)?;
            Ok((!changes.is_empty()).then_some(changes))
        })?;
        let next = match edited {
            Edited::Unchanged(_) => return Ok(None),
            Edited::Next(next) => next.into_bytes(),
        };
        Ok(Some(Signed::<Targets>::from_slice(&next).unwrap().signed))
    }

    #[test]
    fn a_removal_is_all_or_nothing() {
        let missing = Removal {
            targets: vec!["app-1".into(), "app-9".into()],
        };
        let e = edited(&missing).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::NOT_FOUND);
        let both = Removal {
            targets: vec!["app-1".into(), "raw-1".into()],
        };
        let t = edited(&both).unwrap().expect("changed");
        assert_eq!(t.targets.keys().collect::<Vec<_>>(), ["app-2"]);
        assert_eq!(t.version, 4);
    }

    #[test]
    fn retagging_replaces_tags_and_the_same_tags_change_nothing() {
        let same = Retag {
            target: "app-1".into(),
            tags: vec!["ci".into()],
        };
        assert!(edited(&same).unwrap().is_none());
        let new = Retag {
            target: "app-1".into(),
            tags: vec!["beta".into(), "ci".into()],
        };
        let t = edited(&new).unwrap().expect("changed");
        let custom = t.targets["app-1"].custom.as_ref().unwrap();
        assert_eq!(custom["tags"], json!(["beta", "ci"]));
        assert_eq!(custom["name"], "app", "other fields kept");
        assert_eq!(
            t.targets["app-2"],
            targets().targets["app-2"],
            "others unchanged"
        );
        let raw = Retag {
            target: "raw-1".into(),
            tags: vec![],
        };
        assert_eq!(
            edited(&raw).unwrap_err().status,
            axum::http::StatusCode::CONFLICT
        );
    }
}
