//! The ChatGPT backend's model catalog, workspace routing and rate limits (models.md §2, §5),
//! through the real binary against an HTTPS mock of the backend (trusted through
//! `CODEX_CA_CERTIFICATE`, or `SSL_CERT_FILE`): lazy fetching, the cache and its ETag, the
//! fallbacks (cache, then the bundled facts) for an unreachable or malformed catalog, an
//! unknown configured slug, the API-key path (no fetch), routing and its fallback,
//! `account/rateLimits/updated` and `account/rateLimits/read`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::suite::auth::fake_jwt;
use crate::suite::turns::{finish_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

const ACCOUNT: &str = "acc-1";

/// A backend catalog: a Lite default with its own prompt, a classic model, a hidden one.
fn catalog() -> Value {
    json!({"models": [
        {"slug": "test-hidden", "display_name": "Hidden", "visibility": "hide", "priority": 0,
         "default_reasoning_level": "low", "supported_reasoning_levels": [{"effort": "low", "description": "l"}]},
        {"slug": "test-lite", "display_name": "Test Lite", "description": "lite", "visibility": "list",
         "priority": 1, "use_responses_lite": true, "default_reasoning_level": "medium",
         "supported_reasoning_levels": [{"effort": "low", "description": "l"}, {"effort": "medium", "description": "m"}],
         "supports_reasoning_summaries": true, "default_reasoning_summary": "none",
         "support_verbosity": true, "default_verbosity": "low", "shell_type": "shell_command",
         "apply_patch_tool_type": "freeform", "context_window": 200000,
         "effective_context_window_percent": 90, "truncation_policy": {"mode": "tokens", "limit": 2000},
         "model_messages": {"instructions_template": "CATALOG PROMPT test-lite"},
         "a_future_field": {"kept": true}},
        {"slug": "test-classic", "display_name": "Test Classic", "visibility": "list", "priority": 2,
         "default_reasoning_level": "high", "supported_reasoning_levels": [{"effort": "high", "description": "h"}],
         "supports_reasoning_summaries": true, "default_reasoning_summary": "auto",
         "support_verbosity": true, "default_verbosity": "medium",
         "supports_parallel_tool_calls": true, "shell_type": "shell_command",
         "apply_patch_tool_type": "function", "context_window": 100000},
    ]})
}

fn catalog_reply() -> Reply {
    status_with_headers(200, &[("etag", "\"etag-1\"")], catalog().to_string())
}

fn token() -> String {
    fake_jwt(json!({
        "email": "user@example.com",
        "exp": 4_102_444_800i64,
        "https://api.openai.com/auth": {"chatgpt_account_id": ACCOUNT, "chatgpt_plan_type": "pro", "chatgpt_user_id": "u"},
    }))
}

fn write_managed_auth(home: &Path) {
    let auth = json!({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": null,
        "tokens": {"id_token": token(), "access_token": token(), "refresh_token": "rt", "account_id": ACCOUNT},
        "last_refresh": "2099-01-01T00:00:00Z",
    });
    std::fs::write(home.join("auth.json"), auth.to_string()).unwrap();
}

/// The accounts-check answer routing `ACCOUNT` to `origin`.
fn route_to(origin: &str) -> Reply {
    status(
        200,
        json!({"accounts": [{"id": ACCOUNT, "workspace_backend_origin": origin, "account_routing_override": "NO_CONSTRAINT"}]})
            .to_string(),
    )
}

/// A server over `home` whose ChatGPT and API bases are the HTTPS `mock`, trusting the test
/// CA through `CODEX_CA_CERTIFICATE`.
fn server_in(mock: &MockServer, home: &Path, extra: &[&str]) -> AppServer {
    let mut builder = AppServer::builder()
        .codex_home(home)
        .env("CODEX_CA_CERTIFICATE", test_ca_path().display().to_string())
        .config(format!("chatgpt_base_url={}/backend-api", mock.base()))
        .config(format!("openai_base_url={}/v1", mock.base()))
        .config("model_providers.openai.request_max_retries=0")
        .config("model_providers.openai.stream_max_retries=0");
    for kv in extra {
        builder = builder.config(*kv);
    }
    let mut server = builder.spawn();
    server.initialize();
    server
}

fn catalog_requests(mock: &MockServer) -> Vec<RecordedRequest> {
    mock.requests_to("/backend-api/codex/models")
}

fn list_ids(server: &mut AppServer) -> (Vec<String>, String) {
    let list = server.call("model/list", json!({})).unwrap();
    let data = list["data"].as_array().unwrap();
    let ids = data
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let default = data.iter().find(|m| m["isDefault"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (ids, default)
}

/// A text reply carrying rate-limit headers and a `codex.rate_limits` event.
fn reply_with_rate_limits(text: &str) -> Reply {
    with_headers(
        &[
            ("x-codex-primary-used-percent", "12.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1900000000"),
            ("x-codex-secondary-used-percent", "40"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-credits-has-credits", "true"),
            ("x-codex-credits-unlimited", "false"),
            ("x-codex-credits-balance", "17.5"),
        ],
        sse(vec![
            ev_created("r1"),
            ev(
                "codex.rate_limits",
                json!({"plan_type": "pro", "rate_limits": {"primary": {"used_percent": 33.0, "window_minutes": 300, "reset_at": 1900000001}}}),
            ),
            ev_message_added("m1"),
            ev_message_done("m1", text),
            ev_completed("r1"),
        ]),
    )
}

fn age_cache(home: &Path) {
    let path = home.join("models_cache.json");
    let mut cache: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cache["fetched_at"] = json!("2020-01-01T00:00:00.000Z");
    std::fs::write(&path, cache.to_string()).unwrap();
}

fn cache_of(home: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(home.join("models_cache.json")).unwrap()).unwrap()
}

#[test]
fn a_managed_login_fetches_the_catalog_lazily_and_it_drives_the_turn() {
    let mock = MockServer::start_tls();
    let routed = mock.base_as_localhost();
    mock.set_route("/backend-api/wham/accounts/check", route_to(&routed));
    mock.push_route("/backend-api/codex/models", catalog_reply());
    mock.push(reply_with_rate_limits("hello"));
    mock.set_route(
        "/backend-api/wham/usage",
        status(
            200,
            json!({"plan_type": "pro", "rate_limit": {"primary_window": {"used_percent": 21, "limit_window_seconds": 18000, "reset_at": 1900000000}},
                   "credits": {"has_credits": true, "unlimited": false, "balance": "9.5"}})
                .to_string(),
        ),
    );
    let home = TempDir::new("catalog-managed");
    write_managed_auth(home.path());
    let mut server = server_in(&mock, home.path(), &[]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        mock.requests().is_empty(),
        "nothing is fetched at startup: {:?}",
        mock.requests()
    );

    let (ids, default) = list_ids(&mut server);
    assert_eq!(
        ids,
        ["test-lite", "test-classic"],
        "hidden models are not listed"
    );
    assert_eq!(default, "test-lite");
    let fetches = catalog_requests(&mock);
    assert_eq!(fetches.len(), 1);
    let fetch = &fetches[0];
    assert_eq!(fetch.method, "GET");
    assert_eq!(
        fetch.path,
        "/backend-api/codex/models?client_version=0.169.0"
    );
    assert_eq!(fetch.header("version"), Some("0.169.0"));
    assert_eq!(fetch.header("chatgpt-account-id"), Some(ACCOUNT));
    assert_eq!(
        fetch.header("authorization"),
        Some(format!("Bearer {}", token()).as_str())
    );
    assert_eq!(fetch.header("originator"), Some("codex_lite_tests"));
    assert!(
        fetch
            .header("user-agent")
            .unwrap()
            .starts_with("codex_lite_tests/0.169.0 (")
    );
    // The workspace's origin (here `localhost`) receives the catalog and model requests.
    assert_eq!(
        mock.requests_to("/wham/accounts/check")[0].header("host"),
        Some(mock.base().trim_start_matches("https://"))
    );
    assert_eq!(
        fetch.header("host"),
        Some(routed.trim_start_matches("https://"))
    );
    let cache = cache_of(home.path());
    assert_eq!(cache["etag"], "\"etag-1\"");
    assert_eq!(cache["client_version"], "0.169.0");
    assert_eq!(cache["models"][1]["a_future_field"], json!({"kept": true}));

    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    assert_eq!(catalog_requests(&mock).len(), 1, "fresh for 5 minutes");
    let request = &mock.requests_to("/backend-api/codex/responses")[0];
    assert_eq!(
        request.header("host"),
        Some(routed.trim_start_matches("https://"))
    );
    assert_eq!(
        request.header("x-openai-internal-codex-responses-lite"),
        Some("true")
    );
    for name in ["session-id", "thread-id", "x-client-request-id"] {
        assert_eq!(request.header(name), Some(thread_id.as_str()), "{name}");
    }
    let body = request.json();
    assert_eq!(body["model"], "test-lite");
    assert_eq!(
        body["input"][1]["content"][0]["text"], "CATALOG PROMPT test-lite",
        "the catalog's base prompt"
    );
    assert_eq!(
        body["reasoning"],
        json!({"effort": "medium", "context": "all_turns"})
    );
    let usage = messages
        .iter()
        .find(|m| m["method"] == "thread/tokenUsage/updated")
        .unwrap();
    assert_eq!(usage["params"]["tokenUsage"]["modelContextWindow"], 180_000);
    // Rate limits: the headers, then the stream event's newer window, after the response.
    let updated = messages
        .iter()
        .find(|m| m["method"] == "account/rateLimits/updated")
        .expect("account/rateLimits/updated");
    let limits = &updated["params"]["rateLimits"];
    assert_eq!(limits["limitId"], "codex");
    assert_eq!(limits["primary"]["usedPercent"], 33);
    assert_eq!(limits["planType"], "pro");
    let completed_at = messages
        .iter()
        .position(|m| m["method"] == "turn/completed")
        .unwrap();
    let updated_at = messages
        .iter()
        .position(|m| m["method"] == "account/rateLimits/updated")
        .unwrap();
    assert!(updated_at < completed_at);

    let read = server.call("account/rateLimits/read", json!({})).unwrap();
    assert_eq!(read["rateLimits"]["primary"]["usedPercent"], 21);
    assert_eq!(read["rateLimits"]["primary"]["windowDurationMins"], 300);
    assert_eq!(read["rateLimits"]["credits"]["balance"], "9.5");
    assert_eq!(read["rateLimitsByLimitId"]["codex"], read["rateLimits"]);
    assert_eq!(
        mock.requests_to("/backend-api/wham/usage")[0].header("host"),
        Some(routed.trim_start_matches("https://"))
    );
}

#[test]
fn client_owned_tokens_a_classic_model_and_the_cache_revalidated_by_etag() {
    let mock = MockServer::start_tls();
    mock.set_route(
        "/backend-api/wham/accounts/check",
        route_to("NO_CONSTRAINT"),
    );
    mock.push_route("/backend-api/codex/models", catalog_reply());
    mock.push(text_reply("r1", "m1", &["one"]));
    let home = TempDir::new("catalog-external");
    let login = |server: &mut AppServer| {
        server
            .call(
                "account/login/start",
                json!({"type": "chatgptAuthTokens", "accessToken": token(), "chatgptAccountId": ACCOUNT}),
            )
            .unwrap();
        server.read_until("account/updated");
    };
    {
        let mut server = server_in(&mock, home.path(), &[]);
        login(&mut server);
        let thread_id = start_thread(&mut server, json!({"model": "test-classic"}));
        start_turn(&mut server, &thread_id, "hi");
        finish_turn(&mut server);
        let body = mock.requests_to("/backend-api/codex/responses")[0].json();
        assert_eq!(body["model"], "test-classic");
        assert!(
            body["instructions"]
                .as_str()
                .unwrap()
                .contains("coding agent"),
            "no catalog prompt: ours"
        );
        assert_eq!(
            body["reasoning"],
            json!({"effort": "high", "summary": "auto"})
        );
        assert_eq!(body["text"], json!({"verbosity": "medium"}));
        assert_eq!(body["parallel_tool_calls"], true);
        let apply_patch = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "apply_patch")
            .unwrap();
        assert_eq!(apply_patch["type"], "function", "the catalog says function");
    }
    assert_eq!(catalog_requests(&mock).len(), 1);
    // A fresh cache (under 5 minutes) is used as is by the next server, whose default is the
    // Lite model: client-owned tokens in the Lite shape.
    mock.push(text_reply("r2", "m2", &["two"]));
    {
        let mut server = server_in(&mock, home.path(), &[]);
        login(&mut server);
        assert_eq!(list_ids(&mut server).1, "test-lite");
        let thread_id = start_thread(&mut server, json!({}));
        start_turn(&mut server, &thread_id, "hi");
        finish_turn(&mut server);
        assert_eq!(catalog_requests(&mock).len(), 1);
        let request = &mock.requests_to("/backend-api/codex/responses")[1];
        assert_eq!(request.header("chatgpt-account-id"), Some(ACCOUNT));
        assert_eq!(
            request.header("x-openai-internal-codex-responses-lite"),
            Some("true")
        );
        assert_eq!(request.json()["model"], "test-lite");
        assert_eq!(request.json()["input"][0]["type"], "additional_tools");
    }
    // A stale one is revalidated with its ETag; 304 keeps it and renews its time.
    age_cache(home.path());
    mock.push_route("/backend-api/codex/models", status(304, ""));
    {
        let mut server = server_in(&mock, home.path(), &[]);
        login(&mut server);
        let (ids, default) = list_ids(&mut server);
        assert_eq!((ids.len(), default.as_str()), (2, "test-lite"));
        let fetches = catalog_requests(&mock);
        assert_eq!(fetches.len(), 2);
        assert_eq!(fetches[1].header("if-none-match"), Some("\"etag-1\""));
        let cache = cache_of(home.path());
        assert_ne!(cache["fetched_at"], "2020-01-01T00:00:00.000Z");
        assert_eq!(cache["models"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn an_unreachable_catalog_falls_back_to_the_cache_then_the_bundled_facts() {
    let mock = MockServer::start_tls();
    mock.set_route(
        "/backend-api/wham/accounts/check",
        route_to("NO_CONSTRAINT"),
    );
    mock.push_route("/backend-api/codex/models", catalog_reply());
    let home = TempDir::new("catalog-unreachable");
    write_managed_auth(home.path());
    {
        let mut server = server_in(&mock, home.path(), &[]);
        assert_eq!(list_ids(&mut server).1, "test-lite");
    }
    age_cache(home.path());
    mock.set_route(
        "/backend-api/codex/models",
        status(503, "{\"error\":\"down\"}"),
    );
    mock.push(text_reply("r1", "m1", &["from cache"]));
    {
        let mut server = server_in(&mock, home.path(), &[]);
        let thread_id = start_thread(&mut server, json!({}));
        start_turn(&mut server, &thread_id, "hi");
        let messages = finish_turn(&mut server);
        assert_eq!(
            messages.last().unwrap()["params"]["turn"]["status"],
            "completed"
        );
        let body = mock.requests_to("/backend-api/codex/responses")[0].json();
        assert_eq!(body["model"], "test-lite", "the cached default");
    }
    std::fs::remove_file(home.path().join("models_cache.json")).unwrap();
    mock.push(text_reply("r2", "m2", &["from bundled"]));
    {
        let mut server = server_in(&mock, home.path(), &[]);
        let (ids, default) = list_ids(&mut server);
        assert_eq!(default, "gpt-6.1-sol", "the bundled default");
        assert!(ids.contains(&"gpt-5.5".to_string()));
        let thread_id = start_thread(&mut server, json!({}));
        start_turn(&mut server, &thread_id, "hi");
        let messages = finish_turn(&mut server);
        assert_eq!(
            messages.last().unwrap()["params"]["turn"]["status"],
            "completed"
        );
        let body = mock.requests_to("/backend-api/codex/responses")[1].json();
        assert_eq!(body["model"], "gpt-6.1-sol");
        assert_eq!(body["input"][0]["type"], "additional_tools");
    }
    assert!(
        !home.path().join("models_cache.json").exists(),
        "a failed fetch writes no cache"
    );
}

#[test]
fn a_malformed_catalog_warns_and_keeps_the_cache() {
    let mock = MockServer::start_tls();
    mock.set_route(
        "/backend-api/wham/accounts/check",
        route_to("NO_CONSTRAINT"),
    );
    mock.push_route("/backend-api/codex/models", catalog_reply());
    let home = TempDir::new("catalog-malformed");
    write_managed_auth(home.path());
    {
        let mut server = server_in(&mock, home.path(), &[]);
        list_ids(&mut server);
    }
    age_cache(home.path());
    let before = cache_of(home.path());
    mock.set_route(
        "/backend-api/codex/models",
        status(200, r#"{"models":[{"slug":5}]}"#),
    );
    {
        let mut server = server_in(&mock, home.path(), &[]);
        let id = server.request("model/list", json!({}));
        let (warning, _) = server.read_until("warning");
        let message = warning["params"]["message"].as_str().unwrap();
        assert!(message.contains("malformed"), "{message}");
        assert!(message.contains("cached catalog"), "{message}");
        let list = server.read_response(&json!(id));
        assert_eq!(list["result"]["data"][0]["id"], "test-lite");
        assert_eq!(cache_of(home.path()), before, "the cache is left as it was");
    }
    std::fs::remove_file(home.path().join("models_cache.json")).unwrap();
    {
        let mut server = server_in(&mock, home.path(), &[]);
        let id = server.request("model/list", json!({}));
        let (warning, _) = server.read_until("warning");
        let message = warning["params"]["message"].as_str().unwrap();
        assert!(message.contains("built-in catalog"), "{message}");
        let list = server.read_response(&json!(id));
        assert_eq!(list["result"]["data"][0]["id"], "gpt-6.1-sol");
    }
}

#[test]
fn an_unknown_configured_slug_runs_with_fallback_metadata_and_one_warning() {
    let mock = MockServer::start_tls();
    mock.set_route(
        "/backend-api/wham/accounts/check",
        route_to("NO_CONSTRAINT"),
    );
    mock.push_route("/backend-api/codex/models", catalog_reply());
    mock.push(text_reply("r1", "m1", &["one"]));
    mock.push(text_reply("r2", "m2", &["two"]));
    let home = TempDir::new("catalog-unknown");
    write_managed_auth(home.path());
    let mut server = server_in(&mock, home.path(), &["model=no-such-model"]);
    let result = server.call("thread/start", json!({})).unwrap();
    let (warning, _) = server.read_until("warning");
    assert_eq!(warning["params"]["threadId"], result["thread"]["id"]);
    assert!(
        warning["params"]["message"]
            .as_str()
            .unwrap()
            .contains("`no-such-model`")
    );
    let thread_id = result["thread"]["id"].as_str().unwrap().to_string();
    for text in ["a", "b"] {
        start_turn(&mut server, &thread_id, text);
        let messages = finish_turn(&mut server);
        assert!(
            !messages.iter().any(|m| m["method"] == "warning"),
            "one warning per thread"
        );
    }
    let body = mock.requests_to("/backend-api/codex/responses")[0].json();
    assert_eq!(body["model"], "no-such-model");
    assert_eq!(body["reasoning"], json!({"summary": "auto"}));
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    let (ids, _) = list_ids(&mut server);
    assert!(!ids.contains(&"no-such-model".to_string()));
}

#[test]
fn a_failed_workspace_discovery_falls_back_to_the_configured_base_with_one_warning() {
    let mock = MockServer::start_tls();
    mock.set_route(
        "/backend-api/wham/accounts/check",
        status(500, "{\"error\":\"boom\"}"),
    );
    mock.set_route("/backend-api/codex/models", catalog_reply());
    mock.push(text_reply("r1", "m1", &["one"]));
    mock.push(text_reply("r2", "m2", &["two"]));
    let home = TempDir::new("catalog-routing");
    write_managed_auth(home.path());
    let mut server = server_in(&mock, home.path(), &[]);
    let id = server.request("thread/start", json!({}));
    let (warning, _) = server.read_until("warning");
    let message = warning["params"]["message"].as_str().unwrap();
    assert!(message.contains("Workspace routing"), "{message}");
    assert!(message.contains(ACCOUNT), "{message}");
    let thread_id = server.read_response(&json!(id))["result"]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for text in ["a", "b"] {
        start_turn(&mut server, &thread_id, text);
        let messages = finish_turn(&mut server);
        assert!(
            !messages.iter().any(|m| m["method"] == "warning"),
            "one warning"
        );
    }
    let requests = mock.requests_to("/backend-api/codex/responses");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("host"),
        Some(mock.base().trim_start_matches("https://")),
        "the configured base"
    );
}

#[test]
fn an_api_key_uses_the_bundled_catalog_and_has_no_usage_endpoint() {
    let mock = MockServer::start_tls();
    mock.push(reply_with_rate_limits("hi"));
    let home = TempDir::new("catalog-apikey");
    let mut server = server_in(&mock, home.path(), &[]);
    server
        .call(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-test"}),
        )
        .unwrap();
    server.read_until("account/updated");
    assert_eq!(list_ids(&mut server).1, "gpt-6.1-sol");
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "account/rateLimits/updated")
    );
    let requests = mock.requests();
    assert!(
        requests.iter().all(|r| !r.path.contains("/models")),
        "no catalog fetch with an API key"
    );
    let request = &mock.requests_to("/v1/responses")[0];
    assert_eq!(request.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(request.header("version"), Some("0.169.0"));
    assert_eq!(
        request.header("x-openai-internal-codex-responses-lite"),
        Some("true")
    );
    let error = server
        .call("account/rateLimits/read", json!({}))
        .unwrap_err();
    assert_eq!(error["code"], -32600);
    assert_eq!(
        error["message"],
        "chatgpt authentication required to read rate limits"
    );
}

#[test]
fn tls_trusts_ssl_cert_file_and_refuses_an_unknown_ca() {
    let mock = MockServer::start_tls();
    mock.push(text_reply("r1", "m1", &["trusted"]));
    for trusted in [true, false] {
        let home = TempDir::new("catalog-tls");
        let mut builder = AppServer::builder()
            .codex_home(home.path())
            .config(format!("openai_base_url={}/v1", mock.base()))
            .config("model_providers.openai.request_max_retries=0")
            .config("model_providers.openai.stream_max_retries=0");
        if trusted {
            builder = builder.env("SSL_CERT_FILE", test_ca_path().display().to_string());
        } else {
            // A bundle without our test CA: the mock's certificate is not trusted.
            let other = home.path().join("other.pem");
            std::fs::write(&other, "").unwrap();
            builder = builder.env("SSL_CERT_FILE", other.display().to_string());
        }
        let mut server = builder.spawn();
        server.initialize();
        server
            .call(
                "account/login/start",
                json!({"type": "apiKey", "apiKey": "sk-test"}),
            )
            .unwrap();
        let thread_id = start_thread(&mut server, json!({"model": "gpt-5.5"}));
        start_turn(&mut server, &thread_id, "hi");
        let messages = finish_turn(&mut server);
        let turn = &messages.last().unwrap()["params"]["turn"];
        if trusted {
            assert_eq!(turn["status"], "completed", "{turn}");
        } else {
            assert_eq!(turn["status"], "failed", "{turn}");
            let message = turn["error"]["message"].as_str().unwrap().to_lowercase();
            assert!(
                message.contains("certificate") || message.contains("tls"),
                "{message}"
            );
        }
    }
    assert_eq!(mock.requests_to("/v1/responses").len(), 1);
}
