//! Compaction driven by the model catalog (context.md §4, models.md §2) through the real binary:
//! with a ChatGPT login the catalog's `auto_compact_token_limit` triggers the compaction, its
//! `context_window` × `effective_context_window_percent` is the `modelContextWindow` clients are
//! told, and a catalog limit above 90 % of the window counts only up to that cap. The backend
//! (catalog, routing, Responses) is an HTTPS mock trusted through `CODEX_CA_CERTIFICATE`.

use std::path::Path;

use serde_json::{Value, json};

use crate::suite::auth::fake_jwt;
use crate::suite::compaction::{answer, item_events, turn, usages};
use crate::suite::turns::start_thread;
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

const ACCOUNT: &str = "acc-compact";

fn token() -> String {
    fake_jwt(json!({
        "email": "user@example.com",
        "exp": 4_102_444_800i64,
        "https://api.openai.com/auth": {"chatgpt_account_id": ACCOUNT, "chatgpt_plan_type": "pro", "chatgpt_user_id": "u"},
    }))
}

/// A server logged in with ChatGPT (auth.json in `home`) against the HTTPS `mock`, whose
/// catalog holds one model `slug` with the given window facts.
fn server_with_catalog(mock: &MockServer, home: &Path, slug: &str, facts: Value) -> AppServer {
    let auth = json!({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": null,
        "tokens": {"id_token": token(), "access_token": token(), "refresh_token": "rt", "account_id": ACCOUNT},
        "last_refresh": "2099-01-01T00:00:00Z",
    });
    std::fs::write(home.join("auth.json"), auth.to_string()).unwrap();
    let mut entry = json!({"slug": slug, "display_name": slug, "visibility": "list", "priority": 1,
        "shell_type": "shell_command", "apply_patch_tool_type": "function"});
    for (key, value) in facts.as_object().unwrap() {
        entry[key] = value.clone();
    }
    mock.set_route(
        "/backend-api/wham/accounts/check",
        status(
            200,
            json!({"accounts": [{"id": ACCOUNT, "workspace_backend_origin": mock.base_as_localhost(), "account_routing_override": "NO_CONSTRAINT"}]})
                .to_string(),
        ),
    );
    mock.set_route(
        "/backend-api/codex/models",
        status(200, json!({"models": [entry]}).to_string()),
    );
    let mut server = AppServer::builder()
        .codex_home(home)
        .env("CODEX_CA_CERTIFICATE", test_ca_path().display().to_string())
        .config(format!("chatgpt_base_url={}/backend-api", mock.base()))
        .config(format!("openai_base_url={}/v1", mock.base()))
        .config(format!("model={slug}"))
        .config("model_providers.openai.request_max_retries=0")
        .config("model_providers.openai.stream_max_retries=0")
        .spawn();
    server.initialize();
    server
}

/// A remote compaction's answer: its one `compaction` item.
fn compaction_reply(id: &str) -> Reply {
    sse(vec![
        ev_created(id),
        ev(
            "response.output_item.done",
            json!({"output_index": 0, "item": {"type": "compaction", "id": format!("cmp_{id}"), "encrypted_content": "ENC"}}),
        ),
        ev_completed_usage(id, 95, 0, 5, 0),
    ])
}

fn model_requests(mock: &MockServer) -> Vec<Value> {
    mock.requests_to("/responses")
        .iter()
        .map(|r| r.json())
        .collect()
}

#[test]
fn the_catalog_limit_triggers_and_its_window_is_reported() {
    let mock = MockServer::start_tls();
    let home = TempDir::new("compaction-catalog-limit");
    mock.push(answer("r1", "first answer", 1500));
    mock.push(compaction_reply("r2"));
    mock.push(answer("r3", "second answer", 200));
    let mut server = server_with_catalog(
        &mock,
        home.path(),
        "test-compact",
        json!({"context_window": 10000, "effective_context_window_percent": 80, "auto_compact_token_limit": 1000}),
    );
    let thread_id = start_thread(&mut server, json!({}));
    let first = turn(&mut server, &thread_id, "first question");
    // The window clients are told: the catalog's window × its effective percent.
    assert!(
        usages(&first)
            .iter()
            .all(|u| u["modelContextWindow"] == 8000),
        "{:?}",
        usages(&first)
    );
    // 1500 tokens reach the catalog's limit (1000), far below 90 % of the window (9000).
    let second = turn(&mut server, &thread_id, "second question");
    assert_eq!(item_events(&second)[0].1, "contextCompaction");
    let requests = model_requests(&mock);
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0]["model"], "test-compact");
    assert_eq!(
        requests[1]["input"].as_array().unwrap().last(),
        Some(&json!({"type": "compaction_trigger"}))
    );
}

#[test]
fn a_catalog_limit_above_ninety_percent_of_the_window_is_capped() {
    let mock = MockServer::start_tls();
    let home = TempDir::new("compaction-catalog-cap");
    mock.push(answer("r1", "one", 1799));
    mock.push(answer("r2", "two", 1800));
    mock.push(compaction_reply("r3"));
    mock.push(answer("r4", "three", 100));
    let mut server = server_with_catalog(
        &mock,
        home.path(),
        "test-capped",
        json!({"context_window": 2000, "auto_compact_token_limit": 1_000_000}),
    );
    let thread_id = start_thread(&mut server, json!({}));
    let first = turn(&mut server, &thread_id, "q1");
    // Without its own percent, the catalog's default (95 %).
    assert_eq!(usages(&first)[0]["modelContextWindow"], 1900);
    let second = turn(&mut server, &thread_id, "q2");
    assert!(
        !item_events(&second)
            .iter()
            .any(|(_, k)| k == "contextCompaction"),
        "1799 tokens are below 90 % of 2000"
    );
    let third = turn(&mut server, &thread_id, "q3");
    assert_eq!(item_events(&third)[0].1, "contextCompaction");
    let requests = model_requests(&mock);
    assert_eq!(requests.len(), 4);
    assert_eq!(
        requests[2]["input"].as_array().unwrap().last(),
        Some(&json!({"type": "compaction_trigger"}))
    );
}
