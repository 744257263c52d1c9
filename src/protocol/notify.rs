//! Notification params shared by many methods. Borrowed, so the per-delta path allocates
//! nothing beyond the serialized line.

use serde::Serialize;

use super::{ThreadItem, ThreadStatus, ThreadTokenUsage, Turn, TurnError};

/// `item/started`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemStarted<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// The item as it starts.
    pub item: &'a ThreadItem,
    /// Unix ms.
    pub started_at_ms: u64,
}

/// `item/completed`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemCompleted<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// The item as completed.
    pub item: &'a ThreadItem,
    /// Unix ms.
    pub completed_at_ms: u64,
}

/// `item/agentMessage/delta` and `item/commandExecution/outputDelta`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDelta<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// Item id.
    pub item_id: &'a str,
    /// The new text.
    pub delta: &'a str,
}

/// `item/reasoning/summaryTextDelta`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryDelta<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// Item id.
    pub item_id: &'a str,
    /// Which summary part.
    pub summary_index: i64,
    /// The new text.
    pub delta: &'a str,
}

/// `turn/started` and `turn/completed`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnEvent<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// The turn.
    pub turn: &'a Turn,
}

/// `thread/status/changed`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// New status.
    pub status: &'a ThreadStatus,
}

/// `error`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Error<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// Whether the server retries by itself.
    pub will_retry: bool,
    /// What happened.
    pub error: &'a TurnError,
}

/// `thread/tokenUsage/updated`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsageUpdated<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// Usage.
    pub token_usage: ThreadTokenUsage,
}

/// `turn/diff/updated`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffUpdated<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// The turn's cumulative unified diff.
    pub diff: &'a str,
}

/// `serverRequest/resolved`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestResolved<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Our request id.
    pub request_id: i64,
}

/// `thread/started` and `thread/unarchived`'s result.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadEvent<'a> {
    /// The thread.
    pub thread: &'a super::Thread,
}

/// `thread/archived` and `thread/unarchived`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadIdOnly<'a> {
    /// Thread id.
    pub thread_id: &'a str,
}

/// `warning`: something the client asked for or configured is not (fully) honoured.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning<'a> {
    /// The thread it concerns, if any.
    pub thread_id: Option<&'a str>,
    /// What the user should know.
    pub message: &'a str,
}

/// `configWarning`: configuration that was ignored or could not be applied.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigWarning<'a> {
    /// What happened, naming the keys.
    pub summary: &'a str,
    /// More detail.
    pub details: Option<&'a str>,
}

/// `turn/plan/updated`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanUpdated<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// Why the plan changed.
    pub explanation: Option<&'a str>,
    /// The steps, `{step, status}` with status `pending`, `inProgress` or `completed`.
    pub plan: &'a [serde_json::Value],
}

/// `item/tool/call`: the server asks the client to run one of its dynamic tools.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicToolCall<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// Turn id.
    pub turn_id: &'a str,
    /// The model's call id.
    pub call_id: &'a str,
    /// The tool's namespace, if any.
    pub namespace: Option<&'a str>,
    /// Tool name.
    pub tool: &'a str,
    /// The model's arguments.
    pub arguments: &'a serde_json::Value,
}

/// `thread/name/updated`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NameUpdated<'a> {
    /// Thread id.
    pub thread_id: &'a str,
    /// The new name.
    pub thread_name: Option<&'a str>,
}
