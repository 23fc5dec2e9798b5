//! Every bad request to every route of `/openapi.json` is refused with our JSON error
//! (`{"error", "detail"}`), never a 5xx, and changes nothing: arrays and other non-objects
//! where an object is expected, wrong types for each documented field, strings past the
//! limits, invalid UTF-8 (in the body and, percent-encoded, in every path parameter),
//! duplicated keys and query parameters, floats, trailing bytes, unknown fields, methods a
//! route does not have. The routes come from the served `/openapi.json`, so a route added
//! there is covered without touching this file.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[test]
fn bad_requests_on_sqlite() {
    every_route(&Server::sqlite());
}

#[test]
fn bad_requests_on_postgres() {
    if let Some(s) = Server::postgres() {
        every_route(&s);
    }
}

/// One request and what came back.
struct Case {
    what: String,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
}

fn every_route(s: &Server) {
    let f = create_factory(s, "strict");
    let other = create_factory(s, "other");
    // State worth protecting: a CI target, an open root-update transaction.
    let (st, _) = add_target(s, &f, "app", "1");
    assert_eq!(st, StatusCode::CREATED);
    let r = client()
        .post(s.url("/ota/repo/strict/api/v1/user_repo/root/updates"))
        .bearer_auth(&f.owner)
        .json(&json!({"message": "open"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let txid = r.json::<Value>().unwrap()["txid"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = state(s, &[&f, &other]);

    let api: Value = serde_json::from_slice(&get(s, "/openapi.json", None).1).unwrap();
    let mut cases = Vec::new();
    let paths = api["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{:?}", paths.keys());
    for (template, ops) in paths {
        let ops = ops.as_object().unwrap();
        for (method, op) in ops {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            cases.extend(path_cases(template, &method));
            cases.extend(query_cases(template, &method, op));
            if let Some(schema) = body_schema(&api, op) {
                let schema = resolve(&api, schema);
                cases.extend(body_cases(template, &method, &schema, &txid));
            }
        }
        cases.push(wrong_method(template, ops));
    }
    assert!(cases.len() > 300, "only {} cases", cases.len());
    for case in &cases {
        let token = if case.path.starts_with("/ota/tokens") || case.path == "/ota/factories" {
            s.admin.as_str()
        } else if case.path.contains("/other/") {
            other.owner.as_str()
        } else {
            f.owner.as_str()
        };
        check(s, token, case);
    }
    assert_eq!(
        state(s, &[&f, &other]),
        before,
        "a refused request changed the store"
    );
}

/// Sends `case` and checks the answer: a 4xx with our JSON error.
fn check(s: &Server, token: &str, case: &Case) {
    let mut req = client()
        .request(case.method.clone(), s.url(&case.path))
        .bearer_auth(token);
    if let Some(b) = &case.body {
        req = req
            .header("content-type", "application/json")
            .body(b.clone());
    }
    let r = req.send().unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    let body = r.bytes().unwrap();
    let what = format!("{} {} ({})", case.method, case.path, case.what);
    assert!(
        status.is_client_error(),
        "{what}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    if case.method == Method::HEAD {
        return;
    }
    assert!(
        ct.starts_with("application/json"),
        "{what}: content-type {ct:?}"
    );
    let v: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{what}: not JSON: {}", String::from_utf8_lossy(&body)));
    assert!(v["error"].is_string(), "{what}: {v}");
    assert!(v.as_object().unwrap().contains_key("detail"), "{what}: {v}");
}

/// The path with each parameter set to a value that reaches the handler.
fn fill(template: &str, bad: Option<(&str, &str)>) -> String {
    let mut path = template.to_owned();
    let known = [
        ("f", "strict"),
        ("w", "nope"),
        ("id", "000000000000"),
        ("once", "00"),
        ("flavour", "ci"),
    ];
    for (name, value) in known {
        let value = match bad {
            Some((b, v)) if b == name => v,
            _ => value,
        };
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let file = match bad {
        Some(("file", v)) => v.to_owned(),
        _ if template.contains("/targets/{file}") => format!("{}.app-1", "ab".repeat(32)),
        _ => "root.json".to_owned(),
    };
    path.replace("{file}", &file)
}

/// Every path parameter as invalid UTF-8 once percent-decoded (`%ff`, an overlong `.`).
fn path_cases(template: &str, method: &Method) -> Vec<Case> {
    let mut out = Vec::new();
    for name in ["f", "w", "id", "once", "flavour", "file"] {
        if !template.contains(&format!("{{{name}}}")) {
            continue;
        }
        for bad in ["%ff", "%c0%ae", "a%80b"] {
            out.push(Case {
                what: format!("{{{name}}} = {bad}"),
                method: method.clone(),
                path: fill(template, Some((name, bad))),
                body: None,
            });
        }
    }
    out
}

/// A documented query parameter given twice, or as invalid UTF-8.
fn query_cases(template: &str, method: &Method, op: &Value) -> Vec<Case> {
    let mut out = Vec::new();
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    for p in params.iter().filter(|p| p["in"] == "query") {
        let name = p["name"].as_str().unwrap();
        for (what, query) in [
            ("duplicated", format!("{name}=1&{name}=0")),
            ("invalid UTF-8", format!("{name}=%ff")),
            ("unknown value", format!("{name}=maybe")),
        ] {
            out.push(Case {
                what: format!("query {name} {what}"),
                method: method.clone(),
                path: format!("{}?{query}", fill(template, None)),
                body: None,
            });
        }
    }
    out
}

/// A method the route does not have.
fn wrong_method(template: &str, ops: &serde_json::Map<String, Value>) -> Case {
    let method = ["patch", "put", "delete", "post"]
        .into_iter()
        .find(|m| !ops.contains_key(*m))
        .unwrap();
    Case {
        what: "method not allowed".into(),
        method: Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap(),
        path: fill(template, None),
        body: None,
    }
}

fn body_schema<'a>(_api: &Value, op: &'a Value) -> Option<&'a Value> {
    let s = &op["requestBody"]["content"]["application/json"]["schema"];
    (!s.is_null()).then_some(s)
}

/// The schema of an object body: `$ref` followed, the object branch of a `oneOf`.
fn resolve(api: &Value, schema: &Value) -> Value {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return resolve(api, &api["components"]["schemas"][name]);
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let object = branches.iter().find(|b| b["type"] == "object");
        return resolve(api, object.expect("a oneOf with an object branch"));
    }
    schema.clone()
}

/// A value of `schema`'s type that the server would take as well-formed.
fn placeholder(name: &str, schema: &Value, txid: &str) -> Value {
    if name == "txid" {
        return json!(txid);
    }
    match schema["type"].as_str() {
        Some("string") => json!("x"),
        Some("integer") => json!(1),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        _ => json!({}),
    }
}

/// A value of another type than `schema`'s.
fn wrong_type(schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("string") => json!(5),
        Some("integer") => json!("1"),
        Some("boolean") => json!("yes"),
        Some("array") => json!({"0": "x"}),
        _ => json!(["x"]),
    }
}

/// Bodies that are not what the route documents.
fn body_cases(template: &str, method: &Method, schema: &Value, txid: &str) -> Vec<Case> {
    let path = fill(template, None);
    let case = |what: String, body: Vec<u8>| Case {
        what,
        method: method.clone(),
        path: path.clone(),
        body: Some(body),
    };
    let mut out = Vec::new();
    for (what, body) in [
        ("empty array", b"[]".to_vec()),
        ("array of a string", br#"["x"]"#.to_vec()),
        ("array of an object", br#"[{"x": 1}]"#.to_vec()),
        ("string", br#""owner""#.to_vec()),
        ("number", b"7".to_vec()),
        ("null", b"null".to_vec()),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec()),
        ("duplicated key", br#"{"a": 1, "a": 2}"#.to_vec()),
        ("float", br#"{"a": 1.5}"#.to_vec()),
        ("trailing bytes", b"{} x".to_vec()),
        ("truncated", b"{\"a\": ".to_vec()),
        ("unknown field", br#"{"surely_not_a_field": 1}"#.to_vec()),
        ("too large", oversized_body(template)),
    ] {
        out.push(case(what.into(), body));
    }
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let filled: serde_json::Map<String, Value> = props
        .iter()
        .map(|(k, v)| (k.clone(), placeholder(k, v, txid)))
        .collect();
    for (name, prop) in &props {
        let mut wrong = filled.clone();
        wrong.insert(name.clone(), wrong_type(prop));
        out.push(case(
            format!("{name} of the wrong type"),
            serde_json::to_vec(&wrong).unwrap(),
        ));
        if prop["type"] == "string" {
            let mut long = filled.clone();
            long.insert(name.clone(), json!("a".repeat(200_000)));
            out.push(case(
                format!("{name} of 200,000 characters"),
                serde_json::to_vec(&long).unwrap(),
            ));
        }
    }
    out
}

/// A body past the route's limit: 1 MiB, or 32 MiB where signed production targets travel.
fn oversized_body(template: &str) -> Vec<u8> {
    let signed = template.ends_with("/waves")
        || template.ends_with("/resign")
        || template.ends_with("/root/updates");
    let size = if signed { 33 << 20 } else { 2 << 20 };
    let mut b = b"{\"a\": \"".to_vec();
    b.resize(size, b'a');
    b.extend_from_slice(b"\"}");
    b
}

/// What the store holds, as the API serves it: metadata of both flavours, tokens, waves, the
/// audit log and the open transaction of each Factory, and the server-wide tokens.
fn state(s: &Server, factories: &[&Factory]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in factories {
        out.extend(snapshot_of_store(s, &f.name));
        for path in [
            format!("/ota/factories/{}/tokens", f.name),
            format!("/ota/factories/{}/waves", f.name),
            format!("/ota/factories/{}/audit", f.name),
            format!("/ota/repo/{}/api/v1/user_repo/root/updates", f.name),
        ] {
            let (st, body) = get(s, &path, Some(&f.owner));
            out.push(format!("{path} {st}").into_bytes());
            out.push(body);
        }
    }
    out.push(get(s, "/ota/tokens", Some(&s.admin)).1);
    out
}
