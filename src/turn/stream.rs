//! One model round trip: starting the stream with stream-level retries, reading it to its end
//! under the idle deadline and the response-size bound, and mapping its events to thread items
//! (`item/started`, deltas, `item/completed`), token usage and rate limits.

use std::time::{Duration, Instant};

use crossbeam_channel::select;
use serde_json::Value;

use crate::client::{ClientError, ModelRequest, StreamEvent};
use crate::protocol::notify;
use crate::protocol::{ThreadItem, TurnError};
use crate::thread::Control;
use crate::tools::{ToolCall, web_search};

use super::{Round, TurnRunner};

/// Longest pause between stream-level retries.
const MAX_STREAM_BACKOFF: Duration = Duration::from_secs(5);
/// Most text one model response may stream before it is cut off: whatever the model does,
/// a turn holds bounded memory.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

struct OpenItem {
    item: ThreadItem,
    got_delta: bool,
}

impl TurnRunner {
    /// One model round trip with stream-level retries.
    pub(crate) fn sample(&mut self, request: &ModelRequest) -> Round {
        let max_retries = self.client.stream_max_retries();
        let mut attempt = 0;
        loop {
            let stream = self.client.start(request, &self.thread_id);
            match self.consume(&stream) {
                Round::Failed(error) if error.is_stream_disconnect && attempt < max_retries => {
                    drop(stream);
                    attempt += 1;
                    let notice = TurnError {
                        message: format!("Reconnecting... {attempt}/{max_retries}"),
                        codex_error_info: Some(error.info.clone()),
                        additional_details: Some(error.message.clone()),
                    };
                    self.rpc.notify(
                        "error",
                        notify::Error {
                            thread_id: &self.thread_id,
                            turn_id: &self.turn_id,
                            will_retry: true,
                            error: &notice,
                        },
                    );
                    let backoff = (Duration::from_millis(200) * 2u32.pow(attempt as u32 - 1))
                        .min(MAX_STREAM_BACKOFF);
                    if self.wait_interruptibly(backoff) {
                        return Round::Interrupted;
                    }
                }
                other => return other,
            }
        }
    }

    /// Sleeps up to `duration`, collecting steering input; true when interrupted meanwhile.
    fn wait_interruptibly(&mut self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.handle.is_interrupted() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.control.recv_timeout(left) {
                Ok(Control::Interrupt) => return true,
                Ok(Control::Steer(input)) => self.pending_input.push(input),
                Err(_) => {}
            }
        }
    }

    /// Reads one stream to its end, turning events into items and notifications.
    fn consume(&mut self, stream: &crate::client::ResponseStream) -> Round {
        let idle = self.client.stream_idle_timeout();
        let control = self.control.clone();
        let mut deadline = Instant::now() + idle;
        let mut open: Vec<OpenItem> = Vec::new();
        let mut outputs = Vec::new();
        let mut calls = Vec::new();
        let mut received = 0usize;
        // Usage windows this response reported (its headers, then any stream event).
        let mut rate_limits = None;
        loop {
            if received > MAX_RESPONSE_BYTES {
                stream.abort();
                self.close_all(&mut open);
                return Round::Failed(ClientError::new(
                    format!(
                        "the model response exceeded {} MiB and was stopped",
                        MAX_RESPONSE_BYTES >> 20
                    ),
                    crate::protocol::CodexErrorInfo::Other,
                    None,
                ));
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            select! {
                recv(stream.events()) -> event => {
                    deadline = Instant::now() + idle;
                    let event = match event {
                        Ok(event) => event,
                        Err(_) => StreamEvent::Failed(ClientError::stream_disconnected(
                            "stream closed before response.completed",
                        )),
                    };
                    match event {
                        StreamEvent::Retrying { attempt, delay } => {
                            crate::log::debug(&format!("turn {}: request retry {attempt} in {delay:?}", self.turn_id));
                            deadline += delay;
                        }
                        StreamEvent::Created { response_id } => {
                            crate::log::debug(&format!("turn {}: response {response_id:?} started", self.turn_id));
                        }
                        StreamEvent::ItemAdded(_) if self.quiet => {}
                        StreamEvent::TextDelta { delta, .. } | StreamEvent::ReasoningSummaryDelta { delta, .. } if self.quiet => {
                            received += delta.len();
                        }
                        StreamEvent::ItemDone(item) if self.quiet => {
                            received += payload_len(&item);
                            outputs.push(item);
                        }
                        StreamEvent::ItemAdded(item) => self.open_item(&mut open, &item),
                        StreamEvent::TextDelta { item_id, delta } => {
                            received += delta.len();
                            let index = self.find_or_open(&mut open, &item_id, false);
                            if let ThreadItem::AgentMessage { text, .. } = &mut open[index].item {
                                text.push_str(&delta);
                            }
                            open[index].got_delta = true;
                            self.item_delta("item/agentMessage/delta", &item_id, &delta);
                        }
                        StreamEvent::ReasoningSummaryDelta { item_id, summary_index, delta } => {
                            received += delta.len();
                            let index = self.find_or_open(&mut open, &item_id, true);
                            if let ThreadItem::Reasoning { summary, .. } = &mut open[index].item {
                                let slot = usize::try_from(summary_index).unwrap_or(0).min(64);
                                if summary.len() <= slot {
                                    summary.resize(slot + 1, String::new());
                                }
                                summary[slot].push_str(&delta);
                            }
                            open[index].got_delta = true;
                            self.rpc.notify(
                                "item/reasoning/summaryTextDelta",
                                notify::SummaryDelta {
                                    thread_id: &self.thread_id,
                                    turn_id: &self.turn_id,
                                    item_id: &item_id,
                                    summary_index,
                                    delta: &delta,
                                },
                            );
                        }
                        StreamEvent::ItemDone(item) => {
                            received += payload_len(&item);
                            self.close_item(&mut open, &item);
                            if let Some(call) = ToolCall::from_item(&item) {
                                calls.push(call);
                            }
                            if is_history_item(&item) || self.keeps_other_output(&item) {
                                outputs.push(item);
                            }
                        }
                        StreamEvent::RateLimits(snapshot) => rate_limits = Some(snapshot),
                        StreamEvent::Completed { usage, response_id } => {
                            crate::log::debug(&format!("turn {}: response {response_id} completed", self.turn_id));
                            self.close_all(&mut open);
                            if let Some(usage) = usage {
                                self.record_usage(usage);
                            }
                            if let Some(snapshot) = rate_limits.take() {
                                self.client.record_rate_limits(&snapshot);
                                self.rpc.notify(
                                    "account/rateLimits/updated",
                                    serde_json::json!({ "rateLimits": snapshot }),
                                );
                            }
                            return Round::Done { outputs, calls };
                        }
                        StreamEvent::Failed(error) => {
                            self.close_all(&mut open);
                            return Round::Failed(error);
                        }
                    }
                }
                recv(control) -> message => match message {
                    Ok(Control::Steer(input)) => self.pending_input.push(input),
                    Ok(Control::Interrupt) | Err(_) => {
                        stream.abort();
                        self.close_all(&mut open);
                        return Round::Interrupted;
                    }
                },
                default(wait) => {
                    stream.abort();
                    self.close_all(&mut open);
                    return Round::Failed(ClientError::idle_timeout(idle));
                }
            }
        }
    }

    fn open_item(&self, open: &mut Vec<OpenItem>, item: &Value) {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                self.find_or_open(open, id, false);
            }
            Some("reasoning") => {
                self.find_or_open(open, id, true);
            }
            Some(web_search::CALL_TYPE) if !open.iter().any(|o| o.item.id() == id) => {
                let item = web_search::item(item);
                self.item_started(&item);
                open.push(OpenItem {
                    item,
                    got_delta: false,
                });
            }
            _ => {}
        }
    }

    fn find_or_open(&self, open: &mut Vec<OpenItem>, id: &str, reasoning: bool) -> usize {
        if let Some(index) = open.iter().position(|o| o.item.id() == id) {
            return index;
        }
        let item = if reasoning {
            ThreadItem::Reasoning {
                id: id.to_string(),
                summary: Vec::new(),
                content: Vec::new(),
            }
        } else {
            ThreadItem::AgentMessage {
                id: id.to_string(),
                text: String::new(),
            }
        };
        self.item_started(&item);
        open.push(OpenItem {
            item,
            got_delta: false,
        });
        open.len() - 1
    }

    fn close_item(&mut self, open: &mut Vec<OpenItem>, item: &Value) {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        let kind = item.get("type").and_then(Value::as_str);
        let reasoning = match kind {
            Some("message") => false,
            Some("reasoning") => true,
            Some(web_search::CALL_TYPE) => {
                match open.iter().position(|o| o.item.id() == id) {
                    Some(index) => drop(open.remove(index)),
                    None => self.item_started(&web_search::item(item)),
                }
                self.item_completed(web_search::item(item));
                return;
            }
            _ => return,
        };
        let index = self.find_or_open(open, id, reasoning);
        let mut entry = open.remove(index);
        if !entry.got_delta {
            match &mut entry.item {
                ThreadItem::AgentMessage { text, .. } => {
                    *text = message_text(item);
                    // Keep "concatenated deltas equal the final text" even when the model sent
                    // the text only with the finished item.
                    if !text.is_empty() {
                        self.item_delta("item/agentMessage/delta", id, text);
                    }
                }
                ThreadItem::Reasoning { summary, .. } => *summary = summary_texts(item),
                _ => {}
            }
        }
        self.item_completed(entry.item);
    }

    fn close_all(&mut self, open: &mut Vec<OpenItem>) {
        for entry in open.drain(..) {
            self.item_completed(entry.item);
        }
    }
}

/// Output items worth sending back: messages, reasoning, tool calls and hosted web searches
/// (other kinds are dropped).
fn is_history_item(item: &Value) -> bool {
    matches!(
        item.get("type").and_then(Value::as_str),
        Some(
            "message" | "reasoning" | "function_call" | "custom_tool_call" | web_search::CALL_TYPE
        )
    )
}

impl TurnRunner {
    /// Whether an output item of a kind we do not handle is sent back anyway: never silently
    /// dropped, it is logged, and kept (as received) when it has the id the backend needs to
    /// recognise it.
    fn keeps_other_output(&self, item: &Value) -> bool {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("?");
        let has_id = item
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty());
        crate::log::debug(&format!(
            "turn {}: output item of unhandled kind {kind}: {}",
            self.turn_id,
            if has_id {
                "sent back as received"
            } else {
                "not sent back (no id)"
            }
        ));
        has_id
    }
}

/// Roughly how many bytes an output item holds (its texts, call payloads, encrypted reasoning).
fn payload_len(item: &Value) -> usize {
    let field = |name: &str| item.get(name).and_then(Value::as_str).map_or(0, str::len);
    message_text(item).len() + field("arguments") + field("input") + field("encrypted_content")
}

fn message_text(item: &Value) -> String {
    item.get("content")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<String>()
        })
        .unwrap_or_default()
}

fn summary_texts(item: &Value) -> Vec<String> {
    item.get("summary")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
