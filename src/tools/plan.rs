//! The `update_plan` tool (context.md §3): the model keeps a checklist of steps; each call
//! replaces it and becomes one `turn/plan/updated` notification. Offered only when
//! `tools.update_plan` is on. The model is told "Plan updated"; no item is created.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{CallResult, ToolCall};
use crate::protocol::notify;
use crate::turn::TurnRunner;

/// The tool's name.
pub const NAME: &str = "update_plan";
/// What the model gets back after a valid update.
const UPDATED: &str = "Plan updated";

/// The function tool offered to the model.
pub fn definition() -> Value {
    json!({
        "type": "function",
        "name": NAME,
        "description": "Records your plan for the task as a list of steps and shows it to the user. Each call replaces the whole plan; keep at most one step in_progress and mark steps completed as you finish them.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "explanation": {"type": "string", "description": "Why the plan is what it is, or what changed."},
                "plan": {
                    "type": "array",
                    "description": "The steps, in order.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "step": {"type": "string", "description": "What the step does."},
                            "status": {"type": "string", "enum": ["pending", "in_progress", "completed"], "description": "Where the step stands."}
                        },
                        "required": ["step", "status"],
                        "additionalProperties": false
                    }
                }
            },
            "required": ["plan"],
            "additionalProperties": false
        }
    })
}

#[derive(Deserialize)]
struct Args {
    #[serde(default)]
    explanation: Option<String>,
    plan: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    step: String,
    status: Status,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Status {
    Pending,
    InProgress,
    Completed,
}

impl Status {
    fn wire(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "inProgress",
            Self::Completed => "completed",
        }
    }
}

/// The `turn/plan/updated` steps for `payload`, or the message telling the model what is wrong.
fn parse(payload: &str) -> Result<(Option<String>, Vec<Value>), String> {
    let args: Args = serde_json::from_str(payload)
        .map_err(|e| format!("failed to parse function arguments: {e}"))?;
    let plan = args
        .plan
        .iter()
        .map(|s| json!({"step": s.step, "status": s.status.wire()}))
        .collect();
    Ok((args.explanation, plan))
}

/// Runs one `update_plan` call.
pub fn run(turn: &mut TurnRunner, call: &ToolCall) -> CallResult {
    let text = match parse(&call.payload) {
        Ok((explanation, plan)) => {
            turn.rpc.notify(
                "turn/plan/updated",
                notify::PlanUpdated {
                    thread_id: &turn.thread_id,
                    turn_id: &turn.turn_id,
                    explanation: explanation.as_deref(),
                    plan: &plan,
                },
            );
            UPDATED.to_string()
        }
        Err(message) => message,
    };
    CallResult {
        output: call.output_item(&text),
        cancelled: false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let (explanation, plan) = parse(
            r#"{"explanation":"why","plan":[{"step":"a","status":"completed"},{"step":"b","status":"in_progress"},{"step":"c","status":"pending"}]}"#,
        )
        .unwrap();
        assert_eq!(explanation.as_deref(), Some("why"));
        assert_eq!(
            plan,
            [
                json!({"step": "a", "status": "completed"}),
                json!({"step": "b", "status": "inProgress"}),
                json!({"step": "c", "status": "pending"}),
            ]
        );
        let (none, empty) = parse(r#"{"plan":[]}"#).unwrap();
        assert!(none.is_none() && empty.is_empty());
        for bad in [
            "",
            "{}",
            r#"{"plan":[{"step":"a","status":"done"}]}"#,
            r#"{"plan":[{"status":"pending"}]}"#,
            r#"{"plan":"a, b"}"#,
        ] {
            let message = parse(bad).unwrap_err();
            assert!(
                message.starts_with("failed to parse function arguments"),
                "{bad}: {message}"
            );
        }
    }
}
