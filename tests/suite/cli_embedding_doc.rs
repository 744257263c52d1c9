//! docs/embedding.md stays true: its list of the reference's methods that we answer with
//! -32601 is exactly what the binary answers, method by method from the vendored schema.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::app_server::AppServer;

/// Where the list sits in docs/embedding.md.
const START: &str = "<!-- not-found:start -->";
const END: &str = "<!-- not-found:end -->";

/// Every client request method of the reference protocol.
fn reference_methods() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/protocol/app-server-protocol-0.169.0.schema.json"
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    schema["definitions"]["ClientRequest"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["properties"]["method"]["enum"][0]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The methods listed in docs/embedding.md (backquoted names between the markers).
fn documented() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/embedding.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc.find(START).expect("start marker") + START.len();
    let end = doc[start..].find(END).expect("end marker") + start;
    doc[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_guide_lists_exactly_the_methods_answered_with_method_not_found() {
    // Nothing may reach the network: both backends point at a closed port.
    let mut server = AppServer::builder()
        .config("chatgpt_base_url=\"http://127.0.0.1:9/backend-api\"")
        .config("openai_base_url=\"http://127.0.0.1:9/v1\"")
        .config("chatgpt_auth_issuer=\"http://127.0.0.1:9\"")
        .spawn();
    server.initialize();
    let mut not_found = BTreeSet::new();
    for method in reference_methods() {
        if method == "initialize" {
            continue;
        }
        // Empty params: a method we serve answers (mostly -32602), one we lack answers -32601.
        if let Err(error) = server.call(&method, json!({}))
            && error["code"] == -32601
        {
            assert_eq!(error["message"], format!("Method not found: {method}"));
            not_found.insert(method);
        }
    }
    let documented = documented();
    let missing: Vec<_> = not_found.difference(&documented).collect();
    let served: Vec<_> = documented.difference(&not_found).collect();
    assert!(
        missing.is_empty() && served.is_empty(),
        "docs/embedding.md is out of date: add {missing:?} to its -32601 list, remove {served:?} \
         (now served)"
    );
}
