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
