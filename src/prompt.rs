//! What the model is sent (model-api.md §2–3): our base instructions, the permissions and
//! environment context messages, the tool definitions, user input in Responses form, and the
//! request body of one round trip. Sending it is `client/`'s; deciding when is `turn.rs`'s.

use serde_json::{Value, json};

use crate::config::ApprovalPolicy;
use crate::protocol::UserInput;
use crate::sandbox::SandboxPolicy;
use crate::thread::Settings;

/// Our base instructions (written for this project), unless a thread overrides them.
pub const BASE_INSTRUCTIONS: &str = include_str!("prompts/base_instructions.md");

/// Largest local image sent inline.
const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;

/// Whether `model` takes `reasoning` and returns encrypted reasoning (GPT-5 and o-series).
pub fn is_reasoning_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.starts_with("gpt-5")
        || m.starts_with("o1")
        || m.starts_with("o3")
        || m.starts_with("o4")
        || m.starts_with("codex-")
}

/// Whether `model` gets the freeform (grammar) `apply_patch` tool rather than the JSON one.
pub fn uses_freeform_apply_patch(model: &str) -> bool {
    model.to_ascii_lowercase().starts_with("gpt-5")
}

/// The `shell` function tool.
pub fn shell_tool() -> Value {
    json!({
        "type": "function",
        "name": "shell",
        "description": "Runs a command and returns its output. Give the program and its arguments as an array, e.g. [\"bash\", \"-lc\", \"cargo test\"]. Commands run in the sandbox of the session; set with_escalated_permissions (with a justification) to ask the user to run one outside it.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "array", "items": {"type": "string"}, "description": "The program and its arguments."},
                "workdir": {"type": "string", "description": "Working directory; defaults to the session's."},
                "timeout_ms": {"type": "number", "description": "Kill the command after this many milliseconds."},
                "with_escalated_permissions": {"type": "boolean", "description": "Ask to run outside the sandbox."},
                "justification": {"type": "string", "description": "Why escalation is needed; shown to the user."}
            },
            "required": ["command"],
            "additionalProperties": false
        }
    })
}

/// The tools offered to `model`.
pub fn tools(model: &str) -> Vec<Value> {
    let apply_patch = if uses_freeform_apply_patch(model) {
        crate::apply_patch::freeform_tool()
    } else {
        crate::apply_patch::function_tool()
    };
    vec![shell_tool(), apply_patch]
}

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
            "Approval policy is on-request: commands run in the sandbox without asking; to run one outside it, set with_escalated_permissions with a justification and the user decides."
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
/// becomes a text note so the model knows it is missing.
pub fn user_message(input: &[UserInput]) -> Value {
    use base64::Engine;
    let content: Vec<Value> = input
        .iter()
        .map(|item| match item {
            UserInput::Text { text, .. } => json!({"type": "input_text", "text": text}),
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

/// The body of one round trip: the whole history, tools, and reasoning settings for reasoning
/// models (model-api.md §2).
pub fn request_body<'a>(
    settings: &Settings,
    thread_id: &str,
    history: impl Iterator<Item = &'a Value>,
) -> Value {
    let instructions = settings
        .base_instructions
        .as_deref()
        .unwrap_or(BASE_INSTRUCTIONS);
    let mut body = json!({
        "model": settings.model,
        "instructions": instructions,
        "input": history.collect::<Vec<_>>(),
        "tools": tools(&settings.model)
            .into_iter()
            .chain(crate::tools::extra_definitions(settings, crate::tools::ModelCaps::of(&settings.model)))
            .collect::<Vec<_>>(),
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "store": false,
        "stream": true,
        "prompt_cache_key": thread_id,
    });
    if is_reasoning_model(&settings.model) {
        body["reasoning"] = json!({
            "effort": settings.effort.as_deref().unwrap_or("medium"),
            "summary": settings.summary,
        });
        body["include"] = json!(["reasoning.encrypted_content"]);
    }
    body
}

/// Constrains the final message to `schema` (`turn/start` `outputSchema`): the Responses
/// `text.format` of a strict JSON Schema, named as the reference names it.
pub fn set_output_schema(body: &mut Value, schema: &Value) {
    body["text"]["format"] = json!({
        "type": "json_schema",
        "name": "codex_output_schema",
        "schema": schema,
        "strict": true,
    });
}

/// A model output item prepared for sending back as input: the server-side `id` and `status`
/// are dropped (nothing is stored with `store:false`; reasoning travels as `encrypted_content`),
/// everything else is kept as received.
pub fn output_as_input(item: &Value) -> Value {
    if crate::tools::web_search::is_call(item) {
        return crate::tools::web_search::as_input(item);
    }
    let mut item = item.clone();
    if let Some(map) = item.as_object_mut() {
        map.remove("id");
        map.remove("status");
    }
    item
}
