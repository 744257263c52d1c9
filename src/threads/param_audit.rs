//! No silent ignores (context.md §3): the params of thread/start, thread/resume, thread/fork and
//! turn/start that we accept but do not honour. Refusing them would break clients (the official
//! SDK sends some by default), so each one becomes a `warning` notification, once per thread and
//! param. The tables below are the audit of the schema's `ThreadStartParams`,
//! `ThreadResumeParams`, `ThreadForkParams` and `TurnStartParams` against what the handlers
//! use: a param missing from its table, or given a value we do not implement, is reported.

use serde_json::Value;

/// Params thread/start, thread/resume and thread/fork honour.
const THREAD_PARAMS: &[&str] = &[
    "approvalPolicy",
    "baseInstructions",
    "config",
    "cwd",
    "developerInstructions",
    "model",
    "modelProvider",
    "sandbox",
];

/// What each method honours beyond [`THREAD_PARAMS`] (turn/start: its own list).
fn honoured(method: &str) -> Option<(&'static [&'static str], bool)> {
    Some(match method {
        "thread/start" => (&["ephemeral", "dynamicTools"], true),
        "thread/resume" => (&["threadId", "excludeTurns"], true),
        "thread/fork" => (
            &["threadId", "ephemeral", "excludeTurns", "lastTurnId"],
            true,
        ),
        "turn/start" => (
            &[
                "threadId",
                "input",
                "cwd",
                "approvalPolicy",
                "sandboxPolicy",
                "model",
                "effort",
                "summary",
                "outputSchema",
            ],
            false,
        ),
        "thread/items/list" => (
            &["threadId", "cursor", "limit", "sortDirection", "turnId"],
            false,
        ),
        _ => return None,
    })
}

/// One message per param of `method` that is given (not null) but not honoured, in the order
/// of the request; nothing for methods not audited.
pub fn unhonoured(method: &str, params: Option<&Value>) -> Vec<(String, String)> {
    let (Some((own, shares_thread_params)), Some(Value::Object(map))) = (honoured(method), params)
    else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        if key == "approvalsReviewer" {
            // `user` is what we do: the client approves. Automatic reviewers are not built.
            if value.as_str() != Some("user") {
                notes.push((
                    key.clone(),
                    format!("{method}: approvalsReviewer {value} is not supported; approval requests go to the client"),
                ));
            }
            continue;
        }
        let known = own.contains(&key.as_str())
            || (shares_thread_params && THREAD_PARAMS.contains(&key.as_str()));
        if !known {
            notes.push((
                key.clone(),
                format!("{method}: `{key}` is not supported by codex-lite and was ignored"),
            ));
        }
    }
    if let Some(Value::Object(config)) = map.get("config") {
        for key in config.keys() {
            let path = crate::config::override_from_json(key, &Value::Bool(true))
                .ok()
                .flatten()
                .map(|(path, _)| path);
            if path.as_ref().and_then(|p| p.first()).map(String::as_str) == Some("mcp_servers") {
                // MCP servers are shared by every thread of the process (mcp.md §2).
                notes.push((
                    format!("config.{key}"),
                    format!("{method}: config key `{key}` is ignored: MCP servers are shared by all threads; configure them in config.toml and use config/mcpServer/reload"),
                ));
                continue;
            }
            if let Some(unknown) = path.and_then(|p| crate::config::unknown_override_key(&p)) {
                notes.push((
                    format!("config.{unknown}"),
                    format!("{method}: config key `{unknown}` is not supported by codex-lite and was ignored"),
                ));
            }
        }
    }
    notes
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(method: &str, params: Value) -> Vec<String> {
        unhonoured(method, Some(&params))
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    #[test]
    fn audit_tables() {
        let cases: &[(&str, Value, &[&str])] = &[
            (
                "thread/start",
                json!({"cwd": "/", "model": "m", "ephemeral": true, "dynamicTools": []}),
                &[],
            ),
            (
                "thread/start",
                json!({"personality": "friendly", "approvalsReviewer": "auto_review", "serviceTier": "fast", "serviceName": "svc", "threadSource": null}),
                &[
                    "approvalsReviewer",
                    "personality",
                    "serviceName",
                    "serviceTier",
                ],
            ),
            ("thread/start", json!({"approvalsReviewer": "user"}), &[]),
            (
                "thread/start",
                json!({"config": {"model": "x", "web_search": "live", "nope": 1, "tools.other": true}}),
                &["config.nope", "config.tools.other"],
            ),
            (
                "thread/start",
                json!({"config": {"mcp_servers.x": {"command": "y"}, "mcp_servers": {}}}),
                &["config.mcp_servers", "config.mcp_servers.x"],
            ),
            (
                "thread/resume",
                json!({"threadId": "t", "excludeTurns": true, "personality": "none"}),
                &["personality"],
            ),
            (
                "thread/fork",
                json!({"threadId": "t", "lastTurnId": "x", "threadSource": "user"}),
                &["threadSource"],
            ),
            (
                "turn/start",
                json!({"threadId": "t", "input": [], "effort": "low", "collaborationMode": {"mode": "plan"}, "outputSchema": {}}),
                &["collaborationMode"],
            ),
            (
                "turn/start",
                json!({"threadId": "t", "input": [], "sandbox": "read-only"}),
                &["sandbox"],
            ),
            ("thread/list", json!({"whatever": 1}), &[]),
        ];
        for (method, params, expected) in cases {
            let mut got = keys(method, params.clone());
            got.sort();
            assert_eq!(got, *expected, "{method} {params}");
        }
        assert!(unhonoured("thread/start", None).is_empty());
        let message = &unhonoured("turn/start", Some(&json!({"personality": "x"})))[0].1;
        assert!(
            message.contains("turn/start") && message.contains("`personality`"),
            "{message}"
        );
    }
}
