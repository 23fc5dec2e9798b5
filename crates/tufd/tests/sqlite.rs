//! The storage test-suite on the embedded SQLite store.

mod common;

use common::suite;
use common::*;

#[test]
fn bootstrap_and_metadata() {
    suite::bootstrap_and_metadata(&Server::sqlite());
}

#[test]
fn targets_and_signing() {
    suite::targets_and_signing(&Server::sqlite());
}

#[test]
fn bad_input() {
    suite::bad_input(&Server::sqlite());
}

#[test]
fn token_scopes() {
    suite::token_scopes(&Server::sqlite());
}

#[test]
fn concurrent_targets() {
    let s = Server::sqlite();
    let f = create_factory(&s, "busy");
    suite::concurrent_targets(&[&s], &f, 4, 5);
}

#[test]
fn root_rotation_and_waves() {
    suite::root_rotation_and_waves(&Server::sqlite());
}

#[test]
fn root_update_rejections() {
    suite::root_update_rejections(&Server::sqlite());
}

#[test]
fn batch_targets() {
    suite::batch_targets(&Server::sqlite());
}

#[test]
fn upkeep_resigns_before_expiry() {
    let s = Server::start(None, SHORT_PERIODS);
    suite::upkeep(&[&s]);
}

/// SIGTERM stops the server cleanly (exit status 0).
#[test]
fn graceful_shutdown() {
    let mut s = Server::sqlite();
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(s.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = s.wait();
    assert!(exit.success(), "{exit:?}");
}
