//! History methods while a turn runs, through the real binary: `thread/turns/list` and
//! `thread/items/list` show the running turn as it stands (in progress, its user message) and
//! then as it ended; `thread/unsubscribe` in the middle of a turn silences the rest of it while
//! the turn goes on to the end.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::suite::compaction::{answer, turn};
use crate::suite::turns::{finish_turn, last_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// [`server_in_with`] under `approval_policy=never`.
fn server_in(mock: &MockServer, home: &std::path::Path) -> AppServer {
    server_in_with(mock, home, &["approval_policy=\"never\""])
}

/// `(status, [item types])` of each turn of a `thread/turns/list` page.
fn turn_shapes(page: &Value) -> Vec<(String, Vec<String>)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let items = t["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["type"].as_str().unwrap().to_string())
                .collect();
            (t["status"].as_str().unwrap().to_string(), items)
        })
        .collect()
}

#[test]
fn paging_while_a_turn_runs_shows_it_as_it_stands() {
    let mock = MockServer::start();
    let home = TempDir::new("history-running-pages");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({}));
    mock.push(answer("a0", "answer 0", 60));
    let first = last_turn(&turn(&mut server, &thread_id, "question 0"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    mock.push(sse_then_stall(vec![ev_created("slow")]));
    let running = start_turn(&mut server, &thread_id, "slow question");
    mock.wait_for_requests(2);

    // Newest first: the running turn, in progress, with only the user's message so far.
    let page = server
        .call("thread/turns/list", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(page["data"][0]["id"], running.as_str());
    assert_eq!(page["data"][1]["id"], first.as_str());
    assert_eq!(
        turn_shapes(&page),
        [
            ("inProgress".to_string(), vec!["userMessage".to_string()]),
            (
                "completed".to_string(),
                vec!["userMessage".to_string(), "agentMessage".to_string()]
            ),
        ]
    );
    let items = server
        .call(
            "thread/items/list",
            json!({"threadId": thread_id, "turnId": running}),
        )
        .unwrap();
    let data = items["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{items}");
    assert_eq!(data[0]["turnId"], running.as_str());
    assert_eq!(data[0]["item"]["type"], "userMessage");
    assert_eq!(data[0]["item"]["content"][0]["text"], "slow question");
    let all = server
        .call("thread/items/list", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 3, "{all}");

    // Once it ended, the pages say so.
    server
        .call(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": running}),
        )
        .unwrap();
    let ended = finish_turn(&mut server);
    assert_eq!(last_turn(&ended)["status"], "interrupted");
    let page = server
        .call("thread/turns/list", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(page["data"][0]["id"], running.as_str());
    assert_eq!(page["data"][0]["status"], "interrupted");
}

#[test]
fn unsubscribing_mid_turn_silences_the_rest_of_it() {
    let mock = MockServer::start();
    let home = TempDir::new("history-running-unsubscribe");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({}));
    let other = start_thread(&mut server, json!({}));
    // A command that takes a moment, then the answer.
    mock.push(sse(vec![
        ev_created("c0"),
        ev_function_call(
            "call_slow",
            "shell",
            &json!({"command": ["sh", "-c", "sleep 1; echo slow"]}),
        ),
        ev_completed_usage("c0", 45, 0, 5, 0),
    ]));
    mock.push(answer("a0", "unseen answer", 60));
    let running = start_turn(&mut server, &thread_id, "slow question");
    server.take_matching("the command's start", |m| {
        m["method"] == "item/started" && m["params"]["item"]["type"] == "commandExecution"
    });
    let id = server.request("thread/unsubscribe", json!({"threadId": thread_id}));
    // What came before the answer was the client's; everything after it is checked below.
    loop {
        let m = server
            .read_message(Duration::from_secs(10))
            .expect("the answer to thread/unsubscribe");
        if m["id"] == id && m.get("method").is_none() {
            assert_eq!(m["result"], json!({"status": "unsubscribed"}));
            break;
        }
    }

    // The turn goes on to the end: the command's output reaches the model, which answers.
    let requests = mock.wait_for_requests(2);
    let follow_up = requests[1].json();
    let output = follow_up["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .expect("the command's output")
        .to_string();
    assert!(output.contains("slow"), "{output}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = server
            .call(
                "thread/turns/list",
                json!({"threadId": thread_id, "limit": 1}),
            )
            .unwrap();
        assert_eq!(page["data"][0]["id"], running.as_str());
        if page["data"][0]["status"] == "completed" {
            assert_eq!(
                page["data"][0]["items"].as_array().unwrap().last().unwrap()["text"],
                "unseen answer"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the turn never completed: {page}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another thread is still heard; of the quiet one, only status changes arrived.
    mock.push(answer("loud", "heard", 60));
    start_turn(&mut server, &other, "loudly");
    let messages = finish_turn(&mut server);
    for m in &messages {
        if m["params"]["threadId"] == thread_id.as_str() {
            assert_eq!(m["method"], "thread/status/changed", "{m}");
        }
    }
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "turn/completed" && m["params"]["threadId"] == other.as_str())
    );
}
