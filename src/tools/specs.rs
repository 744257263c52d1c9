//! The tools offered to the model: every tool definition a request carries is assembled here,
//! from the thread's settings (its resolved [`crate::models::ModelInfo`] and configuration).
//! Adding a tool is one line below: `specs.extend(<module>::spec(settings));`, returning
//! nothing when the tool does not apply (config off, model without images, …).
//!
//! Shapes: function tools `{"type":"function","name",…}` and freeform tools
//! `{"type":"custom","name",…}` work in both request shapes; hosted tools (`web_search`, …)
//! only in the classic one — the Responses Lite builder drops them (models.md §3a), so a
//! hosted tool's `spec` need not check the shape itself.

use serde_json::Value;

use crate::models::ShellType;
use crate::thread::Settings;

/// The tool definitions for one request of a thread with `settings`, in offering order.
pub fn tool_specs(settings: &Settings) -> Vec<Value> {
    let info = &settings.model_info;
    let mut specs = Vec::new();
    match info.shell_type() {
        // Unified exec (exec_command/write_stdin): the reference offers it in place of
        // `shell_command` too (a `shell_command` call is still answered).
        ShellType::ShellCommand | ShellType::UnifiedExec => {
            specs.extend(super::unified_exec::specs());
        }
        ShellType::Argv => specs.push(super::shell::shell_spec()),
    }
    specs.push(if info.uses_freeform_apply_patch() {
        crate::apply_patch::freeform_tool()
    } else {
        crate::apply_patch::function_tool()
    });
    // update_plan, view_image, dynamic tools, web_search (context.md §3).
    specs.extend(super::extra_definitions(
        settings,
        super::ModelCaps::of(info),
    ));
    specs
}

/// Whether a definition is one the backend runs itself (hosted), not a client tool.
pub fn is_hosted(spec: &Value) -> bool {
    !matches!(
        spec.get("type").and_then(Value::as_str),
        Some("function" | "custom" | "namespace")
    )
}
