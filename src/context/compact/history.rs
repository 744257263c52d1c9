//! The history a compaction leaves behind (context.md §4), as pure functions over Responses
//! items: which messages are the user's own, which of them are kept (newest first within a
//! token budget, then put back in order), the message that hands the summary over, and the
//! whole new history. Running the compaction is `mod.rs`'s.

use serde_json::{Value, json};

/// How a handed-over summary starts; also how an earlier summary is recognised (it is not one
/// of the user's messages, so a later compaction does not keep it).
pub const SUMMARY_PREFIX: &str = "[Compacted conversation] The earlier part of this conversation was replaced by the handoff note below, written by the model that did that work. The user's messages above are kept as they were; tool calls and their outputs are not. Continue from the note without redoing finished work:\n\n";

/// Budget of the user's own messages kept verbatim, in estimated tokens.
pub const KEPT_USER_TOKENS: usize = 20_000;

/// Roughly how many bytes one token holds (the estimate used for budgets and for the usage
/// reported after a compaction).
const BYTES_PER_TOKEN: usize = 4;

/// What text a user message may start with when it is context rather than the user's words:
/// the environment context, project instructions, interrupt notes, review results, summaries.
const CONTEXT_PREFIXES: [&str; 6] = [
    crate::context::environment::OPEN_TAG,
    "# AGENTS.md instructions",
    "<turn_aborted>",
    "<review_result>",
    "<user_instructions>",
    SUMMARY_PREFIX,
];

/// How a compacted history ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Local compaction: the model's handoff summary.
    Summary(String),
    /// Remote compaction: the backend's `compaction` output item, replayed as received.
    Remote(Value),
}

/// Estimated tokens of `items` as sent (their JSON, about four bytes a token).
pub fn estimate_tokens<'a>(items: impl IntoIterator<Item = &'a Value>) -> i64 {
    let bytes: usize = items.into_iter().map(|item| item.to_string().len()).sum();
    bytes.div_ceil(BYTES_PER_TOKEN) as i64
}

/// The text parts of a message item, in order.
fn texts(item: &Value) -> impl Iterator<Item = &str> {
    item.get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
}

/// Whether `item` is a message the user wrote (not context we added: environment, project
/// instructions, notes, earlier summaries).
pub fn is_user_message(item: &Value) -> bool {
    if item.get("type").and_then(Value::as_str) != Some("message")
        || item.get("role").and_then(Value::as_str) != Some("user")
    {
        return false;
    }
    let mut parts = texts(item).peekable();
    match parts.peek() {
        None => false,
        Some(first) => !CONTEXT_PREFIXES.iter().any(|p| first.starts_with(p)),
    }
}

/// The user's messages of `history` to keep: text only (images are not carried over), the
/// newest first until [`KEPT_USER_TOKENS`] is spent (the one crossing it is cut, its start
/// kept), then in their original order.
pub fn kept_user_messages<'a>(history: impl DoubleEndedIterator<Item = &'a Value>) -> Vec<Value> {
    let mut budget = KEPT_USER_TOKENS * BYTES_PER_TOKEN;
    let mut kept = Vec::new();
    for item in history.rev().filter(|item| is_user_message(item)) {
        if budget == 0 {
            break;
        }
        let mut text = texts(item).collect::<Vec<_>>().join("\n");
        if text.len() > budget {
            let mut end = budget;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str(
                "\n[… the rest of this message was cut when the conversation was compacted]",
            );
            budget = 0;
        } else {
            budget -= text.len();
        }
        kept.push(user_text_message(text));
    }
    kept.reverse();
    kept
}

fn user_text_message(text: String) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

/// The user message that hands a summary over to the rest of the conversation.
pub fn summary_message(summary: &str) -> Value {
    user_text_message(format!("{SUMMARY_PREFIX}{summary}"))
}

/// The new history: the initial context, the kept user messages, then the summary message or
/// the backend's compaction item.
pub fn rebuild(initial_context: Vec<Value>, kept: Vec<Value>, ending: Ending) -> Vec<Value> {
    let mut history = initial_context;
    history.extend(kept);
    history.push(match ending {
        Ending::Summary(text) => summary_message(&text),
        Ending::Remote(item) => item,
    });
    history
}

/// The summary a local compaction produced: the text of the last assistant message among its
/// output items, when it has any.
pub fn summary_text(outputs: &[Value]) -> Option<String> {
    outputs
        .iter()
        .rev()
        .filter(|item| {
            item.get("type").and_then(Value::as_str) == Some("message")
                && item.get("role").and_then(Value::as_str) == Some("assistant")
        })
        .map(|item| texts(item).collect::<String>())
        .find(|text| !text.trim().is_empty())
}

/// The one `compaction` item a remote compaction must answer with.
pub fn compaction_item(outputs: &[Value]) -> Result<Value, String> {
    let found: Vec<&Value> = outputs
        .iter()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("compaction"))
        .collect();
    match found.as_slice() {
        [item] => Ok((*item).clone()),
        _ => Err(format!(
            "remote compaction expected exactly one compaction output item, got {} of {} output items",
            found.len(),
            outputs.len()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn user(text: &str) -> Value {
        user_text_message(text.to_string())
    }

    fn assistant(text: &str) -> Value {
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
    }

    #[test]
    fn user_messages_are_told_from_context() {
        let cases = [
            (user("fix the bug"), true),
            (user("<b>bold</b> please"), true),
            (user("<environment_context>\n  <cwd>/x</cwd>"), false),
            (
                user("# AGENTS.md instructions for /x\n\n<INSTRUCTIONS>"),
                false,
            ),
            (user("<turn_aborted>\nstopped"), false),
            (summary_message("old summary"), false),
            (assistant("done"), false),
            (
                json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "x"}]}),
                false,
            ),
            (
                json!({"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "data:"}]}),
                false,
            ),
            (
                json!({"type": "function_call", "call_id": "c", "name": "shell", "arguments": "{}"}),
                false,
            ),
        ];
        for (item, expected) in cases {
            assert_eq!(is_user_message(&item), expected, "{item}");
        }
    }

    #[test]
    fn kept_messages_are_the_newest_within_the_budget_in_order() {
        let big = "x".repeat(KEPT_USER_TOKENS * BYTES_PER_TOKEN - 10);
        let history = [
            user("first"),
            assistant("a1"),
            user("<environment_context>cwd</environment_context>"),
            user(&big),
            user("0123456789abcdef"),
            summary_message("earlier"),
            user("last"),
        ];
        let kept = kept_user_messages(history.iter());
        let texts: Vec<String> = kept
            .iter()
            .map(|m| m["content"][0]["text"].as_str().unwrap().to_string())
            .collect();
        // "last" (4) and the 16-byte one fit; `big` is cut to what is left; "first" is out.
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts[0].starts_with("xxxx"));
        assert!(texts[0].ends_with("compacted]"));
        assert_eq!(
            texts[0].matches('x').count(),
            KEPT_USER_TOKENS * BYTES_PER_TOKEN - 4 - 16
        );
        assert_eq!(texts[1], "0123456789abcdef");
        assert_eq!(texts[2], "last");
    }

    #[test]
    fn cutting_respects_character_boundaries() {
        let long = "é".repeat(KEPT_USER_TOKENS * BYTES_PER_TOKEN);
        let kept = kept_user_messages([user(&long)].iter());
        let text = kept[0]["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with('é'));
        assert!(text.len() < long.len());
    }

    #[test]
    fn rebuild_orders_context_users_and_ending() {
        let context = vec![json!({"type": "message", "role": "developer", "content": []})];
        let local = rebuild(
            context.clone(),
            vec![user("q1"), user("q2")],
            Ending::Summary("S".into()),
        );
        assert_eq!(local.len(), 4);
        assert_eq!(local[0]["role"], "developer");
        assert_eq!(local[1]["content"][0]["text"], "q1");
        assert_eq!(
            local[3]["content"][0]["text"],
            format!("{SUMMARY_PREFIX}S").as_str()
        );
        let item = json!({"type": "compaction", "id": "cmp_1", "encrypted_content": "E"});
        let remote = rebuild(context, vec![user("q1")], Ending::Remote(item.clone()));
        assert_eq!(remote.last(), Some(&item));
    }

    #[test]
    fn summaries_and_compaction_items_are_found_or_refused() {
        assert_eq!(
            summary_text(&[assistant(""), assistant("the note"), assistant(" ")]),
            Some("the note".to_string())
        );
        assert_eq!(summary_text(&[user("x")]), None);
        let item = json!({"type": "compaction", "encrypted_content": "E"});
        assert_eq!(
            compaction_item(&[assistant("x"), item.clone()]),
            Ok(item.clone())
        );
        assert!(compaction_item(&[assistant("x")]).is_err());
        assert!(compaction_item(&[item.clone(), item]).is_err());
    }

    #[test]
    fn estimates_are_a_quarter_of_the_bytes() {
        let item = json!({"k": "v"}); // 9 bytes
        assert_eq!(estimate_tokens([&item]), 3);
        assert_eq!(estimate_tokens([&item, &item]), 5);
    }
}
