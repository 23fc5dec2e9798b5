//! Waves: building the proposal, renewals, the offline signature the server requires.

use serde_json::json;
use tuf_core::{KeyType, Targets};

use super::{ci_target, days, edited, now, targets, Keys};
use crate::wave::{offline_signature, production_entry, propose, renewal, Retire};
use crate::Check;

#[test]
fn a_proposal_merges_the_build_tagged_and_bumps_the_version() {
    let ci = targets(
        7,
        &[("app-1", ci_target("1", 1)), ("app-2", ci_target("2", 2))],
        &[],
    );
    let prod = targets(3, &[], &[]);
    let none = Retire::default();
    let p = propose(&ci.signed, &prod.signed, "2", "main", days(10), &none).unwrap();
    assert_eq!((p.added, p.next.version), (1, 4));
    let entry = &p.next.targets["app-2"];
    assert_eq!(entry.custom.as_ref().unwrap()["tags"], json!(["main"]));
    assert_eq!(
        entry.custom.as_ref().unwrap()["hardware_ids"],
        json!(["board-a"])
    );
    let e = propose(&ci.signed, &prod.signed, "9", "main", days(10), &none).unwrap_err();
    assert_eq!(e.check, Check::WaveChangesTargets);
}

#[test]
fn a_proposal_takes_out_what_it_retires() {
    let (a1, b1, a2) = (ci_target("1", 1), ci_target("1", 3), ci_target("2", 2));
    let ci = targets(
        7,
        &[("a-1", a1.clone()), ("b-1", b1.clone()), ("a-2", a2)],
        &[],
    );
    let prod = targets(
        3,
        &[
            ("a-1", production_entry(&a1, "main")),
            ("b-1", production_entry(&b1, "main")),
        ],
        &[],
    );
    let by_version = Retire {
        versions: vec!["1".into()],
        ..Retire::default()
    };
    let p = propose(&ci.signed, &prod.signed, "2", "main", days(10), &by_version).unwrap();
    assert_eq!(p.retired, ["a-1", "b-1"]);
    assert_eq!(p.next.targets.keys().collect::<Vec<_>>(), ["a-2"]);
    let by_path = Retire {
        targets: vec!["b-1".into()],
        ..Retire::default()
    };
    let p = propose(&ci.signed, &prod.signed, "2", "main", days(10), &by_path).unwrap();
    assert_eq!(p.retired, ["b-1"]);
    assert_eq!(p.next.targets.keys().collect::<Vec<_>>(), ["a-1", "a-2"]);
    // Retiring what the wave publishes, or what production does not have, is refused.
    for bad in [
        Retire {
            versions: vec!["2".into()],
            ..Retire::default()
        },
        Retire {
            targets: vec!["a-2".into()],
            ..Retire::default()
        },
    ] {
        let e = propose(&ci.signed, &prod.signed, "2", "main", days(10), &bad).unwrap_err();
        assert_eq!(e.check, Check::WaveKeepsTargets, "{bad:?}");
    }
}

#[test]
fn a_renewal_changes_version_and_expiry_only() {
    let cur = targets(3, &[("app-1", ci_target("1", 1))], &[]);
    let good = edited(&cur, |t: &mut Targets| {
        t.version = 4;
        t.expires = days(60);
    });
    renewal(&good, &cur.signed, now()).into_result().unwrap();
    type Edit = fn(&mut Targets);
    let cases: [(&str, Edit, Check); 3] = [
        (
            "an added target",
            |t| {
                t.version = 4;
                t.expires = days(60);
                t.targets.insert("x".into(), ci_target("9", 9));
            },
            Check::Unchanged,
        ),
        (
            "an earlier expiry",
            |t| {
                t.version = 4;
                t.expires = days(1);
            },
            Check::Expires,
        ),
        (
            "a skipped version",
            |t| {
                t.version = 6;
                t.expires = days(60);
            },
            Check::Version,
        ),
    ];
    for (what, edit, check) in cases {
        let bad = edited(&cur, edit);
        let f = renewal(&bad, &cur.signed, now());
        assert_eq!(f.first().map(|r| r.check), Some(check), "{what}: {f:?}");
    }
}

#[test]
fn only_a_key_the_server_does_not_hold_counts_as_the_offline_signature() {
    let k = Keys::new(KeyType::EcdsaP256);
    let prod = k.root(1, true, 2);
    let server = k.server();
    let mut t = targets(2, &[], &[&k.online]);
    assert_eq!(
        offline_signature(&t, &prod.signed, &server)
            .unwrap_err()
            .check,
        Check::Signatures
    );
    t.sign(&k.offline).unwrap();
    offline_signature(&t, &prod.signed, &server).unwrap();
}
