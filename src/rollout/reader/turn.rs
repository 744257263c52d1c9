//! A turn being rebuilt from a rollout: its status, error and items (those with ids of their own
//! and those rebuilt from older per-kind events), merged when it is finished.

use crate::protocol::{ThreadItem, Turn, TurnError, TurnStatus};

pub(super) struct PendingTurn {
    pub(super) id: String,
    pub(super) status: TurnStatus,
    pub(super) error: Option<TurnError>,
    /// Opened by a start event (not implied by a user message of an older file).
    pub(super) explicit: bool,
    /// Items with ids of their own (`item_completed`, our `thread_item`).
    pub(super) items: Vec<ThreadItem>,
    /// Items rebuilt from older per-kind events.
    pub(super) legacy: Vec<ThreadItem>,
    /// Whether `items` holds the user's message (then it is complete and `legacy` is a copy).
    pub(super) has_user_item: bool,
}

impl PendingTurn {
    pub(super) fn new(id: String, explicit: bool) -> Self {
        Self {
            id,
            status: if explicit {
                TurnStatus::InProgress
            } else {
                TurnStatus::Completed
            },
            error: None,
            explicit,
            items: Vec::new(),
            legacy: Vec::new(),
            has_user_item: false,
        }
    }

    pub(super) fn finish(self) -> Turn {
        let items = if self.has_user_item || self.legacy.is_empty() {
            self.items
        } else {
            let mut merged = self.legacy;
            for item in self.items {
                upsert(&mut merged, item);
            }
            merged
        };
        Turn {
            id: self.id,
            items,
            status: match self.status {
                TurnStatus::InProgress => TurnStatus::Interrupted,
                other => other,
            },
            error: self.error,
        }
    }
}

pub(super) fn upsert(items: &mut Vec<ThreadItem>, item: ThreadItem) {
    match items.iter_mut().find(|i| i.id() == item.id()) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}
