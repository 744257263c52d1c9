//! Paging through a thread's history (context.md §5): `thread/turns/list` (newest first by
//! default, 25 a page, items as a summary by default) and `thread/items/list` (oldest first by
//! default, 25 a page, optionally one turn's), over a loaded thread's turns or a stored thread's
//! (read from its rollout). Cursors are opaque JSON strings naming an anchor — a turn, or an item
//! of a turn — and whether the page starts with it; a page costs what it returns plus finding
//! its anchor, wherever it lies. Editing the history is `history.rs`'s.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::history::check_id;
use crate::protocol::{ThreadItem, Turn};
use crate::rollout;
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;
use crate::thread::lock;

/// Page size when the request names none.
const DEFAULT_PAGE: usize = 25;
/// Largest page (a larger `limit` gets this many and a `nextCursor`).
const MAX_PAGE: usize = 100;

/// `SortDirection`.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Direction {
    Asc,
    Desc,
}

/// `TurnItemsView`: how much of each turn's items a turns page carries.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
enum ItemsView {
    NotLoaded,
    #[default]
    Summary,
    Full,
}

impl ItemsView {
    fn name(self) -> &'static str {
        match self {
            ItemsView::NotLoaded => "notLoaded",
            ItemsView::Summary => "summary",
            ItemsView::Full => "full",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TurnsListParams {
    thread_id: String,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    sort_direction: Option<Direction>,
    #[serde(default)]
    items_view: Option<ItemsView>,
}

/// `ThreadItemsListCursor`: our opaque string, or an item anchor within the requested turn.
#[derive(Deserialize)]
#[serde(untagged)]
enum ItemsCursor {
    Opaque(String),
    Anchor(ItemAnchor),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemAnchor {
    #[serde(rename = "type")]
    kind: String,
    item_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ItemsListParams {
    thread_id: String,
    #[serde(default)]
    cursor: Option<ItemsCursor>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    sort_direction: Option<Direction>,
    #[serde(default)]
    turn_id: Option<String>,
}

/// A page cursor: an anchor (a turn, or an item of it) and whether the page starts with it.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct Cursor {
    thread_id: String,
    turn_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    item_id: Option<String>,
    include_anchor: bool,
}

impl Cursor {
    /// A cursor whose page starts with the anchor (`backwardsCursor` and friends).
    pub(super) fn anchor(thread_id: &str, turn_id: &str, item_id: Option<&str>) -> Self {
        Self {
            thread_id: thread_id.to_string(),
            turn_id: turn_id.to_string(),
            item_id: item_id.map(str::to_string),
            include_anchor: true,
        }
    }

    /// A cursor whose page starts right after the anchor (`nextCursor`).
    fn after(thread_id: &str, turn_id: &str, item_id: Option<&str>) -> Self {
        Self {
            include_anchor: false,
            ..Self::anchor(thread_id, turn_id, item_id)
        }
    }

    /// The opaque string clients pass back.
    pub(super) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a cursor given for thread `thread_id`.
    fn decode(raw: &str, thread_id: &str) -> Result<Self, RpcError> {
        serde_json::from_str::<Cursor>(raw)
            .ok()
            .filter(|c| c.thread_id == thread_id)
            .ok_or_else(|| invalid_cursor(raw))
    }
}

fn invalid_cursor(raw: &str) -> RpcError {
    RpcError::invalid_request(format!("invalid cursor: {raw}"))
}

fn page_size(limit: Option<u32>) -> usize {
    limit.map_or(DEFAULT_PAGE, |l| (l as usize).clamp(1, MAX_PAGE))
}

/// Positions of a page over `len` elements: `take` of them from the anchor (`(index, include
/// it)`) or from the start of `direction`, in `direction` order; and whether more lie beyond.
fn positions(
    len: usize,
    anchor: Option<(usize, bool)>,
    direction: Direction,
    take: usize,
) -> (Vec<usize>, bool) {
    match direction {
        Direction::Asc => {
            let from = anchor.map_or(0, |(i, incl)| if incl { i } else { i + 1 });
            let to = from.saturating_add(take).min(len);
            ((from.min(len)..to).collect(), to < len)
        }
        Direction::Desc => {
            let top = anchor
                .map_or(len, |(i, incl)| if incl { i + 1 } else { i })
                .min(len);
            let bottom = top.saturating_sub(take);
            ((bottom..top).rev().collect(), bottom > 0)
        }
    }
}

/// Item positions `(turn, item)` of a page over `turns[lo..=hi]`, as [`positions`] for turns.
fn item_positions(
    turns: &[Turn],
    (lo, hi): (usize, usize),
    anchor: Option<(usize, usize, bool)>,
    direction: Direction,
    take: usize,
) -> (Vec<(usize, usize)>, bool) {
    let mut found: Vec<(usize, usize)> = match direction {
        Direction::Asc => {
            let from = anchor.map_or(lo, |(t, _, _)| t);
            (from..=hi)
                .flat_map(|t| {
                    let first = match anchor {
                        Some((at, i, incl)) if at == t => i + usize::from(!incl),
                        _ => 0,
                    };
                    (first..turns[t].items.len()).map(move |i| (t, i))
                })
                .take(take + 1)
                .collect()
        }
        Direction::Desc => {
            let from = anchor.map_or(hi, |(t, _, _)| t);
            (lo..=from)
                .rev()
                .flat_map(|t| {
                    let end = match anchor {
                        Some((at, i, incl)) if at == t => i + usize::from(incl),
                        _ => turns[t].items.len(),
                    };
                    (0..end.min(turns[t].items.len()))
                        .rev()
                        .map(move |i| (t, i))
                })
                .take(take + 1)
                .collect()
        }
    };
    let more = found.len() > take;
    found.truncate(take);
    (found, more)
}

/// A turn as a page shows it: every item, a summary (the user's messages and the final agent
/// message), or none; with its `itemsView`.
fn turn_view(turn: &Turn, view: ItemsView) -> Value {
    let items: Vec<&ThreadItem> = match view {
        ItemsView::Full => turn.items.iter().collect(),
        ItemsView::NotLoaded => Vec::new(),
        ItemsView::Summary => {
            let last_answer = turn
                .items
                .iter()
                .rposition(|i| matches!(i, ThreadItem::AgentMessage { .. }));
            turn.items
                .iter()
                .enumerate()
                .filter(|(n, i)| {
                    matches!(i, ThreadItem::UserMessage { .. }) || Some(*n) == last_answer
                })
                .map(|(_, i)| i)
                .collect()
        }
    };
    json!({
        "id": turn.id,
        "items": items,
        "itemsView": view.name(),
        "status": turn.status,
        "error": turn.error,
    })
}

impl Server {
    /// Runs `f` over the turns of a loaded thread (under its lock) or of a stored one.
    fn with_turns<R>(&self, thread_id: &str, f: impl FnOnce(&[Turn]) -> R) -> Result<R, RpcError> {
        check_id(thread_id)?;
        if let Some(shared) = self.threads.get(thread_id) {
            return Ok(f(&lock(shared).turns));
        }
        let (path, _) = rollout::find(&self.config.codex_home, thread_id)
            .ok_or_else(|| RpcError::invalid_request(format!("thread not found: {thread_id}")))?;
        let loaded = self.load_rollout(&path)?;
        Ok(f(&loaded.turns))
    }

    /// `thread/turns/list`.
    pub(super) fn thread_turns_list(
        &mut self,
        id: &RequestId,
        params: TurnsListParams,
    ) -> Result<(), RpcError> {
        let thread_id = params.thread_id.clone();
        let direction = params.sort_direction.unwrap_or(Direction::Desc);
        let view = params.items_view.unwrap_or_default();
        let take = page_size(params.limit);
        let cursor = params
            .cursor
            .as_deref()
            .map(|raw| Cursor::decode(raw, &thread_id).map(|c| (raw.to_string(), c)))
            .transpose()?;
        let page = self.with_turns(&thread_id, |turns| {
            let anchor = match &cursor {
                Some((raw, c)) => Some((
                    turns
                        .iter()
                        .rposition(|t| t.id == c.turn_id)
                        .ok_or_else(|| invalid_cursor(raw))?,
                    c.include_anchor,
                )),
                None => None,
            };
            let (picked, more) = positions(turns.len(), anchor, direction, take);
            let data: Vec<Value> = picked.iter().map(|&n| turn_view(&turns[n], view)).collect();
            let next = more
                .then(|| picked.last())
                .flatten()
                .map(|&n| Cursor::after(&thread_id, &turns[n].id, None).encode());
            let back = picked
                .first()
                .map(|&n| Cursor::anchor(&thread_id, &turns[n].id, None).encode());
            Ok::<_, RpcError>(json!({"data": data, "nextCursor": next, "backwardsCursor": back}))
        })??;
        self.rpc.respond(id, page);
        Ok(())
    }

    /// `thread/items/list`.
    pub(super) fn thread_items_list(
        &mut self,
        id: &RequestId,
        params: ItemsListParams,
    ) -> Result<(), RpcError> {
        let thread_id = params.thread_id.clone();
        let direction = params.sort_direction.unwrap_or(Direction::Asc);
        let take = page_size(params.limit);
        // (raw text for errors, turn id or `None` for the requested turn, item id, include it)
        let anchor = match params.cursor {
            None => None,
            Some(ItemsCursor::Opaque(raw)) => {
                let c = Cursor::decode(&raw, &thread_id)?;
                let item = c.item_id.clone().ok_or_else(|| invalid_cursor(&raw))?;
                Some((raw, Some(c.turn_id), item, c.include_anchor))
            }
            Some(ItemsCursor::Anchor(a)) => {
                if a.kind != "item" {
                    return Err(RpcError::invalid_params(format!(
                        "unknown cursor anchor type `{}`",
                        a.kind
                    )));
                }
                if params.turn_id.as_deref().is_none_or(str::is_empty) {
                    return Err(RpcError::invalid_params(
                        "turnId is required when cursor is an item anchor",
                    ));
                }
                Some((a.item_id.clone(), None, a.item_id, false))
            }
        };
        let only_turn = params.turn_id.filter(|t| !t.is_empty());
        let page = self.with_turns(&thread_id, |turns| {
            let range = match &only_turn {
                None if turns.is_empty() => None,
                None => Some((0, turns.len() - 1)),
                Some(wanted) => turns.iter().rposition(|t| &t.id == wanted).map(|t| (t, t)),
            };
            let Some(range) = range else {
                return Ok(json!({"data": [], "nextCursor": null, "backwardsCursor": null}));
            };
            let anchor = match &anchor {
                None => None,
                Some((raw, turn, item, incl)) => {
                    let t = match turn {
                        Some(turn) => turns.iter().rposition(|t| &t.id == turn),
                        None => Some(range.0),
                    }
                    .filter(|t| (range.0..=range.1).contains(t))
                    .ok_or_else(|| invalid_cursor(raw))?;
                    let i = turns[t]
                        .items
                        .iter()
                        .position(|it| it.id() == item)
                        .ok_or_else(|| {
                            RpcError::invalid_request(format!(
                                "item {item} not found in turn {}",
                                turns[t].id
                            ))
                        })?;
                    Some((t, i, *incl))
                }
            };
            let (picked, more) = item_positions(turns, range, anchor, direction, take);
            let entry = |&(t, i): &(usize, usize)| {
                json!({"turnId": turns[t].id, "item": turns[t].items[i]})
            };
            let cursor_at = |&(t, i): &(usize, usize), include: bool| {
                let item = Some(turns[t].items[i].id());
                if include {
                    Cursor::anchor(&thread_id, &turns[t].id, item)
                } else {
                    Cursor::after(&thread_id, &turns[t].id, item)
                }
                .encode()
            };
            let data: Vec<Value> = picked.iter().map(entry).collect();
            let next = more
                .then(|| picked.last())
                .flatten()
                .map(|p| cursor_at(p, false));
            let back = picked.first().map(|p| cursor_at(p, true));
            Ok::<_, RpcError>(json!({"data": data, "nextCursor": next, "backwardsCursor": back}))
        })??;
        self.rpc.respond(id, page);
        // `deferOutput` is accepted, not honoured: said once per thread.
        if let Some(shared) = self.threads.get(&thread_id).cloned() {
            self.report_unhonoured(&shared);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
mod tests {
    use super::*;
    use crate::protocol::TurnStatus;

    #[test]
    fn turn_pages_walk_both_ways_from_anchors() {
        use Direction::{Asc, Desc};
        let cases: &[(
            usize,
            Option<(usize, bool)>,
            Direction,
            usize,
            &[usize],
            bool,
        )] = &[
            (6, None, Desc, 2, &[5, 4], true),
            (6, Some((4, false)), Desc, 2, &[3, 2], true),
            (6, Some((2, false)), Desc, 2, &[1, 0], false),
            (6, Some((5, true)), Asc, 2, &[5], false),
            (6, None, Asc, 4, &[0, 1, 2, 3], true),
            (6, Some((3, false)), Asc, 4, &[4, 5], false),
            (6, Some((3, true)), Desc, 10, &[3, 2, 1, 0], false),
            (0, None, Desc, 25, &[], false),
            (0, None, Asc, 25, &[], false),
        ];
        for &(len, anchor, direction, take, expected, more) in cases {
            assert_eq!(
                positions(len, anchor, direction, take),
                (expected.to_vec(), more),
                "{len} {anchor:?} {direction:?} {take}"
            );
        }
    }

    fn turn(id: &str, items: usize) -> Turn {
        Turn {
            id: id.into(),
            items: (0..items)
                .map(|n| ThreadItem::ContextCompaction {
                    id: format!("{id}-{n}"),
                })
                .collect(),
            status: TurnStatus::Completed,
            error: None,
        }
    }

    #[test]
    fn item_pages_cross_turns_and_skip_empty_ones() {
        use Direction::{Asc, Desc};
        let turns = vec![turn("a", 2), turn("b", 0), turn("c", 3)];
        let all = (0, 2);
        let cases: &[(
            (usize, usize),
            Option<(usize, usize, bool)>,
            Direction,
            usize,
            &[(usize, usize)],
            bool,
        )] = &[
            (all, None, Asc, 3, &[(0, 0), (0, 1), (2, 0)], true),
            (all, Some((2, 0, false)), Asc, 3, &[(2, 1), (2, 2)], false),
            (all, None, Desc, 2, &[(2, 2), (2, 1)], true),
            (all, Some((2, 0, false)), Desc, 5, &[(0, 1), (0, 0)], false),
            (all, Some((2, 0, true)), Desc, 1, &[(2, 0)], true),
            ((2, 2), Some((2, 1, false)), Asc, 5, &[(2, 2)], false),
            ((0, 0), None, Desc, 5, &[(0, 1), (0, 0)], false),
            ((1, 1), None, Asc, 5, &[], false),
        ];
        for &(range, anchor, direction, take, expected, more) in cases {
            assert_eq!(
                item_positions(&turns, range, anchor, direction, take),
                (expected.to_vec(), more),
                "{range:?} {anchor:?} {direction:?}"
            );
        }
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_thread() {
        let c = Cursor::after("t1", "turn", Some("item"));
        assert_eq!(Cursor::decode(&c.encode(), "t1").unwrap(), c);
        assert!(Cursor::decode(&c.encode(), "t2").is_err());
        assert!(Cursor::decode("garbage", "t1").is_err());
        assert_eq!(page_size(None), DEFAULT_PAGE);
        assert_eq!(page_size(Some(0)), 1);
        assert_eq!(page_size(Some(100_000)), MAX_PAGE);
    }

    #[test]
    fn summaries_keep_the_user_and_the_final_answer() {
        let user = |id: &str| ThreadItem::UserMessage {
            id: id.into(),
            content: vec![],
        };
        let answer = |id: &str| ThreadItem::AgentMessage {
            id: id.into(),
            text: id.into(),
        };
        let t = Turn {
            id: "t".into(),
            items: vec![
                user("u"),
                answer("a1"),
                ThreadItem::ContextCompaction { id: "c".into() },
                answer("a2"),
            ],
            status: TurnStatus::Completed,
            error: None,
        };
        let ids = |v: &Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(&turn_view(&t, ItemsView::Summary)), ["u", "a2"]);
        assert_eq!(ids(&turn_view(&t, ItemsView::Full)).len(), 4);
        let none = turn_view(&t, ItemsView::NotLoaded);
        assert!(ids(&none).is_empty());
        assert_eq!(none["itemsView"], "notLoaded");
    }
}
