//! `review/start` (context.md §3): the review-mode items and their order, the review's own
//! conversation (not the thread's history) and what the thread keeps of it, every target,
//! inline and detached delivery, and the errors (no git repository, bad targets, a busy
//! thread).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::turns::{finish_turn, server_for, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository on branch `main` with one commit, a branch `feature` with a second one, and
/// an uncommitted edit.
fn repo() -> TempDir {
    let dir = TempDir::new("review-repo");
    let path = dir.path();
    git(path, &["init", "-q", "-b", "main"]);
    git(path, &["config", "user.email", "t@example.com"]);
    git(path, &["config", "user.name", "Tester"]);
    std::fs::write(path.join("f.txt"), "one\n").unwrap();
    git(path, &["add", "."]);
    git(path, &["commit", "-qm", "first"]);
    git(path, &["checkout", "-qb", "feature"]);
    std::fs::write(path.join("f.txt"), "two\n").unwrap();
    git(path, &["commit", "-qam", "second change"]);
    std::fs::write(path.join("f.txt"), "three\n").unwrap();
    dir
}

fn findings_json(file: &Path) -> String {
    json!({"findings": [{"title": "[P1] Off by one", "body": "The loop stops early.",
        "confidence_score": 0.8, "priority": 1,
        "code_location": {"absolute_file_path": file.display().to_string(), "line_range": {"start": 1, "end": 1}}}],
        "overall_correctness": "patch is incorrect", "overall_explanation": "One bug.",
        "overall_confidence_score": 0.7})
    .to_string()
}

fn methods_and_items(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| {
            let method = m["method"].as_str()?;
            match method {
                "item/started" | "item/completed" => Some(format!(
                    "{method} {}",
                    m["params"]["item"]["type"].as_str().unwrap()
                )),
                "turn/started" | "turn/completed" => Some(method.to_string()),
                _ => None,
            }
        })
        .collect()
}

fn request_texts(body: &Value) -> Vec<(String, String)> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|i| {
            let text: String = i["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n");
            (i["role"].as_str().unwrap().to_string(), text)
        })
        .collect()
}

fn item<'a>(messages: &'a [Value], method: &str, kind: &str) -> &'a Value {
    &messages
        .iter()
        .find(|m| m["method"] == method && m["params"]["item"]["type"] == kind)
        .unwrap_or_else(|| panic!("no {method} {kind}"))["params"]["item"]
}

#[test]
fn an_inline_review_runs_apart_and_leaves_its_result_in_the_thread() {
    let mock = MockServer::start();
    let repo = repo();
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({"cwd": repo.path()}));
    mock.push(text_reply("r0", "m0", &["earlier answer"]));
    start_turn(&mut server, &thread_id, "earlier question");
    finish_turn(&mut server);

    let answer = findings_json(&repo.path().join("f.txt"));
    mock.push(text_reply("r1", "m1", &[&answer]));
    let result = server
        .call(
            "review/start",
            json!({"threadId": thread_id, "target": {"type": "uncommittedChanges"}}),
        )
        .unwrap();
    assert_eq!(result["reviewThreadId"], thread_id.as_str());
    assert_eq!(result["turn"]["status"], "inProgress");
    let messages = finish_turn(&mut server);
    assert_eq!(
        methods_and_items(&messages),
        [
            "turn/started",
            "item/started enteredReviewMode",
            "item/completed enteredReviewMode",
            "item/started userMessage",
            "item/completed userMessage",
            "item/started agentMessage",
            "item/completed agentMessage",
            "item/started exitedReviewMode",
            "item/completed exitedReviewMode",
            "item/started agentMessage",
            "item/completed agentMessage",
            "turn/completed",
        ]
    );
    assert_eq!(
        messages.last().unwrap()["params"]["turn"]["id"],
        result["turn"]["id"]
    );
    assert_eq!(
        item(&messages, "item/completed", "enteredReviewMode")["review"],
        "current changes"
    );
    let review = item(&messages, "item/completed", "exitedReviewMode")["review"]
        .as_str()
        .unwrap()
        .to_string();
    let file = repo.path().join("f.txt").display().to_string();
    assert_eq!(
        review,
        format!("One bug.\n\nFinding:\n\n- [P1] Off by one — {file}:1-1\n  The loop stops early.")
    );
    let final_message = messages
        .iter()
        .rev()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["type"] == "agentMessage")
        .unwrap();
    assert_eq!(final_message["params"]["item"]["text"], review.as_str());

    let bodies: Vec<Value> = mock
        .requests_to("/v1/responses")
        .iter()
        .map(|r| r.json())
        .collect();
    let review_request = &bodies[1];
    assert!(
        review_request["instructions"]
            .as_str()
            .unwrap()
            .contains("reviewing a code change")
    );
    let tools: Vec<&str> = review_request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        tools,
        ["shell", "view_image"],
        "a reviewer looks, it does not edit"
    );
    let texts = request_texts(review_request);
    assert!(
        !texts.iter().any(|(_, t)| t.contains("earlier question")),
        "not the thread's history: {texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(_, t)| t.starts_with("<environment_context>"))
    );
    assert!(texts.last().unwrap().1.contains("git status"), "{texts:?}");

    // The next turn sees the review's result, not its conversation.
    mock.push(text_reply("r2", "m2", &["fixing"]));
    start_turn(&mut server, &thread_id, "fix the first one");
    finish_turn(&mut server);
    let texts = request_texts(&mock.requests_to("/v1/responses")[2].json());
    assert!(texts.iter().any(|(_, t)| t.contains("earlier question")));
    assert!(texts.iter().any(|(role, t)| role == "user"
        && t.contains("<review_result>")
        && t.contains("Off by one")));
    assert!(
        texts
            .iter()
            .any(|(role, t)| role == "assistant" && *t == review)
    );
    assert!(
        !texts.iter().any(|(_, t)| t.contains("git status")),
        "{texts:?}"
    );
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    let kinds: Vec<&str> = read["thread"]["turns"][1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "enteredReviewMode",
            "userMessage",
            "agentMessage",
            "exitedReviewMode",
            "agentMessage"
        ]
    );
}

#[test]
fn every_target_asks_for_its_changes() {
    let mock = MockServer::start();
    let repo = repo();
    let head = git(repo.path(), &["rev-parse", "HEAD"]);
    let base = git(repo.path(), &["merge-base", "HEAD", "main"]);
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({"cwd": repo.path()}));
    let cases = [
        (
            json!({"type": "baseBranch", "branch": "main"}),
            "changes against 'main'",
            format!("git diff {base}"),
        ),
        (
            json!({"type": "commit", "sha": head, "title": "second change"}),
            "commit ",
            format!("git show {head}"),
        ),
        (
            json!({"type": "custom", "instructions": "Check f.txt for typos"}),
            "Check f.txt for typos",
            "Check f.txt for typos".to_string(),
        ),
    ];
    for (n, (target, display, needle)) in cases.iter().enumerate() {
        mock.push(text_reply("r", "m", &["Looks right."]));
        server
            .call(
                "review/start",
                json!({"threadId": thread_id, "target": target}),
            )
            .unwrap();
        let messages = finish_turn(&mut server);
        let entered = item(&messages, "item/completed", "enteredReviewMode")["review"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(entered.starts_with(display), "{entered}");
        assert_eq!(
            item(&messages, "item/completed", "exitedReviewMode")["review"],
            "Looks right."
        );
        let body = mock.requests_to("/v1/responses")[n].json();
        let prompt = request_texts(&body).last().unwrap().1.clone();
        assert!(prompt.contains(needle.as_str()), "{target}: {prompt}");
    }
}

#[test]
fn a_detached_review_runs_in_a_new_thread() {
    let mock = MockServer::start();
    let repo = repo();
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({"cwd": repo.path()}));
    mock.push(text_reply("r1", "m1", &["Looks right."]));
    // `detached` is the earlier protocol's delivery (0.169's schema has only `inline`).
    let request = server.crafted().request(
        "review/start",
        json!({"threadId": thread_id, "target": {"type": "uncommittedChanges"}, "delivery": "detached"}),
    );
    let (started, _) = server.read_until("thread/started");
    let review_thread = started["params"]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(review_thread, thread_id);
    assert_eq!(
        started["params"]["thread"]["cwd"],
        repo.path().display().to_string()
    );
    let response = server.read_response(&json!(request));
    assert_eq!(response["result"]["reviewThreadId"], review_thread.as_str());
    let messages = finish_turn(&mut server);
    assert_eq!(
        messages.last().unwrap()["params"]["threadId"],
        review_thread.as_str()
    );
    assert_eq!(
        item(&messages, "item/completed", "exitedReviewMode")["review"],
        "Looks right."
    );
    // The source thread is untouched.
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    assert_eq!(read["thread"]["turns"], json!([]));
}

#[test]
fn a_review_outside_a_git_repository_is_a_clear_error() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let dir = std::env::temp_dir().join(format!("codex-lite-review-nogit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let thread_id = start_thread(&mut server, json!({"cwd": dir}));
    for target in [
        json!({"type": "uncommittedChanges"}),
        json!({"type": "baseBranch", "branch": "main"}),
        json!({"type": "commit", "sha": "abc1234"}),
    ] {
        let error = server
            .call(
                "review/start",
                json!({"threadId": thread_id, "target": target}),
            )
            .unwrap_err();
        assert_eq!(error["code"], -32600, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("not inside a git repository"), "{message}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
    }
    // Custom instructions need no repository.
    mock.push(text_reply("r", "m", &["Fine."]));
    server
        .call(
            "review/start",
            json!({"threadId": thread_id, "target": {"type": "custom", "instructions": "Look at the docs"}}),
        )
        .unwrap();
    let messages = finish_turn(&mut server);
    assert_eq!(
        item(&messages, "item/completed", "exitedReviewMode")["review"],
        "Fine."
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_review_requests_are_refused() {
    let mock = MockServer::start();
    let repo = repo();
    let mut server: AppServer = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({"cwd": repo.path()}));
    let cases = [
        (
            json!({"threadId": thread_id, "target": {"type": "baseBranch", "branch": "x; rm -rf /"}}),
            -32602,
        ),
        (
            json!({"threadId": thread_id, "target": {"type": "custom", "instructions": " "}}),
            -32602,
        ),
        (
            json!({"threadId": thread_id, "target": {"type": "everything"}}),
            -32602,
        ),
        (
            json!({"threadId": thread_id, "target": {"type": "uncommittedChanges"}, "delivery": "bogus"}),
            -32602,
        ),
        (
            json!({"threadId": "no-such-thread", "target": {"type": "uncommittedChanges"}}),
            -32600,
        ),
    ];
    for (params, code) in cases {
        let error = server.call("review/start", params.clone()).unwrap_err();
        assert_eq!(error["code"], code, "{params}: {error}");
    }
    // Not while a turn runs.
    mock.push(sse_then_stall(vec![ev_created("r")]));
    let turn_id = start_turn(&mut server, &thread_id, "busy");
    let error = server
        .call(
            "review/start",
            json!({"threadId": thread_id, "target": {"type": "uncommittedChanges"}}),
        )
        .unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("active turn"),
        "{error}"
    );
    super::turns::interrupt_turn(&mut server, &thread_id, &turn_id);
}
