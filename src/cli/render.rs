//! Human-readable lines for the `exec` events (`exec_events.rs`): what `exec` prints on stderr
//! without `--json`, and how `demo` shows the items of its turn. Plain text, no colours.

use serde_json::Value;

/// Lines of a command's output shown at the head and at the tail; the middle is elided.
const OUTPUT_EDGE_LINES: usize = 10;

/// The lines describing one event; none for events with nothing to show.
pub fn event_lines(event: &Value) -> Vec<String> {
    let item = &event["item"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match (
        event["type"].as_str().unwrap_or_default(),
        item["type"].as_str(),
    ) {
        ("item.started", Some("command_execution")) => {
            vec![format!("command: {}", text(&item["command"]))]
        }
        ("item.completed", Some("command_execution")) => {
            let mut lines = indented_output(&text(&item["aggregated_output"]));
            lines.push(match item["exit_code"].as_i64() {
                Some(code) => format!("  (exit {code})"),
                None => format!("  ({})", text(&item["status"])),
            });
            lines
        }
        ("item.completed", Some("file_change")) => {
            let changes: Vec<String> = item["changes"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| format!("{} {}", text(&c["kind"]), text(&c["path"])))
                .collect();
            vec![format!(
                "patch {}: {}",
                text(&item["status"]),
                changes.join(", ")
            )]
        }
        ("item.completed", Some("agent_message")) => labelled("codex", &text(&item["text"])),
        ("item.completed", Some("reasoning")) => labelled("thinking", &text(&item["text"])),
        ("item.started" | "item.updated", Some("todo_list")) => {
            let mut lines = vec!["plan:".to_string()];
            for step in item["items"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let mark = if step["completed"] == true { "x" } else { " " };
                lines.push(format!("  [{mark}] {}", text(&step["text"])));
            }
            lines
        }
        ("item.completed", Some("mcp_tool_call")) => {
            let mut line = format!(
                "tool {}.{}: {}",
                text(&item["server"]),
                text(&item["tool"]),
                text(&item["status"])
            );
            if let Some(message) = item.pointer("/error/message").and_then(Value::as_str) {
                line.push_str(&format!(" ({message})"));
            }
            vec![line]
        }
        // Warnings: the app-server's log on stderr already shows them.
        ("item.completed", Some("error")) => Vec::new(),
        ("item.started", Some("web_search")) => {
            vec![format!("web search: {}", text(&item["query"]))]
        }
        ("error", _) => vec![format!("error: {}", text(&event["message"]))],
        ("turn.failed", _) => vec![format!("turn failed: {}", text(&event["error"]["message"]))],
        ("turn.completed", _) => {
            let usage = &event["usage"];
            let n = |k: &str| usage[k].as_i64().unwrap_or(0);
            vec![format!(
                "turn completed; tokens: {} in ({} cached), {} out ({} reasoning)",
                n("input_tokens"),
                n("cached_input_tokens"),
                n("output_tokens"),
                n("reasoning_output_tokens")
            )]
        }
        _ => Vec::new(),
    }
}

/// Writes one line to stdout. A reader that went away (`| head`) is not an error worth a
/// panic, so write errors are ignored, unlike `println!`.
pub fn print_line(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// `label: first line`, the rest indented under it.
pub fn labelled(label: &str, text: &str) -> Vec<String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut out = vec![format!("{label}: {first}")];
    out.extend(lines.map(|l| format!("  {l}")));
    out
}

/// Output lines indented by four spaces, the middle of long output elided.
pub fn indented_output(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let shown = |l: &&str| format!("    {l}");
    if lines.len() <= 2 * OUTPUT_EDGE_LINES {
        return lines.iter().map(shown).collect();
    }
    let mut out: Vec<String> = lines[..OUTPUT_EDGE_LINES].iter().map(shown).collect();
    out.push(format!(
        "    … {} more lines …",
        lines.len() - 2 * OUTPUT_EDGE_LINES
    ));
    out.extend(lines[lines.len() - OUTPUT_EDGE_LINES..].iter().map(shown));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_events() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"type": "item.started", "item": {"type": "command_execution", "command": "ls"}}),
                vec!["command: ls"],
            ),
            (
                json!({"type": "item.completed", "item": {"type": "command_execution", "command": "ls", "aggregated_output": "a\nb\n", "exit_code": 1}}),
                vec!["    a", "    b", "  (exit 1)"],
            ),
            (
                json!({"type": "item.completed", "item": {"type": "file_change", "status": "completed", "changes": [{"kind": "update", "path": "/w/a"}]}}),
                vec!["patch completed: update /w/a"],
            ),
            (
                json!({"type": "item.completed", "item": {"type": "agent_message", "text": "one\ntwo"}}),
                vec!["codex: one", "  two"],
            ),
            (
                json!({"type": "item.updated", "item": {"type": "todo_list", "items": [{"text": "a", "completed": true}, {"text": "b", "completed": false}]}}),
                vec!["plan:", "  [x] a", "  [ ] b"],
            ),
            (json!({"type": "error", "message": "m"}), vec!["error: m"]),
            (
                json!({"type": "turn.failed", "error": {"message": "m"}}),
                vec!["turn failed: m"],
            ),
            (json!({"type": "turn.started"}), vec![]),
            (
                json!({"type": "item.started", "item": {"type": "agent_message", "text": ""}}),
                vec![],
            ),
        ];
        for (event, want) in cases {
            assert_eq!(event_lines(&event), want, "{event}");
        }
    }

    #[test]
    fn long_output_is_elided_in_the_middle() {
        let output: String = (0..25).map(|i| format!("{i}\n")).collect();
        let lines = indented_output(&output);
        assert_eq!(lines.len(), 21);
        assert_eq!(lines[0], "    0");
        assert_eq!(lines[10], "    … 5 more lines …");
        assert_eq!(lines[20], "    24");
    }
}
