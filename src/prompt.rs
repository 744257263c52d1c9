//! What the model is sent (model-api.md §2–3, models.md §3): our base instructions, the
//! permissions and environment context messages, user input in Responses form, and the request
//! of one round trip in the classic or the Responses Lite shape, driven by the thread's
//! catalog entry. The tool definitions come from `tools/specs.rs`; sending is `client/`'s;
//! deciding when is `turn/`'s.

use serde_json::{Value, json};

use crate::client::ModelRequest;
use crate::config::ApprovalPolicy;
use crate::protocol::UserInput;
use crate::sandbox::SandboxPolicy;
use crate::thread::Settings;

/// Our base instructions (written for this project), unless a thread overrides them.
pub const BASE_INSTRUCTIONS: &str = include_str!("prompts/base_instructions.md");

/// Largest local image sent inline.
const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;

fn permissions_text(settings: &Settings) -> String {
    let sandbox = match &settings.sandbox {
        SandboxPolicy::ReadOnly => {
            "Commands run in a read-only sandbox: they can read files but not write any, and have no network access.".to_string()
        }
        SandboxPolicy::WorkspaceWrite {
            network_access,
            writable_roots,
            ..
        } => {
            let mut roots = vec![settings.cwd.display().to_string()];
            roots.extend(writable_roots.iter().map(|r| r.display().to_string()));
            format!(
                "Commands run in a sandbox that can write only inside {} and the temporary directory (the .git and .codex folders stay read-only); network access is {}.",
                roots.join(", "),
                if *network_access { "enabled" } else { "disabled" }
            )
        }
        SandboxPolicy::DangerFullAccess => {
            "Commands run without a sandbox: full disk and network access. Be careful.".to_string()
        }
    };
    let approvals = match settings.approval {
        ApprovalPolicy::Never => {
            "Approval policy is never: the user is never asked. Do not request escalated permissions; work within the sandbox and report what you could not do."
        }
        ApprovalPolicy::OnRequest => {
            "Approval policy is on-request: commands run in the sandbox without asking; to run one outside it, set sandbox_permissions to require_escalated with a justification and the user decides."
        }
        ApprovalPolicy::Untrusted => {
            "Approval policy is untrusted: the user approves every command except simple read-only ones, and every file edit."
        }
    };
    format!("<permissions instructions>\n{sandbox}\n{approvals}\n</permissions instructions>")
}

fn message(role: &str, text: String) -> Value {
    json!({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]})
}

/// The developer message sent before a turn whenever the settings the model knows about
/// change: the permissions and the thread's developer instructions. (The project instructions
/// and environment context are `context/`'s.)
pub fn developer_message(settings: &Settings) -> Value {
    let mut developer = permissions_text(settings);
    if let Some(extra) = settings.developer_instructions.as_deref() {
        developer.push_str("\n\n");
        developer.push_str(extra);
    }
    message("developer", developer)
}

/// A note the model sees after a turn the user interrupted.
pub fn interrupted_note() -> Value {
    message(
        "user",
        "<turn_aborted>\nThe user interrupted the previous turn on purpose; any command it was running was stopped. Do not resume that work unless asked again.\n</turn_aborted>".to_string(),
    )
}

/// Checks user input that names local files before a turn starts: each `localImage` must be a
/// readable regular file of at most 20 MiB.
pub fn validate_input(input: &[UserInput]) -> Result<(), String> {
    if input.is_empty() {
        return Err("input must not be empty".to_string());
    }
    for item in input {
        if let UserInput::LocalImage { path } = item {
            let meta =
                std::fs::metadata(path).map_err(|e| format!("cannot read image {path}: {e}"))?;
            if !meta.is_file() {
                return Err(format!("image {path} is not a file"));
            }
            if meta.len() > MAX_IMAGE_BYTES {
                return Err(format!("image {path} is larger than 20 MiB"));
            }
        }
    }
    Ok(())
}

fn image_mime(path: &str) -> &'static str {
    let lower = path.to_ascii_lowercase();
    match lower.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

/// The user's input as a Responses `message` item. A local image that can no longer be read
/// becomes a text note so the model knows it is missing; so does every image when the model
/// takes no images (its catalog `input_modalities`).
pub fn user_message(input: &[UserInput], accepts_images: bool) -> Value {
    use base64::Engine;
    let content: Vec<Value> = input
        .iter()
        .map(|item| match item {
            UserInput::Text { text, .. } => json!({"type": "input_text", "text": text}),
            UserInput::Image { url } if !accepts_images => json!({"type": "input_text", "text": format!("[image {url} omitted: this model does not accept images]")}),
            UserInput::LocalImage { path } if !accepts_images => json!({"type": "input_text", "text": format!("[image {path} omitted: this model does not accept images]")}),
            UserInput::Image { url } => json!({"type": "input_image", "image_url": url}),
            UserInput::LocalImage { path } => match std::fs::read(path) {
                Ok(bytes) => json!({"type": "input_image", "image_url": format!(
                    "data:{};base64,{}",
                    image_mime(path),
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                )}),
                Err(e) => json!({"type": "input_text", "text": format!("[image {path} could not be read: {e}]")}),
            },
        })
        .collect();
    json!({"type": "message", "role": "user", "content": content})
}

/// The base prompt of a thread: its `baseInstructions`, else the catalog's prompt for the
/// model, else ours.
pub fn base_instructions(settings: &Settings) -> &str {
    settings
        .base_instructions
        .as_deref()
        .or_else(|| settings.model_info.base_instructions())
        .unwrap_or(BASE_INSTRUCTIONS)
}

/// Whether a history item may be replayed: reasoning only with its `encrypted_content`
/// (replaying one without it is rejected under `store:false`).
fn is_replayable(item: &Value) -> bool {
    item.get("type").and_then(Value::as_str) != Some("reasoning")
        || item
            .get("encrypted_content")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
}

/// The request of one round trip (models.md §3), in the shape the model needs: the whole
/// history, the tools of `crate::tools::specs` plus `live_tools` (those that depend on the
/// turn's running state, such as MCP servers' tools), reasoning (with encrypted reasoning included)
/// for every reasoning model, the summary only when one applies, `text.verbosity` and the
/// turn's `outputSchema` as `text.format`.
pub fn build_request<'a>(
    settings: &Settings,
    thread_id: &str,
    history: impl Iterator<Item = &'a Value>,
    output_schema: Option<&Value>,
    live_tools: Vec<Value>,
) -> ModelRequest {
    let info = &settings.model_info;
    let lite = info.uses_responses_lite();
    let mut tools = crate::tools::specs::tool_specs(settings);
    tools.extend(live_tools);
    // Written once from the thread's own items (no copy of the history as a tree).
    let mut written = Vec::new();
    for item in history.filter(|item| is_replayable(item)) {
        let mark = written.len();
        if mark > 0 {
            written.push(b',');
        }
        if let Err(e) = serde_json::to_writer(&mut written, item) {
            // A `Value` always serializes; should it not, the item is left out, loudly.
            crate::log::warn(&format!("history item left out of the request: {e}"));
            written.truncate(mark);
        }
    }
    let mut body = json!({"model": settings.model});
    if lite {
        let client_tools: Vec<Value> = tools
            .into_iter()
            .filter(|t| {
                let hosted = crate::tools::specs::is_hosted(t);
                if hosted {
                    crate::log::debug(&format!(
                        "not offering hosted tool {} to a Responses Lite model",
                        t.get("type").and_then(Value::as_str).unwrap_or("?")
                    ));
                }
                !hosted
            })
            .collect();
        let input = vec![
            json!({
                "type": "additional_tools",
                "role": "developer",
                "tools": [{"type": "namespace", "name": LITE_TOOL_NAMESPACE, "description": "", "tools": client_tools}],
            }),
            message("developer", base_instructions(settings).to_string()),
        ];
        body["input"] = Value::Array(input);
        body["tool_choice"] = json!("auto");
        body["parallel_tool_calls"] = json!(false);
    } else {
        body["instructions"] = json!(base_instructions(settings));
        body["input"] = json!([]);
        body["tools"] = Value::Array(tools);
        body["tool_choice"] = json!("auto");
        body["parallel_tool_calls"] = json!(info.supports_parallel_tool_calls());
    }
    if info.is_reasoning() {
        let mut reasoning = serde_json::Map::new();
        if let Some(effort) = settings.reasoning_effort() {
            reasoning.insert("effort".into(), json!(effort));
        }
        if let Some(summary) = settings.reasoning_summary() {
            reasoning.insert("summary".into(), json!(summary));
        }
        if lite {
            reasoning.insert("context".into(), json!("all_turns"));
        }
        body["reasoning"] = Value::Object(reasoning);
    }
    body["store"] = json!(false);
    body["stream"] = json!(true);
    if info.is_reasoning() {
        body["include"] = json!(["reasoning.encrypted_content"]);
    }
    body["prompt_cache_key"] = json!(thread_id);
    let mut text = serde_json::Map::new();
    if let Some(verbosity) = settings.verbosity() {
        text.insert("verbosity".into(), json!(verbosity));
    }
    if let Some(schema) = output_schema {
        text.insert(
            "format".into(),
            json!({"type": "json_schema", "name": "codex_output_schema", "strict": true, "schema": schema}),
        );
    }
    if !text.is_empty() {
        body["text"] = Value::Object(text);
    }
    ModelRequest {
        body,
        history: written,
        lite,
    }
}

/// The namespace the Responses Lite shape wraps client tools in (as the reference does).
pub const LITE_TOOL_NAMESPACE: &str = "functions";

/// A model output item prepared for sending back as input: for messages, reasoning and tool
/// calls the server-side `id` and `status` are dropped (nothing is stored with `store:false`;
/// reasoning travels as `encrypted_content`); hosted-tool items keep them (web searches lose
/// only their `sources`); everything else is kept as received.
pub fn output_as_input(item: &Value) -> Value {
    if crate::tools::web_search::is_call(item) {
        return crate::tools::web_search::as_input(item);
    }
    let mut item = item.clone();
    let is_ours = matches!(
        item.get("type").and_then(Value::as_str),
        Some("message" | "reasoning" | "function_call" | "custom_tool_call")
    );
    // Other kinds (hosted tools we do not know) go back whole: their id is what identifies them.
    if is_ours && let Some(map) = item.as_object_mut() {
        map.remove("id");
        map.remove("status");
    }
    item
}
