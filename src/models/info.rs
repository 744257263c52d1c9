//! One catalog entry (`ModelInfo`, models.md §2) and what it means for a request: reasoning,
//! summaries, verbosity, parallel tool calls, tool-output truncation, the tools' shapes, the
//! context window clients are told about, and the Responses Lite flag. Unknown fields are
//! ignored; unknown enum spellings are kept as strings and read conservatively.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Context window of a model the catalog does not know (fallback metadata).
pub const FALLBACK_CONTEXT_WINDOW: i64 = 272_000;
/// Share of the context window reported to clients when the entry does not say (percent).
pub const DEFAULT_EFFECTIVE_WINDOW_PERCENT: i64 = 95;
/// Tool-output bound of a model the catalog does not know.
const FALLBACK_TRUNCATION_BYTES: usize = 10_000;
/// Bytes per token when a token budget is turned into bytes (tokens ≈ bytes / 4).
pub const BYTES_PER_TOKEN: usize = 4;

/// One reasoning effort a model accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReasoningLevel {
    /// The `reasoning.effort` value (`low`, `medium`, …).
    pub effort: String,
    /// A short human description (shown by `model/list`).
    #[serde(default)]
    pub description: String,
}

/// How one tool output is bounded before the model reads it (`truncation_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct TruncationPolicy {
    /// `bytes` or `tokens`.
    pub mode: TruncationMode,
    /// The bound in that unit.
    pub limit: i64,
}

/// The unit of a [`TruncationPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TruncationMode {
    /// `limit` counts bytes.
    Bytes,
    /// `limit` counts tokens (≈ 4 bytes each).
    Tokens,
}

impl TruncationPolicy {
    /// The bound in bytes (tokens × 4), at least 1 KiB so a zero or negative limit cannot
    /// hide every output.
    pub fn byte_budget(&self) -> usize {
        let limit = usize::try_from(self.limit.max(0)).unwrap_or(usize::MAX);
        let bytes = match self.mode {
            TruncationMode::Bytes => limit,
            TruncationMode::Tokens => limit.saturating_mul(BYTES_PER_TOKEN),
        };
        bytes.max(1024)
    }
}

/// `model_messages`: per-model prompt material (fetched at run time, never committed).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ModelMessages {
    /// The model's base prompt.
    #[serde(default)]
    pub instructions_template: Option<String>,
}

/// Which shell tool a model is tuned to (`shell_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellType {
    /// `shell_command`: one command string run by the user's shell.
    ShellCommand,
    /// `shell`: an argv array (older models and unknown ones).
    Argv,
    /// `unified_exec`: `exec_command` + `write_stdin` (offered by the unified-exec tool).
    UnifiedExec,
}

/// What the catalog says about one model. Every field but `slug` is optional on the wire;
/// read it through the methods, which apply the defaults of models.md §2.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ModelInfo {
    /// The model id sent as `model`.
    pub slug: String,
    /// Name shown to users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// One-line description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `list` (shown) or `hide` (usable, not listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Order in `model/list`, lower first; the lowest visible one is the default model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Effort used when nothing else says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_reasoning_level: Option<String>,
    /// Efforts the model accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_reasoning_levels: Vec<ReasoningLevel>,
    /// Whether `reasoning.summary` may be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_reasoning_summaries: Option<bool>,
    /// Summary mode used when nothing else says; `none` sends no summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_reasoning_summary: Option<String>,
    /// Whether `text.verbosity` may be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_verbosity: Option<bool>,
    /// Verbosity used when nothing else says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_verbosity: Option<String>,
    /// `parallel_tool_calls` of classic requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_parallel_tool_calls: Option<bool>,
    /// Bound of each tool output the model reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation_policy: Option<TruncationPolicy>,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<i64>,
    /// Largest window the model can be configured to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_context_window: Option<i64>,
    /// Token count that triggers automatic compaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_compact_token_limit: Option<i64>,
    /// Share of the window clients are told about (percent, default 95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_context_window_percent: Option<i64>,
    /// `shell_command`, `unified_exec`, `local_shell`, `default`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell_type: Option<String>,
    /// `freeform` or `function`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_patch_tool_type: Option<String>,
    /// Kind of hosted web search the model supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_tool_type: Option<String>,
    /// `text`, `image`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_modalities: Option<Vec<String>>,
    /// The `version` we send must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_client_version: Option<String>,
    /// Requests must use the Responses Lite shape (models.md §3a).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_responses_lite: Option<bool>,
    /// `code_mode_only` for models the reference drives through a JavaScript tool (ignored:
    /// our ordinary tools work with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_mode: Option<String>,
    /// Older spelling of the base prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_instructions: Option<String>,
    /// The base prompt and other per-model texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_messages: Option<ModelMessages>,
    /// Fields `model/list` carries through (`upgrade`, `availability_nux`, service tiers…).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
    /// True for the fallback metadata of a slug the catalog does not know.
    #[serde(skip)]
    pub is_fallback: bool,
}

impl ModelInfo {
    /// Fallback metadata for a slug the catalog does not know (models.md §2): a 272 000-token
    /// window, reasoning on with encrypted reasoning, summaries `auto`, the argv `shell` tool and
    /// the JSON `apply_patch` tool, 10 000-byte tool outputs.
    pub fn fallback(slug: &str) -> Self {
        Self {
            slug: slug.to_string(),
            display_name: Some(slug.to_string()),
            description: None,
            visibility: Some("hide".to_string()),
            priority: Some(99),
            default_reasoning_level: None,
            supported_reasoning_levels: Vec::new(),
            supports_reasoning_summaries: Some(false),
            default_reasoning_summary: Some("auto".to_string()),
            support_verbosity: Some(false),
            default_verbosity: None,
            supports_parallel_tool_calls: Some(false),
            truncation_policy: Some(TruncationPolicy {
                mode: TruncationMode::Bytes,
                limit: FALLBACK_TRUNCATION_BYTES as i64,
            }),
            context_window: Some(FALLBACK_CONTEXT_WINDOW),
            max_context_window: Some(FALLBACK_CONTEXT_WINDOW),
            auto_compact_token_limit: None,
            effective_context_window_percent: None,
            shell_type: Some("default".to_string()),
            apply_patch_tool_type: Some("function".to_string()),
            web_search_tool_type: None,
            input_modalities: None,
            minimal_client_version: None,
            use_responses_lite: Some(false),
            tool_mode: None,
            base_instructions: None,
            model_messages: None,
            extra: serde_json::Map::new(),
            is_fallback: true,
        }
    }

    /// Whether `model/list` shows the model.
    pub fn is_listed(&self) -> bool {
        self.visibility.as_deref().is_none_or(|v| v == "list")
    }

    /// `model/list` order key (lower first; unknown last).
    pub fn priority(&self) -> i64 {
        self.priority.unwrap_or(i64::MAX)
    }

    /// Whether the model takes `reasoning` and returns encrypted reasoning: every catalog
    /// model that lists reasoning levels or a default level, and every unknown one.
    pub fn is_reasoning(&self) -> bool {
        self.is_fallback
            || self.default_reasoning_level.is_some()
            || !self.supported_reasoning_levels.is_empty()
    }

    /// The `reasoning.summary` to send given an explicit choice (config, thread or turn):
    /// `None` when the model takes no summary or the choice (else the default) is `none`.
    pub fn reasoning_summary(&self, explicit: Option<&str>) -> Option<String> {
        if !self.is_reasoning() {
            return None;
        }
        let supported = self.is_fallback || self.supports_reasoning_summaries.unwrap_or(false);
        if !supported && explicit.is_none() {
            return None;
        }
        let summary = explicit.or(self.default_reasoning_summary.as_deref())?;
        (summary != "none").then(|| summary.to_string())
    }

    /// The `reasoning.effort` to send given an explicit choice; `None` sends no effort.
    pub fn reasoning_effort(&self, explicit: Option<&str>) -> Option<String> {
        if !self.is_reasoning() {
            return None;
        }
        explicit
            .or(self.default_reasoning_level.as_deref())
            .filter(|e| !e.is_empty() && *e != "none")
            .map(str::to_string)
    }

    /// The `text.verbosity` to send given an explicit choice (`model_verbosity`).
    pub fn verbosity(&self, explicit: Option<&str>) -> Option<String> {
        if !self.support_verbosity.unwrap_or(false) {
            return None;
        }
        explicit
            .or(self.default_verbosity.as_deref())
            .map(str::to_string)
    }

    /// `parallel_tool_calls` of a classic request (always false in the Lite shape).
    pub fn supports_parallel_tool_calls(&self) -> bool {
        self.supports_parallel_tool_calls.unwrap_or(false)
    }

    /// Whether requests use the Responses Lite shape.
    pub fn uses_responses_lite(&self) -> bool {
        self.use_responses_lite.unwrap_or(false)
    }

    /// The byte bound of each tool output the model reads.
    pub fn tool_output_budget_bytes(&self) -> usize {
        self.truncation_policy
            .unwrap_or(TruncationPolicy {
                mode: TruncationMode::Bytes,
                limit: FALLBACK_TRUNCATION_BYTES as i64,
            })
            .byte_budget()
    }

    /// The context window in tokens (fallback: 272 000).
    pub fn context_window(&self) -> i64 {
        self.context_window.unwrap_or(FALLBACK_CONTEXT_WINDOW)
    }

    /// `modelContextWindow` told to clients: the window × the effective percent (default 95).
    pub fn effective_context_window(&self) -> i64 {
        let percent = self
            .effective_context_window_percent
            .unwrap_or(DEFAULT_EFFECTIVE_WINDOW_PERCENT)
            .clamp(1, 100);
        self.context_window() * percent / 100
    }

    /// The shell tool the model is tuned to: `shell_command` for `shell_command`, unified exec
    /// for `unified_exec`, the argv `shell` tool otherwise.
    pub fn shell_type(&self) -> ShellType {
        match self.shell_type.as_deref() {
            Some("shell_command") => ShellType::ShellCommand,
            Some("unified_exec") => ShellType::UnifiedExec,
            _ => ShellType::Argv,
        }
    }

    /// Whether `apply_patch` is offered in its freeform (grammar) shape rather than as a JSON
    /// function.
    pub fn uses_freeform_apply_patch(&self) -> bool {
        self.apply_patch_tool_type.as_deref() == Some("freeform")
    }

    /// Whether images may be sent to the model (default: yes).
    pub fn accepts_images(&self) -> bool {
        self.input_modalities
            .as_ref()
            .is_none_or(|m| m.iter().any(|k| k == "image"))
    }

    /// The model's own base prompt from the catalog, if it has one.
    pub fn base_instructions(&self) -> Option<&str> {
        self.model_messages
            .as_ref()
            .and_then(|m| m.instructions_template.as_deref())
            .or(self.base_instructions.as_deref())
            .filter(|text| !text.trim().is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(value: Value) -> ModelInfo {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn request_settings_from_entries() {
        struct Case {
            name: &'static str,
            entry: ModelInfo,
            explicit_effort: Option<&'static str>,
            explicit_summary: Option<&'static str>,
            effort: Option<&'static str>,
            summary: Option<&'static str>,
            verbosity: Option<&'static str>,
        }
        let lite = entry(json!({"slug": "m", "default_reasoning_level": "low",
            "supported_reasoning_levels": [{"effort": "low"}], "supports_reasoning_summaries": true,
            "default_reasoning_summary": "none", "support_verbosity": true, "default_verbosity": "low"}));
        let cases = [
            Case {
                name: "catalog defaults; summary none means no summary",
                entry: lite.clone(),
                explicit_effort: None,
                explicit_summary: None,
                effort: Some("low"),
                summary: None,
                verbosity: Some("low"),
            },
            Case {
                name: "explicit choices win",
                entry: lite.clone(),
                explicit_effort: Some("high"),
                explicit_summary: Some("detailed"),
                effort: Some("high"),
                summary: Some("detailed"),
                verbosity: Some("low"),
            },
            Case {
                name: "an explicit none sends no summary",
                entry: lite,
                explicit_effort: None,
                explicit_summary: Some("none"),
                effort: Some("low"),
                summary: None,
                verbosity: Some("low"),
            },
            Case {
                name: "a non-reasoning entry sends neither",
                entry: entry(json!({"slug": "plain"})),
                explicit_effort: Some("high"),
                explicit_summary: Some("auto"),
                effort: None,
                summary: None,
                verbosity: None,
            },
            Case {
                name: "summaries unsupported and not asked for",
                entry: entry(json!({"slug": "r", "default_reasoning_level": "medium",
                    "default_reasoning_summary": "auto"})),
                explicit_effort: None,
                explicit_summary: None,
                effort: Some("medium"),
                summary: None,
                verbosity: None,
            },
            Case {
                name: "fallback: reasoning on, summary auto, no effort unless asked",
                entry: ModelInfo::fallback("mystery"),
                explicit_effort: None,
                explicit_summary: None,
                effort: None,
                summary: Some("auto"),
                verbosity: None,
            },
        ];
        for case in cases {
            let e = &case.entry;
            assert_eq!(
                e.reasoning_effort(case.explicit_effort).as_deref(),
                case.effort,
                "{}",
                case.name
            );
            assert_eq!(
                e.reasoning_summary(case.explicit_summary).as_deref(),
                case.summary,
                "{}",
                case.name
            );
            assert_eq!(
                e.verbosity(None).as_deref(),
                case.verbosity,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn windows_truncation_and_tools() {
        let e = entry(json!({"slug": "m", "context_window": 272000,
            "truncation_policy": {"mode": "tokens", "limit": 10000}, "shell_type": "shell_command",
            "apply_patch_tool_type": "freeform", "input_modalities": ["text"],
            "model_messages": {"instructions_template": "be good"}, "upgrade": null}));
        assert_eq!(e.effective_context_window(), 258_400);
        assert_eq!(e.tool_output_budget_bytes(), 40_000);
        assert_eq!(e.shell_type(), ShellType::ShellCommand);
        assert!(e.uses_freeform_apply_patch());
        assert!(!e.accepts_images());
        assert_eq!(e.base_instructions(), Some("be good"));
        assert!(e.extra.contains_key("upgrade"));
        let custom = entry(json!({"slug": "m", "context_window": 1000,
            "effective_context_window_percent": 50,
            "truncation_policy": {"mode": "bytes", "limit": 0}}));
        assert_eq!(custom.effective_context_window(), 500);
        assert_eq!(custom.tool_output_budget_bytes(), 1024);
        let fallback = ModelInfo::fallback("x");
        assert_eq!(fallback.effective_context_window(), 258_400);
        assert_eq!(fallback.shell_type(), ShellType::Argv);
        assert!(!fallback.uses_freeform_apply_patch());
        assert!(fallback.accepts_images());
        assert!(fallback.base_instructions().is_none());
    }
}
