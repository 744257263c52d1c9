//! What a tool's output looks like to the model: the text bounded by the catalog's
//! truncation policy (head and tail kept, a `…N tokens truncated…` or `…N bytes truncated…`
//! marker between them) and the command format the reference uses (`Exit code`, `Wall time`,
//! `Output`). Every tool that returns text to the model bounds it here.

use std::time::Duration;

use crate::models::{BYTES_PER_TOKEN, ModelInfo, TruncationMode};

/// `text` within the model's tool-output budget: unchanged when it fits, else its head and
/// tail (cut at character boundaries) around a marker saying how much was left out, in the
/// policy's unit.
pub fn truncate_for_model(text: &str, model: &ModelInfo) -> String {
    let budget = model.tool_output_budget_bytes();
    if text.len() <= budget {
        return text.to_string();
    }
    let half = budget / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let elided = tail_start - head_end;
    let tokens = matches!(
        model.truncation_policy.map(|p| p.mode),
        Some(TruncationMode::Tokens)
    );
    let marker = if tokens {
        format!("…{} tokens truncated…", elided.div_ceil(BYTES_PER_TOKEN))
    } else {
        format!("…{elided} bytes truncated…")
    };
    format!("{}{marker}{}", &text[..head_end], &text[tail_start..])
}

/// A finished command as the model reads it:
///
/// ```text
/// Exit code: 3
/// Wall time: 0.0852 seconds
/// Output:
/// <output, bounded; "Total output lines: N" first when it was cut>
/// ```
pub fn format_command_output(
    exit_code: i32,
    wall_time: Duration,
    output: &str,
    model: &ModelInfo,
) -> String {
    let bounded = truncate_for_model(output, model);
    let body = if bounded.len() == output.len() {
        bounded
    } else {
        format!(
            "Total output lines: {}\n\n{bounded}",
            output.lines().count()
        )
    };
    format!(
        "Exit code: {exit_code}\nWall time: {:.4} seconds\nOutput:\n{body}",
        wall_time.as_secs_f64()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(policy: serde_json::Value) -> ModelInfo {
        serde_json::from_value(json!({"slug": "m", "truncation_policy": policy})).unwrap()
    }

    #[test]
    fn truncation_by_policy() {
        let tokens = model(json!({"mode": "tokens", "limit": 500})); // 2000 bytes
        let bytes = model(json!({"mode": "bytes", "limit": 1500}));
        let short = "fits";
        assert_eq!(truncate_for_model(short, &tokens), short);
        let long: String = (0..2000).map(|i| format!("{i}\n")).collect();
        let cut = truncate_for_model(&long, &tokens);
        assert!(cut.starts_with("0\n1\n2\n"), "{cut}");
        assert!(cut.ends_with("1998\n1999\n"));
        assert!(cut.contains("tokens truncated…"));
        assert!(cut.len() < 2100, "{}", cut.len());
        let cut = truncate_for_model(&long, &bytes);
        let elided = long.len() - 1500;
        assert!(
            cut.contains(&format!("…{elided} bytes truncated…")),
            "{cut}"
        );
        // multi-byte text is cut at character boundaries
        let wide = "é".repeat(2000);
        let cut = truncate_for_model(&wide, &bytes);
        assert!(cut.starts_with('é') && cut.ends_with('é'));
        // the fallback bound is 10 000 bytes
        let fallback = ModelInfo::fallback("x");
        assert_eq!(
            truncate_for_model(&"a".repeat(10_000), &fallback).len(),
            10_000
        );
        assert!(truncate_for_model(&"a".repeat(10_001), &fallback).contains("bytes truncated"));
    }

    #[test]
    fn command_format() {
        let info = model(json!({"mode": "bytes", "limit": 1024}));
        let text = format_command_output(3, Duration::from_millis(85), "hello\n", &info);
        assert_eq!(
            text,
            "Exit code: 3\nWall time: 0.0850 seconds\nOutput:\nhello\n"
        );
        let long: String = (0..1000).map(|i| format!("{i}\n")).collect();
        let text = format_command_output(0, Duration::ZERO, &long, &info);
        assert!(
            text.starts_with(
                "Exit code: 0\nWall time: 0.0000 seconds\nOutput:\nTotal output lines: 1000\n\n0\n"
            ),
            "{text}"
        );
    }
}
