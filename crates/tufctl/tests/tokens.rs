//! `tufctl tokens list|create|revoke` end to end on a real tufd: secrets are printed once and
//! never listed; a revoked token fails at once; `revoke --all` locks the owner out too and
//! the admin token recovers.

mod support;

use support::*;

fn tokens_list_create_revoke(server: Server) {
    let f = create_factory(&server, "tok");
    let as_owner = |token: &str, args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--factory", &f.name, "--token", token]);
        server.tufctl(&a)
    };
    let created = json(&ok(&as_owner(
        &f.token,
        &["--json", "tokens", "create", "read"],
    )));
    let read = created["token"].as_str().unwrap().to_owned();
    let read_id = created["id"].as_str().unwrap().to_owned();
    let root = format!("/ota/repo/{}/api/v1/user_repo/root.json", f.name);
    ok(&server.tufctl(&["get", &root, "--token", &read]));

    let listed = ok(&as_owner(&f.token, &["tokens", "list"]));
    assert!(
        listed.contains(&read_id) && listed.contains("this token"),
        "{listed}"
    );
    for secret in [&f.token, &f.ci_token, &read] {
        assert!(!listed.contains(secret.as_str()), "{listed}");
    }

    ok(&as_owner(&f.token, &["tokens", "revoke", &read_id]));
    let err = fails(&server.tufctl(&["get", &root, "--token", &read]));
    assert!(
        err.contains("answered 401: unauthorized (unknown token)"),
        "{err}"
    );
    // Neither an ID nor --all: refused before any request, and nothing is revoked.
    let before = ok(&as_owner(&f.token, &["--json", "tokens", "list"]));
    let err = fails(&as_owner(&f.token, &["tokens", "revoke"]));
    assert!(
        err.contains("the following required arguments were not provided:\n  <ID>"),
        "{err}"
    );
    assert_eq!(
        ok(&as_owner(&f.token, &["--json", "tokens", "list"])),
        before
    );

    let out = ok(&as_owner(
        &f.token,
        &["tokens", "revoke", "--all", "--keep-current"],
    ));
    assert!(out.contains("Kept"), "{out}");
    let err = fails(&server.tufctl(&["get", &root, "--token", &f.ci_token]));
    assert!(
        err.contains("answered 401: unauthorized (unknown token)"),
        "{err}"
    );
    ok(&server.tufctl(&["get", &root, "--token", &f.token]));

    let out = ok(&as_owner(&f.token, &["tokens", "revoke", "--all"]));
    assert!(out.contains("ADMIN_TOKEN"), "{out}");
    let err = fails(&server.tufctl(&["get", &root, "--token", &f.token]));
    assert!(
        err.contains("answered 401: unauthorized (unknown token)"),
        "{err}"
    );
    // Locked out: the server admin issues a new owner token.
    let new_owner = json(&ok(&as_owner(
        &server.admin,
        &["--json", "tokens", "create", "owner"],
    )));
    let owner2 = new_owner["token"].as_str().unwrap();
    ok(&server.tufctl(&["get", &root, "--token", owner2]));
    let audit = ok(&server.tufctl(&[
        "get",
        &format!("/ota/factories/{}/audit", f.name),
        "--token",
        owner2,
    ]));
    assert!(audit.contains("token.revoke_all"), "{audit}");
}

#[test]
fn tokens_revoke_on_sqlite() {
    tokens_list_create_revoke(Server::start());
}

#[test]
fn tokens_revoke_on_postgres() {
    on_postgres(tokens_list_create_revoke);
}
