//! Authentication through the real binary (auth.md): logins per mode with their notification
//! order, the external-token refresh over the connection with every outcome, managed refresh,
//! browser and device-code logins against the mock issuer, rules across modes, and secrets.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::suite::turns::{finish_turn, last_turn, start_thread, start_turn};
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// An unsigned JWT with `payload` (the server reads claims without checking signatures).
pub fn fake_jwt(payload: Value) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        e.encode(br#"{"alg":"none","typ":"JWT"}"#),
        e.encode(payload.to_string())
    )
}

/// An access token for workspace `account` with `email` and `plan`.
fn chatgpt_token(tag: &str, account: &str, plan: &str) -> String {
    fake_jwt(json!({
        "email": format!("{tag}@example.com"),
        "exp": 4_102_444_800i64,
        "tag": tag,
        "https://api.openai.com/auth": {"chatgpt_account_id": account, "chatgpt_plan_type": plan, "chatgpt_user_id": "user-1"},
    }))
}

/// A server whose built-in `openai` provider talks to `mock` (ChatGPT backend and API base)
/// and whose OAuth issuer is `mock` too.
fn auth_server(mock: &MockServer, extra: &[&str]) -> AppServer {
    let mut builder = AppServer::builder()
        .config(format!("chatgpt_base_url={}/backend-api", mock.base()))
        .config(format!("openai_base_url={}/v1", mock.base()))
        .config(format!("chatgpt_auth_issuer={}", mock.base()))
        .config("login_callback_port=0")
        .config("model=mock-model")
        .config("model_providers.openai.request_max_retries=0")
        .config("model_providers.openai.stream_max_retries=0");
    for kv in extra {
        builder = builder.config(*kv);
    }
    let mut server = builder.spawn();
    server.initialize();
    server
}

fn login_external(server: &mut AppServer, token: &str, account: &str) {
    let result = server
        .call(
            "account/login/start",
            json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": account}),
        )
        .unwrap();
    assert_eq!(result, json!({"type": "chatgptAuthTokens"}));
    let (completed, _) = server.read_until("account/login/completed");
    assert_eq!(
        completed["params"],
        json!({"loginId": null, "success": true, "error": null})
    );
    server.read_until("account/updated");
}

/// The `(authorization, chatgpt-account-id)` of every model request.
fn model_request_auth(mock: &MockServer) -> Vec<(String, String)> {
    mock.requests_to("/responses")
        .iter()
        .map(|r| {
            (
                r.header("authorization").unwrap_or_default().to_string(),
                r.header("chatgpt-account-id")
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn unauthorized() -> Reply {
    status(401, r#"{"error":{"message":"token expired"}}"#)
}

#[test]
fn api_key_login_persists_and_is_used() {
    let mock = MockServer::start();
    mock.push(text_reply("r1", "m1", &["ok"]));
    let mut server = auth_server(&mock, &[]);
    assert_eq!(
        server.call("account/read", json!({})).unwrap(),
        json!({"account": null, "requiresOpenaiAuth": true})
    );
    let result = server
        .call(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-test-123"}),
        )
        .unwrap();
    assert_eq!(result, json!({"type": "apiKey"}));
    let (completed, _) = server.read_until("account/login/completed");
    assert_eq!(
        completed["params"],
        json!({"loginId": null, "success": true, "error": null})
    );
    let (updated, between) = server.read_until("account/updated");
    assert!(between.is_empty());
    assert_eq!(
        updated["params"],
        json!({"authMode": "apikey", "planType": null})
    );
    let auth_path = server.codex_home.join("auth.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&auth_path).unwrap()).unwrap();
    assert_eq!(saved["auth_mode"], "apikey");
    assert_eq!(saved["OPENAI_API_KEY"], "sk-test-123");
    if let Some(mode) = crate::support::os::mode_bits(&auth_path) {
        assert_eq!(mode, 0o600);
    }
    assert_eq!(
        server.call("account/read", json!({})).unwrap()["account"],
        json!({"type": "apiKey"})
    );

    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    finish_turn(&mut server);
    let request = &mock.requests_to("/responses")[0];
    assert_eq!(request.path, "/v1/responses");
    assert_eq!(request.header("authorization"), Some("Bearer sk-test-123"));
    assert_eq!(request.header("chatgpt-account-id"), None);

    // A new server over a CODEX_HOME holding that auth.json is still logged in.
    let saved = std::fs::read(&auth_path).unwrap();
    drop(server);
    let home = crate::support::TempDir::new("restart");
    std::fs::write(home.path().join("auth.json"), saved).unwrap();
    let mut again = AppServer::builder().codex_home(home.path()).spawn();
    again.initialize();
    let status = again
        .call("getAuthStatus", json!({"includeToken": true}))
        .unwrap();
    assert_eq!(
        status,
        json!({"authMethod": "apikey", "authToken": "sk-test-123", "requiresOpenaiAuth": true})
    );
}

#[test]
fn external_tokens_in_both_shapes_stay_in_memory() {
    let mock = MockServer::start();
    let mut server = auth_server(&mock, &[]);
    std::fs::write(
        server.codex_home.join("auth.json"),
        r#"{"OPENAI_API_KEY":"sk-on-disk"}"#,
    )
    .unwrap();
    let token = chatgpt_token("a", "org-1", "plus");
    let result = server
        .call("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}))
        .unwrap();
    assert_eq!(result, json!({"type": "chatgptAuthTokens"}));
    server.read_until("account/login/completed");
    let (updated, _) = server.read_until("account/updated");
    assert_eq!(
        updated["params"],
        json!({"authMode": "chatgptAuthTokens", "planType": "pro"})
    );
    let account = server
        .call("account/read", json!({"refreshToken": true}))
        .unwrap();
    assert_eq!(
        account["account"],
        json!({"type": "chatgpt", "email": "a@example.com", "planType": "pro"})
    );
    let status = server.call("getAuthStatus", json!({})).unwrap();
    assert_eq!(status["authMethod"], "chatgptAuthTokens");
    assert_eq!(status["authToken"], Value::Null);
    assert_eq!(
        std::fs::read_to_string(server.codex_home.join("auth.json")).unwrap(),
        r#"{"OPENAI_API_KEY":"sk-on-disk"}"#
    );

    // The original shape: account id and plan from the id_token's claims.
    let id_token = chatgpt_token("b", "org-9", "team");
    server
        .crafted()
        .call("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": chatgpt_token("c", "x", "free"), "idToken": id_token}))
        .unwrap();
    server.read_until("account/login/completed");
    let (updated, _) = server.read_until("account/updated");
    assert_eq!(updated["params"]["planType"], "team");
    let account = server.call("account/read", json!({})).unwrap();
    assert_eq!(account["account"]["email"], "b@example.com");
}

#[test]
fn external_login_errors_in_order() {
    let mock = MockServer::start();
    let token = chatgpt_token("a", "org-other", "plus");
    let mut server = auth_server(&mock, &["forced_chatgpt_workspace_id=[\"org-allowed\"]"]);
    let missing = server
        .call(
            "account/login/start",
            json!({"type": "chatgptAuthTokens", "accessToken": token}),
        )
        .unwrap_err();
    assert_eq!(missing["code"], -32602);
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("chatgptAccountId"),
        "{missing}"
    );
    let wrong = server
        .call("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": "org-other"}))
        .unwrap_err();
    assert_eq!(
        wrong,
        json!({"code": -32600, "message": "External auth must use one of workspace(s) [\"org-allowed\"], but received \"org-other\"."})
    );
    let not_jwt = server
        .call("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": "opaque", "chatgptAccountId": "org-allowed"}))
        .unwrap_err();
    assert_eq!(
        not_jwt,
        json!({"code": -32602, "message": "invalid ID token format"})
    );
    drop(server);
    let mut api_only = auth_server(&mock, &["forced_login_method=api"]);
    let disabled = api_only
        .call("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": "org-other"}))
        .unwrap_err();
    assert_eq!(
        disabled,
        json!({"code": -32600, "message": "External ChatGPT auth is disabled. Use API key login instead."})
    );
    let chatgpt = api_only
        .call("account/login/start", json!({"type": "chatgpt"}))
        .unwrap_err();
    assert_eq!(
        chatgpt["message"],
        "ChatGPT login is disabled. Use API key login instead."
    );
    let mut chatgpt_only = auth_server(&mock, &["forced_login_method=chatgpt"]);
    let api = chatgpt_only
        .call(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-x"}),
        )
        .unwrap_err();
    assert_eq!(
        api["message"],
        "API key login is disabled. Use ChatGPT login instead."
    );
}

#[test]
fn managed_logins_are_blocked_while_external_auth_is_active() {
    let mock = MockServer::start();
    let mut server = auth_server(&mock, &[]);
    login_external(&mut server, &chatgpt_token("a", "org-1", "plus"), "org-1");
    let text = "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.";
    for params in [
        json!({"type": "apiKey", "apiKey": "sk-1"}),
        json!({"type": "chatgpt"}),
        json!({"type": "chatgptDeviceCode"}),
    ] {
        let error = server.call("account/login/start", params).unwrap_err();
        assert_eq!(error, json!({"code": -32600, "message": text}));
    }
}

/// Runs one turn whose first model request gets 401, answering the refresh request with
/// `answer`; returns the refresh request, the turn's messages and the mock.
fn refresh_turn(
    answer: impl FnOnce(&mut AppServer, &Value),
    second_reply: Reply,
    extra: &[&str],
) -> (Value, Vec<Value>, MockServer) {
    let mock = MockServer::start();
    mock.push(unauthorized());
    mock.push(second_reply);
    let mut server = auth_server(&mock, extra);
    login_external(&mut server, &chatgpt_token("old", "org-1", "plus"), "org-1");
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let (request, _) = server.read_until("account/chatgptAuthTokens/refresh");
    assert_eq!(
        request["params"],
        json!({"reason": "unauthorized", "previousAccountId": "org-1"})
    );
    answer(&mut server, &request);
    let messages = finish_turn(&mut server);
    (request, messages, mock)
}

fn turn_error(messages: &[Value]) -> Value {
    let turn = last_turn(messages);
    assert_eq!(turn["status"], "failed", "{turn}");
    let errors: Vec<&Value> = messages.iter().filter(|m| m["method"] == "error").collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["params"]["willRetry"], false);
    turn["error"].clone()
}

#[test]
fn a_401_asks_the_client_for_new_tokens_and_retries() {
    let new = chatgpt_token("new", "org-2", "pro");
    let answer_token = new.clone();
    let (_, messages, mock) = refresh_turn(
        move |server, request| {
            server.answer(&request["id"], json!({"accessToken": answer_token, "chatgptAccountId": "org-2", "chatgptPlanType": "pro"}))
        },
        text_reply("r1", "m1", &["ok"]),
        &[],
    );
    assert_eq!(last_turn(&messages)["status"], "completed");
    let auth = model_request_auth(&mock);
    assert_eq!(auth.len(), 2);
    assert_eq!(
        auth[0],
        (
            format!("Bearer {}", chatgpt_token("old", "org-1", "plus")),
            "org-1".to_string()
        )
    );
    assert_eq!(auth[1], (format!("Bearer {new}"), "org-2".to_string()));
    assert_eq!(
        mock.requests_to("/responses")[0].path,
        "/backend-api/codex/responses"
    );
}

#[test]
fn the_original_answer_shape_is_accepted_too() {
    let new = chatgpt_token("new", "org-3", "team");
    let id_token = chatgpt_token("id", "org-3", "team");
    let (_, messages, mock) = refresh_turn(
        move |server, request| {
            server.crafted().answer(
                &request["id"],
                json!({"accessToken": new, "idToken": id_token}),
            )
        },
        text_reply("r1", "m1", &["ok"]),
        &[],
    );
    assert_eq!(last_turn(&messages)["status"], "completed");
    assert_eq!(model_request_auth(&mock)[1].1, "org-3");
}

/// How a test answers the refresh request.
type Answer = Box<dyn FnOnce(&mut AppServer, &Value)>;

#[test]
fn refresh_failures_fail_the_turn_with_their_message() {
    let other = chatgpt_token("o", "org-2", "plus");
    let cases: Vec<(Answer, &[&str], String)> = vec![
        (
            Box::new(|s, r| s.answer_error(&r["id"], -32000, "user is signed out")),
            &[],
            "auth refresh request failed: code=-32000: user is signed out".into(),
        ),
        (
            Box::new(|s, r| {
                s.crafted()
                    .answer(&r["id"], json!({"chatgptAccountId": "org-1"}))
            }),
            &[],
            "invalid auth refresh response".into(),
        ),
        (
            Box::new(|s, r| {
                s.answer(
                    &r["id"],
                    json!({"accessToken": "opaque", "chatgptAccountId": "org-1"}),
                )
            }),
            &[],
            "auth refresh returned invalid credentials".into(),
        ),
        (
            Box::new(move |s, r| {
                s.answer(
                    &r["id"],
                    json!({"accessToken": other, "chatgptAccountId": "org-2"}),
                )
            }),
            &["forced_chatgpt_workspace_id=\"org-1\""],
            "Login is restricted to workspace(s) org-1, but current credentials belong to org-2"
                .into(),
        ),
    ];
    for (answer, extra, want) in cases {
        let (_, messages, mock) =
            refresh_turn(answer, text_reply("r1", "m1", &["never sent"]), extra);
        let error = turn_error(&messages);
        assert_eq!(error["message"], want.as_str());
        assert_eq!(
            mock.requests_to("/responses").len(),
            1,
            "no retry after a failed refresh"
        );
    }
}

#[test]
fn a_second_401_after_the_refresh_fails_the_turn() {
    let new = chatgpt_token("new", "org-1", "plus");
    let (_, messages, _mock) = refresh_turn(
        move |server, request| {
            server.answer(
                &request["id"],
                json!({"accessToken": new, "chatgptAccountId": "org-1"}),
            )
        },
        unauthorized(),
        &[],
    );
    let error = turn_error(&messages);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("unexpected status 401 Unauthorized: "),
        "{error}"
    );
    assert_eq!(
        error["codexErrorInfo"],
        json!({"httpConnectionFailed": {"httpStatusCode": 401}})
    );
}

#[test]
fn an_unanswered_refresh_times_out_while_other_requests_are_served() {
    let mock = MockServer::start();
    mock.push(unauthorized());
    let mut server = auth_server(&mock, &[]);
    login_external(&mut server, &chatgpt_token("old", "org-1", "plus"), "org-1");
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let (request, _) = server.read_until("account/chatgptAuthTokens/refresh");
    let asked = Instant::now();
    // Meanwhile the server answers at once.
    let account = server.call("account/read", json!({})).unwrap();
    assert_eq!(account["account"]["type"], "chatgpt");
    server.call("model/list", json!({"limit": 1})).unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "answered while the refresh is pending"
    );
    let messages = finish_turn(&mut server);
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_secs(9), "{waited:?}");
    let error = turn_error(&messages);
    assert_eq!(error["message"], "auth refresh request timed out after 10s");
    // The late answer is ignored, and the connection goes on.
    server.answer(
        &request["id"],
        json!({"accessToken": chatgpt_token("late", "org-1", "plus"), "chatgptAccountId": "org-1"}),
    );
    server.call("account/read", json!({})).unwrap();
    let stderr = server.stderr_within("not pending", Duration::from_secs(10));
    assert!(stderr.contains("not pending"), "{stderr}");
    assert_eq!(mock.requests_to("/responses").len(), 1);
}

#[test]
fn concurrent_401s_share_one_refresh() {
    let mock = MockServer::start();
    let old = chatgpt_token("old", "org-1", "plus");
    let new = chatgpt_token("new", "org-1", "plus");
    let old_bearer = format!("Bearer {old}");
    let slow_text = |id: &'static str| Reply::Sse {
        events: vec![
            ev_created(id),
            ev_message_added(id),
            ev_text_delta(id, "x"),
            ev_message_done(id, "x"),
            ev_completed(id),
        ],
        delay: Duration::from_millis(50),
        end: End::Close,
    };
    mock.set_route(
        "/backend-api/codex/responses",
        Reply::Dynamic(Arc::new(move |req: &RecordedRequest| {
            if req.header("authorization") == Some(old_bearer.as_str()) {
                status(401, r#"{"error":{"message":"expired"}}"#)
            } else {
                slow_text("r")
            }
        })),
    );
    let mut server = auth_server(&mock, &[]);
    login_external(&mut server, &old, "org-1");
    let first = start_thread(&mut server, json!({}));
    let second = start_thread(&mut server, json!({}));
    start_turn(&mut server, &first, "a");
    start_turn(&mut server, &second, "b");
    let (request, _) = server.read_until("account/chatgptAuthTokens/refresh");
    // Give the other turn time to hit its 401 and join the pending refresh.
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.requests_to("/responses").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    server.answer(
        &request["id"],
        json!({"accessToken": new, "chatgptAccountId": "org-1"}),
    );
    let mut statuses = Vec::new();
    let mut refreshes = 1;
    while statuses.len() < 2 {
        let (done, before) = server.read_until("turn/completed");
        refreshes += before
            .iter()
            .filter(|m| m["method"] == "account/chatgptAuthTokens/refresh")
            .count();
        statuses.push(
            done["params"]["turn"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(statuses, ["completed", "completed"]);
    assert_eq!(refreshes, 1, "one refresh request for both 401s");
    let bearers: Vec<String> = model_request_auth(&mock)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        bearers
            .iter()
            .filter(|b| **b == format!("Bearer {new}"))
            .count(),
        2
    );
}

#[test]
fn logout_clears_everything() {
    let mock = MockServer::start();
    mock.push_route("/oauth/revoke", status(200, "{}"));
    let mut server = auth_server(&mock, &[]);
    login_external(&mut server, &chatgpt_token("a", "org-1", "plus"), "org-1");
    assert_eq!(server.call("account/logout", json!({})).unwrap(), json!({}));
    let (updated, _) = server.read_until("account/updated");
    assert_eq!(
        updated["params"],
        json!({"authMode": null, "planType": null})
    );
    assert_eq!(
        server.call("account/read", json!({})).unwrap()["account"],
        Value::Null
    );

    server
        .call(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-gone"}),
        )
        .unwrap();
    server.read_until("account/updated");
    assert!(server.codex_home.join("auth.json").exists());
    server.call("account/logout", json!({})).unwrap();
    server.read_until("account/updated");
    assert!(!server.codex_home.join("auth.json").exists());
    assert_eq!(
        server
            .call("getAuthStatus", json!({"includeToken": true}))
            .unwrap()["authMethod"],
        Value::Null
    );
}

/// The token endpoint of the mock issuer: the authorization-code grant answers `tokens`, the
/// API-key exchange answers an API key, the refresh grant answers `refreshed`.
fn token_endpoint(tokens: Value, refreshed: Value) -> Reply {
    Reply::Dynamic(Arc::new(move |req: &RecordedRequest| {
        let body = req.text();
        if body.contains("token-exchange") {
            status(200, json!({"access_token": "sk-exchanged"}).to_string())
        } else if body.contains("authorization_code") {
            status(200, tokens.to_string())
        } else if body.contains("refresh_token") {
            status(200, refreshed.to_string())
        } else {
            status(400, r#"{"error":"unsupported_grant_type"}"#)
        }
    }))
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap();
    let mut out = Vec::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let port = host.rsplit_once(':').unwrap().1;
    let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

fn managed_tokens(tag: &str) -> Value {
    json!({"id_token": chatgpt_token(tag, "org-1", "plus"), "access_token": chatgpt_token(&format!("{tag}-access"), "org-1", "plus"), "refresh_token": format!("rt-{tag}")})
}

#[test]
fn browser_login_end_to_end() {
    let mock = MockServer::start();
    mock.set_route(
        "/oauth/token",
        token_endpoint(managed_tokens("web"), json!({})),
    );
    let mut server = auth_server(&mock, &[]);
    let result = server
        .call("account/login/start", json!({"type": "chatgpt"}))
        .unwrap();
    assert_eq!(result["type"], "chatgpt");
    let login_id = result["loginId"].as_str().unwrap().to_string();
    let auth_url = result["authUrl"].as_str().unwrap().to_string();
    assert!(
        auth_url.starts_with(&format!("{}/oauth/authorize?", mock.base())),
        "{auth_url}"
    );
    assert_eq!(
        query_param(&auth_url, "client_id"),
        "app_EMoamEEZ73f0CkXaXp7hrann"
    );
    assert_eq!(query_param(&auth_url, "code_challenge_method"), "S256");
    assert_eq!(
        query_param(&auth_url, "scope"),
        "openid profile email offline_access"
    );
    assert_eq!(query_param(&auth_url, "originator"), "codex_lite_tests");
    let redirect = query_param(&auth_url, "redirect_uri");
    assert!(
        redirect.starts_with("http://localhost:") && redirect.ends_with("/auth/callback"),
        "{redirect}"
    );
    let state = query_param(&auth_url, "state");
    let challenge = query_param(&auth_url, "code_challenge");

    let wrong = http_get(&format!("{redirect}?code=abc&state=wrong"));
    assert!(wrong.starts_with("HTTP/1.1 400"), "{wrong}");
    let ok = http_get(&format!("{redirect}?code=the-code&state={state}"));
    assert!(ok.starts_with("HTTP/1.1 302"), "{ok}");
    let (completed, _) = server.read_until("account/login/completed");
    assert_eq!(
        completed["params"],
        json!({"loginId": login_id, "success": true, "error": null})
    );
    let (updated, _) = server.read_until("account/updated");
    assert_eq!(
        updated["params"],
        json!({"authMode": "chatgpt", "planType": "plus"})
    );

    let token_request = mock
        .requests_to("/oauth/token")
        .into_iter()
        .find(|r| r.text().contains("authorization_code"))
        .unwrap();
    let form = token_request.text();
    assert!(form.contains("code=the-code"), "{form}");
    let verifier = form
        .split('&')
        .find_map(|kv| kv.strip_prefix("code_verifier="))
        .unwrap();
    use sha2::Digest;
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge, expected, "the verifier matches the challenge");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(server.codex_home.join("auth.json")).unwrap())
            .unwrap();
    assert_eq!(saved["auth_mode"], "chatgpt");
    assert_eq!(saved["tokens"]["refresh_token"], "rt-web");
    assert_eq!(saved["tokens"]["account_id"], "org-1");
    assert_eq!(saved["OPENAI_API_KEY"], "sk-exchanged");
    let account = server.call("account/read", json!({})).unwrap();
    assert_eq!(
        account["account"],
        json!({"type": "chatgpt", "email": "web@example.com", "planType": "plus"})
    );
}

#[test]
fn a_second_browser_login_replaces_the_first_and_cancel_works() {
    let mock = MockServer::start();
    let mut server = auth_server(&mock, &[]);
    let first = server
        .call("account/login/start", json!({"type": "chatgpt"}))
        .unwrap();
    let second = server
        .call("account/login/start", json!({"type": "chatgpt"}))
        .unwrap();
    let (completed, _) = server.read_until("account/login/completed");
    assert_eq!(completed["params"]["loginId"], first["loginId"]);
    assert_eq!(completed["params"]["success"], false);
    let canceled = server
        .call(
            "account/login/cancel",
            json!({"loginId": second["loginId"]}),
        )
        .unwrap();
    assert_eq!(canceled, json!({"status": "canceled"}));
    let (completed, _) = server.read_until("account/login/completed");
    assert_eq!(completed["params"]["loginId"], second["loginId"]);
    assert_eq!(completed["params"]["success"], false);
    let unknown = server
        .call("account/login/cancel", json!({"loginId": "nope"}))
        .unwrap();
    assert_eq!(unknown, json!({"status": "notFound"}));
}

#[test]
fn device_code_login() {
    let mock = MockServer::start();
    mock.push_route(
        "/api/accounts/deviceauth/usercode",
        status(
            200,
            r#"{"device_auth_id":"dev-1","user_code":"ABCD-EFGH","interval":"0"}"#,
        ),
    );
    mock.push_route(
        "/api/accounts/deviceauth/token",
        status(403, r#"{"error":"pending"}"#),
    );
    mock.push_route("/api/accounts/deviceauth/token", status(200, r#"{"authorization_code":"dev-code","code_verifier":"dev-verifier","code_challenge":"x"}"#));
    mock.set_route(
        "/oauth/token",
        token_endpoint(managed_tokens("dev"), json!({})),
    );
    let mut server = auth_server(&mock, &[]);
    let result = server
        .call("account/login/start", json!({"type": "chatgptDeviceCode"}))
        .unwrap();
    assert_eq!(result["type"], "chatgptDeviceCode");
    assert_eq!(result["userCode"], "ABCD-EFGH");
    assert_eq!(
        result["verificationUrl"],
        format!("{}/codex/device", mock.base())
    );
    let (completed, _) = server.read_until("account/login/completed");
    assert_eq!(
        completed["params"],
        json!({"loginId": result["loginId"], "success": true, "error": null})
    );
    let form = mock
        .requests_to("/oauth/token")
        .into_iter()
        .find(|r| r.text().contains("authorization_code"))
        .unwrap()
        .text();
    assert!(
        form.contains("code=dev-code") && form.contains("code_verifier=dev-verifier"),
        "{form}"
    );
    assert!(form.contains("deviceauth%2Fcallback"), "{form}");
}

fn write_managed_auth(home: &std::path::Path, access: &str, last_refresh: &str) {
    let auth = json!({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": null,
        "tokens": {"id_token": chatgpt_token("id", "org-1", "plus"), "access_token": access, "refresh_token": "rt-1", "account_id": "org-1"},
        "last_refresh": last_refresh,
    });
    std::fs::write(home.join("auth.json"), auth.to_string()).unwrap();
}

fn managed_server(
    mock: &MockServer,
    access: &str,
    last_refresh: &str,
) -> (AppServer, crate::support::TempDir) {
    let home = crate::support::TempDir::new("managed");
    write_managed_auth(home.path(), access, last_refresh);
    let mut server = AppServer::builder()
        .codex_home(home.path())
        .config(format!("chatgpt_base_url={}/backend-api", mock.base()))
        .config(format!("chatgpt_auth_issuer={}", mock.base()))
        .config("model=mock-model")
        .config("model_providers.openai.request_max_retries=0")
        .spawn();
    server.initialize();
    (server, home)
}

#[test]
fn managed_401_refreshes_with_the_refresh_token_and_retries() {
    let mock = MockServer::start();
    let old = chatgpt_token("old", "org-1", "plus");
    let refreshed =
        json!({"access_token": chatgpt_token("fresh", "org-1", "plus"), "refresh_token": "rt-2"});
    mock.set_route("/oauth/token", token_endpoint(json!({}), refreshed.clone()));
    mock.push(unauthorized());
    mock.push(text_reply("r1", "m1", &["ok"]));
    let (mut server, _home) = managed_server(&mock, &old, &now_rfc3339());
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let grant = mock.requests_to("/oauth/token")[0].json();
    assert_eq!(
        grant,
        json!({"client_id": "app_EMoamEEZ73f0CkXaXp7hrann", "grant_type": "refresh_token", "refresh_token": "rt-1"})
    );
    assert_eq!(
        model_request_auth(&mock)[1].0,
        format!("Bearer {}", refreshed["access_token"].as_str().unwrap())
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(server.codex_home.join("auth.json")).unwrap())
            .unwrap();
    assert_eq!(saved["tokens"]["refresh_token"], "rt-2");
    assert_eq!(saved["tokens"]["access_token"], refreshed["access_token"]);
}

#[test]
fn managed_tokens_near_expiry_are_refreshed_before_the_request() {
    let mock = MockServer::start();
    let soon = fake_jwt(
        json!({"exp": now_secs() + 60, "https://api.openai.com/auth": {"chatgpt_account_id": "org-1"}}),
    );
    let refreshed = json!({"access_token": chatgpt_token("fresh", "org-1", "plus")});
    mock.set_route("/oauth/token", token_endpoint(json!({}), refreshed.clone()));
    mock.push(text_reply("r1", "m1", &["ok"]));
    let (mut server, _home) = managed_server(&mock, &soon, &now_rfc3339());
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    finish_turn(&mut server);
    assert_eq!(mock.requests_to("/oauth/token").len(), 1);
    assert_eq!(
        model_request_auth(&mock)[0].0,
        format!("Bearer {}", refreshed["access_token"].as_str().unwrap())
    );
}

#[test]
fn old_managed_tokens_without_expiry_are_refreshed_after_eight_days() {
    let mock = MockServer::start();
    mock.set_route(
        "/oauth/token",
        token_endpoint(json!({}), json!({"access_token": "opaque-fresh"})),
    );
    mock.push(text_reply("r1", "m1", &["ok"]));
    let (mut server, _home) = managed_server(&mock, "opaque-old", "2020-01-01T00:00:00Z");
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    finish_turn(&mut server);
    assert_eq!(model_request_auth(&mock)[0].0, "Bearer opaque-fresh");
}

#[test]
fn account_read_with_refresh_token_refreshes_managed_tokens_first() {
    let mock = MockServer::start();
    mock.set_route(
        "/oauth/token",
        token_endpoint(
            json!({}),
            json!({"access_token": chatgpt_token("fresh", "org-1", "team")}),
        ),
    );
    let (mut server, home) = managed_server(
        &mock,
        &chatgpt_token("old", "org-1", "plus"),
        &now_rfc3339(),
    );
    let plain = server.call("account/read", json!({})).unwrap();
    assert_eq!(plain["account"]["type"], "chatgpt");
    assert!(mock.requests_to("/oauth/token").is_empty());
    let refreshed = server
        .call("account/read", json!({"refreshToken": true}))
        .unwrap();
    assert_eq!(refreshed["account"]["type"], "chatgpt");
    assert_eq!(mock.requests_to("/oauth/token").len(), 1);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("auth.json")).unwrap()).unwrap();
    assert_eq!(
        saved["tokens"]["access_token"],
        chatgpt_token("fresh", "org-1", "team")
    );
}

#[test]
fn a_permanently_failed_refresh_asks_the_user_to_log_in_again() {
    let mock = MockServer::start();
    mock.set_route(
        "/oauth/token",
        status(
            401,
            r#"{"error":{"code":"refresh_token_expired","message":"expired"}}"#,
        ),
    );
    mock.push(unauthorized());
    let (mut server, _home) = managed_server(
        &mock,
        &chatgpt_token("old", "org-1", "plus"),
        &now_rfc3339(),
    );
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    let error = turn_error(&messages);
    assert_eq!(error["codexErrorInfo"], "unauthorized");
    assert!(
        error["message"].as_str().unwrap().contains("log"),
        "{error}"
    );
    assert_eq!(mock.requests_to("/oauth/token").len(), 1, "not retried");
}

/// Now, RFC 3339 (UTC).
fn now_rfc3339() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Now, unix seconds.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn secrets_never_leak() {
    let mock = MockServer::start();
    let old = chatgpt_token("leak-old", "org-1", "plus");
    let new = chatgpt_token("leak-new", "org-1", "plus");
    mock.push(unauthorized());
    mock.push(text_reply("r1", "m1", &["ok"]));
    let mut server = AppServer::builder()
        .config(format!("chatgpt_base_url={}/backend-api", mock.base()))
        .config("model=mock-model")
        .env("RUST_LOG", "debug")
        .spawn();
    server.initialize();
    login_external(&mut server, &old, "org-1");
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let (request, _) = server.read_until("account/chatgptAuthTokens/refresh");
    server.answer(
        &request["id"],
        json!({"accessToken": new, "chatgptAccountId": "org-1"}),
    );
    finish_turn(&mut server);
    server.call("getAuthStatus", json!({})).unwrap();
    server.call("account/read", json!({})).unwrap();
    // An API key, too, stays out of everything but auth.json.
    let api_key = "sk-leak-check-4711";
    server.call("account/logout", json!({})).unwrap();
    server
        .call(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": api_key}),
        )
        .unwrap();
    server.read_until("account/updated");
    server.call("getAuthStatus", json!({})).unwrap();
    let home = server.codex_home.clone();
    server.close_stdin();
    server.wait_exit(Duration::from_secs(10)).unwrap();
    let stderr = server.stderr();
    assert!(!stderr.contains(api_key), "api key in stderr");
    let saved = std::fs::read_to_string(home.join("auth.json")).unwrap();
    assert!(saved.contains(api_key), "auth.json is where the key lives");
    std::fs::remove_file(home.join("auth.json")).unwrap();
    for secret in [old.as_str(), new.as_str(), api_key] {
        assert!(!stderr.contains(secret), "secret in stderr");
        let mut stack = vec![home.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    assert!(!text.contains(secret), "secret in {}", path.display());
                }
            }
        }
    }
    let transcript = std::fs::read_to_string(
        crate::support::app_server::transcripts_dir().join("suite__auth__secrets_never_leak.jsonl"),
    )
    .unwrap();
    for line in transcript.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        if entry["dir"] == "out" {
            let raw = entry["raw"].as_str().unwrap();
            assert!(
                !raw.contains(old.as_str()) && !raw.contains(new.as_str()),
                "server sent a token: {raw}"
            );
        }
    }
}

#[test]
fn concurrent_managed_401s_use_one_refresh_grant() {
    let mock = MockServer::start();
    let old = chatgpt_token("old", "org-1", "plus");
    let fresh = chatgpt_token("fresh", "org-1", "plus");
    let old_bearer = format!("Bearer {old}");
    mock.set_route(
        "/oauth/token",
        Reply::Dynamic(Arc::new({
            let fresh = fresh.clone();
            let used = std::sync::atomic::AtomicBool::new(false);
            move |req: &RecordedRequest| {
                let first_use = !used.swap(true, std::sync::atomic::Ordering::SeqCst);
                if req.text().contains("\"rt-1\"") && first_use {
                    // Rotating refresh tokens: a second grant with rt-1 would be refused.
                    std::thread::sleep(Duration::from_millis(300));
                    status(
                        200,
                        json!({"access_token": fresh, "refresh_token": "rt-2"}).to_string(),
                    )
                } else {
                    status(401, r#"{"error":{"code":"refresh_token_reused"}}"#)
                }
            }
        })),
    );
    mock.set_route(
        "/backend-api/codex/responses",
        Reply::Dynamic(Arc::new(move |req: &RecordedRequest| {
            if req.header("authorization") == Some(old_bearer.as_str()) {
                status(401, r#"{"error":{"message":"expired"}}"#)
            } else {
                text_reply("r", "m", &["ok"])
            }
        })),
    );
    let (mut server, _home) = managed_server(&mock, &old, &now_rfc3339());
    let first = start_thread(&mut server, json!({}));
    let second = start_thread(&mut server, json!({}));
    start_turn(&mut server, &first, "a");
    start_turn(&mut server, &second, "b");
    let mut statuses = Vec::new();
    while statuses.len() < 2 {
        let (done, _) = server.read_until("turn/completed");
        statuses.push(
            done["params"]["turn"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(statuses, ["completed", "completed"]);
    assert_eq!(
        mock.requests_to("/oauth/token").len(),
        1,
        "one grant for both 401s"
    );
}

#[test]
fn an_instantly_approved_device_login_still_answers_first() {
    let mock = MockServer::start();
    mock.push_route(
        "/api/accounts/deviceauth/usercode",
        status(
            200,
            r#"{"device_auth_id":"dev-1","user_code":"QUICK-1","interval":"0"}"#,
        ),
    );
    mock.push_route(
        "/api/accounts/deviceauth/token",
        status(
            200,
            r#"{"authorization_code":"dev-code","code_verifier":"dev-verifier"}"#,
        ),
    );
    mock.set_route(
        "/oauth/token",
        token_endpoint(managed_tokens("quick"), json!({})),
    );
    let mut server = auth_server(&mock, &[]);
    let id = server.request("account/login/start", json!({"type": "chatgptDeviceCode"}));
    let first = server
        .read_message(Duration::from_secs(20))
        .expect("an answer");
    assert_eq!(first["id"], json!(id), "the answer comes first: {first}");
    let (completed, _) = server.read_until("account/login/completed");
    assert_eq!(completed["params"]["loginId"], first["result"]["loginId"]);
    assert_eq!(completed["params"]["success"], true);
}
