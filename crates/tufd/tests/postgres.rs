//! The storage test-suite on PostgreSQL (TUFD_TEST_DATABASE_URL), and two replicas sharing
//! one database.

mod common;

use common::suite;
use common::*;

#[test]
fn bootstrap_and_metadata() {
    let Some(s) = Server::postgres() else { return };
    suite::bootstrap_and_metadata(&s);
}

#[test]
fn targets_and_signing() {
    let Some(s) = Server::postgres() else { return };
    suite::targets_and_signing(&s);
}

#[test]
fn bad_input() {
    let Some(s) = Server::postgres() else { return };
    suite::bad_input(&s);
}

#[test]
fn token_scopes() {
    let Some(s) = Server::postgres() else { return };
    suite::token_scopes(&s);
}

/// Two `tufd` processes on one database: concurrent additions through both lose nothing and
/// never reuse a version; the one-time credentials download succeeds exactly once.
#[test]
fn two_replicas() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), &[]);
    let b = Server::start(Some(&url), &[]);
    let f = create_factory(&a, "shared");
    // The artifact-carrying and metadata rows are visible from the other replica.
    let (st, _) = get(&b, "/repo/shared/ci/metadata/root.json", None);
    assert_eq!(st, StatusCode::OK);

    let urls: Vec<String> = [&a, &b]
        .iter()
        .map(|s| f.credentials_url.replace(&a.base, &s.base))
        .collect();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let u = urls[i % 2].clone();
            std::thread::spawn(move || client().get(u).send().unwrap().status())
        })
        .collect();
    let statuses: Vec<StatusCode> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::GONE));

    suite::concurrent_targets(&[&a, &b], &f, 6, 5);
}

#[test]
fn root_rotation_and_waves() {
    let Some(s) = Server::postgres() else { return };
    suite::root_rotation_and_waves(&s);
}

#[test]
fn root_update_rejections() {
    let Some(s) = Server::postgres() else { return };
    suite::root_update_rejections(&s);
}

#[test]
fn batch_targets() {
    let Some(s) = Server::postgres() else { return };
    suite::batch_targets(&s);
}

#[test]
fn old_versions_pruned() {
    let Some(s) = Server::postgres() else { return };
    suite::old_versions_pruned(&s);
}

/// Two replicas re-sign the same Factories; each version is still published once.
#[test]
fn upkeep_with_two_replicas() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), SHORT_PERIODS);
    let b = Server::start(Some(&url), SHORT_PERIODS);
    suite::upkeep(&[&a, &b]);
}
