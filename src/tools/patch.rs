//! The `apply_patch` tool: a `fileChange` item complete before anything is written, the
//! approval rules for patches (writable roots, session roots, judged on real paths by
//! `patch_scope.rs`), applying through `--codex-run-as-apply-patch` in the sandbox (an approved
//! patch too, with the approved roots added), and the turn's cumulative diff.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::patch_scope;
use super::{
    CallResult, DEFAULT_COMMAND_TIMEOUT, Decision, ToolCall, Tools, ask, declined, execute,
};
use crate::apply_patch::{self, ChangeKind, FileChange};
use crate::config::ApprovalPolicy;
use crate::protocol::{
    FileUpdateChange, ItemStatus, PatchChangeKind, ThreadItem, notify::DiffUpdated,
};
use crate::thread::lock;
use crate::turn::TurnRunner;

pub(super) fn run_patch(
    turn: &mut TurnRunner,
    call: &ToolCall,
    patch_text: &str,
    cwd: &Path,
) -> CallResult {
    let plain = |text: String| CallResult {
        output: call.output_item(&text),
        cancelled: false,
    };
    let patch = match apply_patch::parse_patch(patch_text) {
        Ok(patch) => patch,
        Err(e) => return plain(format!("apply_patch verification failed: {e}")),
    };
    let changes = match apply_patch::compute_changes(&patch, cwd) {
        Ok(changes) => changes,
        Err(e) => return plain(format!("apply_patch verification failed: {e}")),
    };
    let settings = turn.tools().settings.clone();
    let mut item = ThreadItem::FileChange {
        id: call.call_id.clone(),
        changes: changes.iter().map(to_protocol_change).collect(),
        status: ItemStatus::InProgress,
    };
    let touched: Vec<PathBuf> = changes
        .iter()
        .flat_map(|c| {
            let mut paths = vec![c.path.clone()];
            if let ChangeKind::Update {
                move_path: Some(dest),
            } = &c.kind
            {
                paths.push(dest.clone());
            }
            paths
        })
        .collect();
    // Judged on real paths: a symlink in the workspace that leads outside is outside.
    let real: Vec<PathBuf> = touched.iter().map(|p| patch_scope::resolved(p)).collect();
    let writable = real
        .iter()
        .all(|p| patch_scope::is_writable(&settings.sandbox, &settings.cwd, p));
    let root = common_parent(&real);
    let session_approved = {
        let state = lock(&turn.thread);
        real.iter().all(|p| state.is_patch_root_approved(p))
    };
    let must_ask = !session_approved
        && match settings.approval {
            ApprovalPolicy::Untrusted => true,
            ApprovalPolicy::OnRequest => !writable,
            ApprovalPolicy::Never => false,
        };
    let mut started = false;
    let mut policy = settings.sandbox.clone();
    if must_ask {
        let params = json!({
            "reason": if writable { None } else { Some("the patch writes outside the sandbox's writable roots") },
            "grantRoot": root.as_ref().map(|r| r.display().to_string()),
        });
        let decision = ask(
            turn,
            &item,
            &mut started,
            "item/fileChange/requestApproval",
            params,
        );
        if decision == Decision::AcceptForSession
            && let Some(root) = &root
        {
            lock(&turn.thread).approvals.patch_roots.push(root.clone());
        }
        if let Some(result) = declined(turn, call, item.clone(), decision, &[]) {
            return result;
        }
        // The user approved these writes: the sandbox lets them through, and nothing else.
        policy = patch_scope::approved_policy(&policy, &patch_scope::approval_roots(&real));
    } else if session_approved {
        policy = patch_scope::approved_policy(&policy, &patch_scope::approval_roots(&real));
    } else if !writable && settings.approval == ApprovalPolicy::Never {
        turn.item_started(&item);
        if let ThreadItem::FileChange { status, .. } = &mut item {
            *status = ItemStatus::Failed;
        }
        turn.item_completed(item);
        return plain("patch rejected: it writes outside the sandbox's writable roots and the approval policy is never".to_string());
    }
    if !started {
        turn.item_started(&item);
    }
    turn.tools().snapshot(&touched);
    let exe = turn.tools().env.exe.display().to_string();
    let argv = vec![
        exe,
        apply_patch::RUN_AS_APPLY_PATCH_ARG.to_string(),
        patch.text.clone(),
    ];
    let outcome = execute(turn, None, &argv, cwd, &policy, DEFAULT_COMMAND_TIMEOUT);
    let (text, ok) = match &outcome {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (text, out.exit_code == Some(0))
        }
        Err(e) => (format!("failed to apply the patch: {e:#}"), false),
    };
    if let ThreadItem::FileChange { status, .. } = &mut item {
        *status = if ok {
            ItemStatus::Completed
        } else {
            ItemStatus::Failed
        };
    }
    turn.item_completed(item);
    let diff = turn.tools().cumulative_diff();
    turn.rpc.notify(
        "turn/diff/updated",
        DiffUpdated {
            thread_id: &turn.thread_id,
            turn_id: &turn.turn_id,
            diff: &diff,
        },
    );
    CallResult {
        output: call.output_item(&super::output::truncate_for_model(
            &text,
            &turn.tools().settings.model_info,
        )),
        cancelled: false,
    }
}

fn to_protocol_change(change: &FileChange) -> FileUpdateChange {
    FileUpdateChange {
        path: change.path.display().to_string(),
        kind: match &change.kind {
            ChangeKind::Add => PatchChangeKind::Add,
            ChangeKind::Delete => PatchChangeKind::Delete,
            ChangeKind::Update { move_path } => PatchChangeKind::Update {
                move_path: move_path.as_ref().map(|p| p.display().to_string()),
            },
        },
        diff: change.unified_diff.clone(),
    }
}

/// The deepest directory containing every path.
fn common_parent(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut iter = paths.iter().filter_map(|p| p.parent());
    let mut common = iter.next()?.to_path_buf();
    for parent in iter {
        while !parent.starts_with(&common) {
            common = common.parent()?.to_path_buf();
        }
    }
    Some(common)
}

impl Tools {
    /// Remembers the contents of `paths` before this turn first changes them.
    fn snapshot(&mut self, paths: &[PathBuf]) {
        for path in paths {
            self.baseline
                .entry(path.clone())
                .or_insert_with(|| std::fs::read_to_string(path).ok());
        }
    }

    /// The turn's cumulative diff: every touched file from its baseline to now.
    fn cumulative_diff(&self) -> String {
        let mut out = String::new();
        for (path, before) in &self.baseline {
            let after = std::fs::read_to_string(path).ok();
            let shown = path
                .strip_prefix(&self.settings.cwd)
                .unwrap_or(path)
                .display()
                .to_string();
            out.push_str(&apply_patch::git_file_diff(
                &shown,
                &shown,
                before.as_deref(),
                after.as_deref(),
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn common_parents() {
        let paths = [
            PathBuf::from("/w/a/b.txt"),
            PathBuf::from("/w/a/c/d.txt"),
            PathBuf::from("/w/e.txt"),
        ];
        assert_eq!(common_parent(&paths), Some(PathBuf::from("/w")));
    }
}
