//! History paging and editing through the real binary (context.md §5): `thread/turns/list` and
//! `thread/items/list` (order, limits, cursors both ways, views, a turn's items, stored
//! threads), `thread/revert` (memory, requests, `thread/read`, the rollout after a restart,
//! across a compaction), `thread/delete`, `thread/unsubscribe`; bad ids; use while a turn runs.

use std::path::Path;

use serde_json::{Value, json};

use crate::suite::compaction::{answer, bodies, said, shell_call, turn, user_words};
use crate::suite::turns::{finish_turn, last_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

const UNKNOWN: &str = "01a22df1-83c2-7031-86ee-000000000000";

/// [`server_in_with`] under `approval_policy=never`.
fn server_in(mock: &MockServer, home: &Path) -> AppServer {
    server_in_with(mock, home, &["approval_policy=\"never\""])
}

/// A thread of `n` turns: question i → a shell call → answer i; returns (thread, turn ids).
fn thread_of(server: &mut AppServer, mock: &MockServer, n: usize) -> (String, Vec<String>) {
    let thread_id = start_thread(server, json!({}));
    let mut turns = Vec::new();
    for i in 0..n {
        mock.push(shell_call(&format!("c{i}"), &format!("call_{i}"), 50));
        mock.push(answer(&format!("a{i}"), &format!("answer {i}"), 60));
        let messages = turn(server, &thread_id, &format!("question {i}"));
        turns.push(last_turn(&messages)["id"].as_str().unwrap().to_string());
    }
    (thread_id, turns)
}

fn turn_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// `(turn index, item type)` of an items page, turn ids mapped to their index in `turns`.
fn entries(page: &Value, turns: &[String]) -> Vec<(usize, String)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let turn = turns.iter().position(|t| *t == e["turnId"]).unwrap();
            (turn, e["item"]["type"].as_str().unwrap().to_string())
        })
        .collect()
}

fn list(server: &mut AppServer, method: &str, params: Value) -> Value {
    server.call(method, params).unwrap()
}

#[test]
fn turns_pages_go_newest_first_and_back() {
    let home = TempDir::new("history-turns");
    let mock = MockServer::start();
    let mut server = server_in(&mock, home.path());
    let (thread_id, turns) = thread_of(&mut server, &mock, 5);
    let t = |i: usize| turns[i].clone();

    let all = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id}),
    );
    assert_eq!(turn_ids(&all), [t(4), t(3), t(2), t(1), t(0)]);
    assert_eq!(all["nextCursor"], Value::Null);
    // The default view: the user's message and the final answer, said so.
    let first = &all["data"][0];
    assert_eq!(first["itemsView"], "summary");
    let kinds: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["userMessage", "agentMessage"]);
    assert_eq!(first["status"], "completed");

    let page1 = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "limit": 2}),
    );
    assert_eq!(turn_ids(&page1), [t(4), t(3)]);
    let page2 = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "limit": 2, "cursor": page1["nextCursor"]}),
    );
    assert_eq!(turn_ids(&page2), [t(2), t(1)]);
    let page3 = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "limit": 2, "cursor": page2["nextCursor"]}),
    );
    assert_eq!(turn_ids(&page3), [t(0)]);
    assert_eq!(page3["nextCursor"], Value::Null);
    // Backwards from page 2 includes its first turn again.
    let back = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "limit": 5, "cursor": page2["backwardsCursor"], "sortDirection": "asc"}),
    );
    assert_eq!(turn_ids(&back), [t(2), t(3), t(4)]);

    let full = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "limit": 1, "sortDirection": "asc", "itemsView": "full"}),
    );
    assert_eq!(turn_ids(&full), [t(0)]);
    assert_eq!(full["data"][0]["itemsView"], "full");
    assert_eq!(full["data"][0]["items"].as_array().unwrap().len(), 3);
    let bare = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "limit": 0, "itemsView": "notLoaded"}),
    );
    assert_eq!(turn_ids(&bare), [t(4)]);
    assert_eq!(bare["data"][0]["items"], json!([]));

    // A stored thread pages the same after a restart.
    drop(server);
    let mut server = server_in(&mock, home.path());
    let stored = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "limit": 2, "cursor": page1["nextCursor"]}),
    );
    assert_eq!(turn_ids(&stored), [t(2), t(1)]);
}

#[test]
fn items_pages_follow_the_conversation() {
    let mock = MockServer::start();
    let home = TempDir::new("history-items");
    let mut server = server_in(&mock, home.path());
    let (thread_id, turns) = thread_of(&mut server, &mock, 3);
    let u = |i: usize| (i, "userMessage".to_string());
    let c = |i: usize| (i, "commandExecution".to_string());
    let a = |i: usize| (i, "agentMessage".to_string());

    let all = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id}),
    );
    assert_eq!(
        entries(&all, &turns),
        [u(0), c(0), a(0), u(1), c(1), a(1), u(2), c(2), a(2)]
    );
    let page1 = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "limit": 4}),
    );
    assert_eq!(entries(&page1, &turns), [u(0), c(0), a(0), u(1)]);
    let page2 = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "limit": 4, "cursor": page1["nextCursor"]}),
    );
    assert_eq!(entries(&page2, &turns), [c(1), a(1), u(2), c(2)]);
    let desc = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "limit": 2, "sortDirection": "desc"}),
    );
    assert_eq!(entries(&desc, &turns), [a(2), c(2)]);
    let back = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "limit": 3, "sortDirection": "desc", "cursor": page2["backwardsCursor"]}),
    );
    assert_eq!(entries(&back, &turns), [c(1), u(1), a(0)]);

    // One turn, from an item anchor.
    let one = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "turnId": turns[1]}),
    );
    assert_eq!(entries(&one, &turns), [u(1), c(1), a(1)]);
    let after_call = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "turnId": turns[1], "cursor": {"type": "item", "itemId": "call_1"}}),
    );
    assert_eq!(entries(&after_call, &turns), [a(1)]);
    let unknown_turn = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "turnId": "nope"}),
    );
    assert_eq!(
        unknown_turn,
        json!({"data": [], "nextCursor": null, "backwardsCursor": null})
    );

    let no_turn = server
        .call(
            "thread/items/list",
            json!({"threadId": thread_id, "cursor": {"type": "item", "itemId": "call_1"}}),
        )
        .unwrap_err();
    assert_eq!(no_turn["code"], -32602);
    assert!(
        no_turn["message"]
            .as_str()
            .unwrap()
            .contains("turnId is required")
    );
    let bad_cursor = server
        .call(
            "thread/items/list",
            json!({"threadId": thread_id, "cursor": "garbage"}),
        )
        .unwrap_err();
    assert_eq!(
        bad_cursor,
        json!({"code": -32600, "message": "invalid cursor: garbage"})
    );
    // A cursor of another thread is no cursor here.
    let other = start_thread(&mut server, json!({}));
    let foreign = server
        .call(
            "thread/turns/list",
            json!({"threadId": other, "cursor": page1["nextCursor"]}),
        )
        .unwrap_err();
    assert_eq!(foreign["code"], -32600);
}

#[test]
fn history_methods_reject_bad_ids() {
    let mock = MockServer::start();
    let home = TempDir::new("history-ids");
    let mut server = server_in(&mock, home.path());
    for method in [
        "thread/turns/list",
        "thread/items/list",
        "thread/revert",
        "thread/delete",
        "thread/unsubscribe",
    ] {
        let params = json!({"threadId": "nope", "beforeTurnId": "x"});
        let bad = server.call(method, params).unwrap_err();
        assert_eq!(
            bad,
            json!({"code": -32600, "message": "invalid thread id: nope"}),
            "{method}"
        );
    }
    for (method, message) in [
        ("thread/turns/list", format!("thread not found: {UNKNOWN}")),
        ("thread/items/list", format!("thread not found: {UNKNOWN}")),
        ("thread/revert", format!("thread not found: {UNKNOWN}")),
        (
            "thread/delete",
            format!("no rollout found for thread id {UNKNOWN}"),
        ),
    ] {
        let params = json!({"threadId": UNKNOWN, "beforeTurnId": "x"});
        let missing = server.call(method, params).unwrap_err();
        assert_eq!(
            missing,
            json!({"code": -32600, "message": message}),
            "{method}"
        );
    }
    let status = server
        .call("thread/unsubscribe", json!({"threadId": UNKNOWN}))
        .unwrap();
    assert_eq!(status, json!({"status": "notLoaded"}));
    let (thread_id, _) = thread_of(&mut server, &mock, 1);
    let no_turn = server
        .call(
            "thread/revert",
            json!({"threadId": thread_id, "beforeTurnId": "nope"}),
        )
        .unwrap_err();
    assert_eq!(
        no_turn,
        json!({"code": -32600, "message": "turn not found: nope"})
    );
    let missing_param = server
        .call("thread/revert", json!({"threadId": thread_id}))
        .unwrap_err();
    assert_eq!(missing_param["code"], -32602);
}

#[test]
fn revert_drops_turns_everywhere_and_a_restart_agrees() {
    let home = TempDir::new("history-revert");
    let mock = MockServer::start();
    let mut server = server_in(&mock, home.path());
    let (thread_id, turns) = thread_of(&mut server, &mock, 4);

    let result = server
        .call(
            "thread/revert",
            json!({"threadId": thread_id, "beforeTurnId": turns[2]}),
        )
        .unwrap();
    assert_eq!(result["thread"]["id"], thread_id.as_str());
    assert_eq!(result["thread"]["turns"], json!([]));
    let (reverted, _) = server.read_until("thread/reverted");
    assert_eq!(reverted["params"], json!({"threadId": thread_id}));
    // The cursors page back through what is kept, starting with its last turn / item.
    let back = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "cursor": result["turnsBackwardsCursor"], "sortDirection": "desc"}),
    );
    assert_eq!(turn_ids(&back), [turns[1].clone(), turns[0].clone()]);
    let items = list(
        &mut server,
        "thread/items/list",
        json!({"threadId": thread_id, "cursor": result["itemsBackwardsCursor"], "sortDirection": "desc", "limit": 1}),
    );
    assert_eq!(items["data"][0]["item"]["text"], "answer 1");

    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    assert_eq!(read["thread"]["turns"].as_array().unwrap().len(), 2);

    mock.push(answer("after", "after revert", 60));
    turn(&mut server, &thread_id, "question again");
    let sent = bodies(&mock).pop().unwrap();
    assert_eq!(
        user_words(&sent),
        ["question 0", "question 1", "question again"]
    );
    assert!(
        !said(&sent)
            .iter()
            .any(|(_, t)| t == "answer 2" || t == "answer 3")
    );

    // A restart reads the same thread, and continues it the same way.
    drop(server);
    let mut server = server_in(&mock, home.path());
    let resumed = server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    let kept: Vec<&Value> = resumed["thread"]["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[0], turns[0].as_str());
    assert_eq!(kept[1], turns[1].as_str());
    mock.push(answer("later", "later", 60));
    turn(&mut server, &thread_id, "one more");
    let sent = bodies(&mock).pop().unwrap();
    assert_eq!(
        user_words(&sent),
        ["question 0", "question 1", "question again", "one more"]
    );
}

#[test]
fn revert_to_before_a_compaction_brings_back_the_history_it_replaced() {
    let home = TempDir::new("history-revert-compacted");
    let mock = MockServer::start();
    let mut server = server_in(&mock, home.path());
    let (thread_id, turns) = thread_of(&mut server, &mock, 2);
    mock.push(answer("sum", "THE SUMMARY", 20));
    server
        .call("thread/compact/start", json!({"threadId": thread_id}))
        .unwrap();
    let compaction = finish_turn(&mut server);
    let compaction_turn = last_turn(&compaction)["id"].as_str().unwrap().to_string();
    mock.push(answer("a2", "answer after", 60));
    turn(&mut server, &thread_id, "question after");

    server
        .call(
            "thread/revert",
            json!({"threadId": thread_id, "beforeTurnId": compaction_turn}),
        )
        .unwrap();
    server.read_until("thread/reverted");
    mock.push(answer("a3", "answer again", 60));
    turn(&mut server, &thread_id, "question again");
    let sent = bodies(&mock).pop().unwrap();
    let conversation = said(&sent);
    assert!(
        conversation.iter().any(|(_, t)| t == "answer 1"),
        "{conversation:?}"
    );
    assert!(!conversation.iter().any(|(_, t)| t.contains("THE SUMMARY")));
    assert_eq!(
        user_words(&sent),
        ["question 0", "question 1", "question again"]
    );
    let listed = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id, "sortDirection": "asc"}),
    );
    let ids = turn_ids(&listed);
    assert_eq!(ids.len(), 3);
    assert_eq!(&ids[..2], &turns[..]);
}

#[test]
fn revert_and_delete_interrupt_a_running_turn_first() {
    let home = TempDir::new("history-running");
    let mock = MockServer::start();
    let mut server = server_in(&mock, home.path());
    let (thread_id, turns) = thread_of(&mut server, &mock, 2);
    mock.push(sse_then_stall(vec![ev_created("slow")]));
    let running = start_turn(&mut server, &thread_id, "slow one");
    mock.wait_for_requests(5);
    let id = server.request(
        "thread/revert",
        json!({"threadId": thread_id, "beforeTurnId": turns[1]}),
    );
    let (completed, _) = server.read_until("turn/completed");
    assert_eq!(completed["params"]["turn"]["id"], running.as_str());
    assert_eq!(completed["params"]["turn"]["status"], "interrupted");
    let answer = server.read_response(&json!(id));
    assert!(answer.get("result").is_some(), "{answer}");
    server.read_until("thread/reverted");
    let left = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id}),
    );
    assert_eq!(turn_ids(&left), [turns[0].clone()]);

    mock.push(sse_then_stall(vec![ev_created("slow2")]));
    start_turn(&mut server, &thread_id, "slow two");
    mock.wait_for_requests(6);
    let id = server.request("thread/delete", json!({"threadId": thread_id}));
    let (completed, _) = server.read_until("turn/completed");
    assert_eq!(completed["params"]["turn"]["status"], "interrupted");
    assert_eq!(server.read_response(&json!(id))["result"], json!({}));
    server.read_until("thread/deleted");
}

#[test]
fn delete_removes_the_thread_for_good() {
    let home = TempDir::new("history-delete");
    let mock = MockServer::start();
    let mut server = server_in(&mock, home.path());
    let (loaded, _) = thread_of(&mut server, &mock, 1);
    let (stored, _) = thread_of(&mut server, &mock, 1);
    server
        .call(
            "thread/name/set",
            json!({"threadId": loaded, "name": "doomed"}),
        )
        .unwrap();
    drop(server);
    let mut server = server_in(&mock, home.path());
    server
        .call("thread/resume", json!({"threadId": loaded}))
        .unwrap();

    assert_eq!(
        server.call("thread/delete", json!({"threadId": loaded})),
        Ok(json!({}))
    );
    let (deleted, before) = server.read_until("thread/deleted");
    assert_eq!(deleted["params"], json!({"threadId": loaded}));
    assert!(
        before.iter().any(|m| m["method"] == "thread/status/changed"
            && m["params"]["status"]["type"] == "notLoaded")
    );
    // An unloaded one goes the same way.
    assert_eq!(
        server.call("thread/delete", json!({"threadId": stored})),
        Ok(json!({}))
    );
    server.read_until("thread/deleted");

    for id in [&loaded, &stored] {
        let read = server
            .call("thread/read", json!({"threadId": id}))
            .unwrap_err();
        assert_eq!(read["code"], -32600);
        let resume = server
            .call("thread/resume", json!({"threadId": id}))
            .unwrap_err();
        assert_eq!(resume["code"], -32600);
        let again = server
            .call("thread/delete", json!({"threadId": id}))
            .unwrap_err();
        assert_eq!(
            again["message"],
            format!("no rollout found for thread id {id}")
        );
    }
    let loaded_list = server.call("thread/loaded/list", json!({})).unwrap();
    assert_eq!(loaded_list["data"], json!([]));
    let listed = server
        .call("thread/list", json!({"modelProviders": []}))
        .unwrap();
    assert_eq!(listed["data"], json!([]));
    let names = std::fs::read_to_string(home.path().join("session_index.jsonl")).unwrap();
    let last = names.lines().last().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(last).unwrap()["thread_name"],
        Value::Null
    );
}

#[test]
fn unsubscribe_silences_turns_until_resume() {
    let mock = MockServer::start();
    let home = TempDir::new("history-unsubscribe");
    let mut server = server_in(&mock, home.path());
    let (thread_id, _) = thread_of(&mut server, &mock, 1);
    let other = start_thread(&mut server, json!({}));
    assert_eq!(
        server.call("thread/unsubscribe", json!({"threadId": thread_id})),
        Ok(json!({"status": "unsubscribed"}))
    );
    assert_eq!(
        server.call("thread/unsubscribe", json!({"threadId": thread_id})),
        Ok(json!({"status": "notSubscribed"}))
    );
    // Still loaded; its turn runs, the client sees only status changes.
    let loaded = server.call("thread/loaded/list", json!({})).unwrap();
    assert!(
        loaded["data"]
            .as_array()
            .unwrap()
            .contains(&json!(thread_id))
    );
    mock.push(answer("quiet", "unseen", 60));
    start_turn(&mut server, &thread_id, "quietly");
    mock.wait_for_requests(3);
    // Another thread's turn is still heard, and by then the quiet turn has long finished.
    mock.push(answer("loud", "heard", 60));
    start_turn(&mut server, &other, "loudly");
    let messages = finish_turn(&mut server);
    assert!(last_turn(&messages)["id"].as_str().is_some());
    for m in &messages {
        let method = m["method"].as_str().unwrap_or("response");
        if m["params"]["threadId"] == thread_id.as_str() {
            assert_eq!(method, "thread/status/changed", "{m}");
        }
    }
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "thread/status/changed"
                && m["params"]["threadId"] == thread_id.as_str())
    );
    // The quiet turn happened.
    let turns = list(
        &mut server,
        "thread/turns/list",
        json!({"threadId": thread_id}),
    );
    assert_eq!(turns["data"].as_array().unwrap().len(), 2);

    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    mock.push(answer("back", "seen again", 60));
    start_turn(&mut server, &thread_id, "heard again");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
}
