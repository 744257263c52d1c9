//! Reviews (context.md §3, `review/start`): what a review target asks the model, the separate
//! conversation a review runs in (our review instructions, the environment, the request — not
//! the thread's history), and how its answer becomes the review text the thread and the
//! client see. The request handler is `threads/review.rs`; the turn that runs it is `turn/`'s.

use std::cell::RefCell;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::thread::Settings;

/// Instructions of the reviewing model (written for this project).
const REVIEW_INSTRUCTIONS: &str = include_str!("prompts/review_instructions.md");
/// Longest time `git merge-base` may take before the prompt falls back to a three-dot diff.
const GIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What `review/start` asks to review (the schema's `ReviewTarget`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ReviewTarget {
    /// Staged, unstaged and untracked changes of the work tree.
    UncommittedChanges,
    /// The current branch against `branch`.
    BaseBranch {
        /// The base branch.
        branch: String,
    },
    /// One commit.
    Commit {
        /// The commit.
        sha: String,
        /// Its subject, for display.
        #[serde(default)]
        title: Option<String>,
    },
    /// Free-form instructions.
    Custom {
        /// What to review and how.
        instructions: String,
    },
}

impl ReviewTarget {
    /// Whether reviewing this target needs a git work tree.
    pub fn needs_git(&self) -> bool {
        !matches!(self, Self::Custom { .. })
    }

    /// Checks the target's fields: non-empty, and branch and commit names that cannot smuggle
    /// anything into the git commands the model is told to run.
    pub fn validate(&self) -> Result<(), String> {
        let is_ref = |name: &str| {
            !name.is_empty()
                && name.len() <= 200
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._/~^@-+".contains(c))
        };
        match self {
            Self::UncommittedChanges => Ok(()),
            Self::BaseBranch { branch } if is_ref(branch) => Ok(()),
            Self::BaseBranch { branch } => Err(format!("invalid base branch name `{branch}`")),
            Self::Commit { sha, .. } if is_ref(sha) => Ok(()),
            Self::Commit { sha, .. } => Err(format!("invalid commit `{sha}`")),
            Self::Custom { instructions } if !instructions.trim().is_empty() => Ok(()),
            Self::Custom { .. } => Err("custom review instructions must not be empty".to_string()),
        }
    }

    /// A short description for display (`enteredReviewMode.review`).
    pub fn display(&self) -> String {
        match self {
            Self::UncommittedChanges => "current changes".to_string(),
            Self::BaseBranch { branch } => format!("changes against '{branch}'"),
            Self::Commit { sha, title } => {
                let short: String = sha.chars().take(7).collect();
                match title {
                    Some(title) if !title.is_empty() => format!("commit {short}: {title}"),
                    _ => format!("commit {short}"),
                }
            }
            Self::Custom { instructions } => instructions.trim().to_string(),
        }
    }

    /// The request the reviewer reads (runs `git merge-base` for a base branch, in `cwd`).
    pub fn prompt(&self, cwd: &Path) -> String {
        match self {
            Self::UncommittedChanges => "Review the uncommitted changes of this repository: staged, unstaged and untracked files. Start from `git status` and `git diff HEAD`, and read new files whole.".to_string(),
            Self::BaseBranch { branch } => match merge_base(cwd, branch) {
                Some(base) => format!(
                    "Review the changes of the current branch against the base branch '{branch}'. Their merge base is {base}: run `git diff {base}` to see the changes."
                ),
                None => format!(
                    "Review the changes of the current branch against the base branch '{branch}': run `git diff {branch}...HEAD` to see them."
                ),
            },
            Self::Commit { sha, title } => {
                let named = title
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .map(|t| format!(" (\"{t}\")"))
                    .unwrap_or_default();
                format!("Review the changes made by commit {sha}{named}: run `git show {sha}` to see them.")
            }
            Self::Custom { instructions } => instructions.trim().to_string(),
        }
    }
}

/// `git merge-base HEAD <branch>` in `cwd`, when git answers in time.
fn merge_base(cwd: &Path, branch: &str) -> Option<String> {
    let mut child = std::process::Command::new("git")
        .arg("-C")
        .arg(cwd)
        .args(["merge-base", "HEAD", branch])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + GIT_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    let sha = out.trim();
    (!sha.is_empty() && sha.chars().all(|c| c.is_ascii_hexdigit())).then(|| sha.to_string())
}

/// A running review: what is reviewed and its own conversation, kept apart from the thread's
/// history (only the result goes there).
pub struct ReviewRun {
    /// What is reviewed, for display.
    pub display: String,
    /// The settings of the review's requests: the thread's, with our review instructions.
    pub settings: Settings,
    /// The review's conversation.
    pub history: RefCell<Vec<Value>>,
}

impl ReviewRun {
    /// A review of `display` running with the thread's `settings`.
    pub fn new(display: String, settings: &Settings) -> Self {
        let mut settings = settings.clone();
        settings.base_instructions = Some(REVIEW_INSTRUCTIONS.to_string());
        settings.developer_instructions = None;
        Self {
            display,
            settings,
            history: RefCell::new(Vec::new()),
        }
    }

    /// Keeps in a review request only the tools that look without touching: the shell (sandboxed
    /// like any command) and `view_image`, in either request shape (the classic `tools`, or the
    /// Responses Lite `additional_tools` input item and its namespaces).
    pub fn restrict_tools(body: &mut Value) {
        fn keep(tools: &mut Value) {
            let Some(list) = tools.as_array_mut() else {
                return;
            };
            list.retain_mut(|tool| {
                if tool.get("type").and_then(Value::as_str) == Some("namespace") {
                    keep(&mut tool["tools"]);
                    return tool["tools"].as_array().is_some_and(|t| !t.is_empty());
                }
                matches!(
                    tool.get("name").and_then(Value::as_str),
                    Some("shell" | "shell_command" | "exec_command" | "write_stdin" | "view_image")
                )
            });
        }
        if let Some(tools) = body.get_mut("tools") {
            keep(tools);
        }
        for item in body
            .get_mut("input")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if item.get("type").and_then(Value::as_str) == Some("additional_tools") {
                keep(&mut item["tools"]);
            }
        }
    }

    /// The messages the thread's own history gets once the review is done, so later turns know
    /// what the review found.
    pub fn history_items(&self, review: &str) -> Vec<Value> {
        vec![
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!(
                "<review_result>\nThe user had the {} reviewed. The review's findings follow; the user may ask you to address some of them.\n\n{review}\n</review_result>",
                self.display
            )}]}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": review}]}),
        ]
    }
}

#[derive(Deserialize)]
struct ReviewOutput {
    #[serde(default)]
    findings: Vec<Finding>,
    #[serde(default)]
    overall_explanation: String,
}

#[derive(Deserialize)]
struct Finding {
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    code_location: Option<CodeLocation>,
}

#[derive(Deserialize)]
struct CodeLocation {
    absolute_file_path: String,
    #[serde(default)]
    line_range: Option<LineRange>,
}

#[derive(Deserialize)]
struct LineRange {
    start: u64,
    end: u64,
}

/// The review text for the reviewer's final answer: its JSON rendered as an explanation and a
/// list of findings, or the answer as it is when it is not that JSON.
pub fn review_text(answer: &str) -> String {
    let trimmed = answer.trim();
    let json = match (trimmed.find('{'), trimmed.rfind('}')) {
        (Some(start), Some(end)) if start < end => &trimmed[start..=end],
        _ => return trimmed.to_string(),
    };
    let Ok(output) = serde_json::from_str::<ReviewOutput>(json) else {
        return trimmed.to_string();
    };
    let mut text = output.overall_explanation.trim().to_string();
    if !output.findings.is_empty() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(if output.findings.len() == 1 {
            "Finding:\n"
        } else {
            "Findings:\n"
        });
        for finding in &output.findings {
            text.push_str(&format!("\n- {}", finding.title.trim()));
            if let Some(location) = &finding.code_location {
                text.push_str(&format!(" — {}", location.absolute_file_path));
                if let Some(range) = &location.line_range {
                    text.push_str(&format!(":{}-{}", range.start, range.end));
                }
            }
            for line in finding.body.trim().lines() {
                text.push_str(&format!("\n  {line}"));
            }
        }
    }
    if text.is_empty() {
        "The review found no problems.".to_string()
    } else {
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_validate_and_display() {
        let cases = [
            (
                json!({"type": "uncommittedChanges"}),
                "current changes",
                true,
            ),
            (
                json!({"type": "baseBranch", "branch": "main"}),
                "changes against 'main'",
                true,
            ),
            (
                json!({"type": "commit", "sha": "fc59b5255876227266c4538fbe34733cab526e0b", "title": "second change"}),
                "commit fc59b52: second change",
                true,
            ),
            (
                json!({"type": "commit", "sha": "HEAD~1"}),
                "commit HEAD~1",
                true,
            ),
            (
                json!({"type": "custom", "instructions": " Check f.txt "}),
                "Check f.txt",
                true,
            ),
        ];
        for (value, display, valid) in cases {
            let target: ReviewTarget = serde_json::from_value(value.clone()).unwrap();
            assert_eq!(target.display(), display, "{value}");
            assert_eq!(target.validate().is_ok(), valid, "{value}");
            assert_eq!(
                target.needs_git(),
                !matches!(target, ReviewTarget::Custom { .. })
            );
        }
        for bad in [
            json!({"type": "baseBranch", "branch": ""}),
            json!({"type": "baseBranch", "branch": "main; rm -rf /"}),
            json!({"type": "baseBranch", "branch": "--output=/etc/x"}),
            json!({"type": "commit", "sha": "`touch x`"}),
            json!({"type": "custom", "instructions": "  "}),
        ] {
            let target: ReviewTarget = serde_json::from_value(bad.clone()).unwrap();
            assert!(target.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<ReviewTarget>(json!({"type": "everything"})).is_err());
    }

    #[test]
    fn prompts_name_what_to_inspect() {
        let cwd = Path::new("/nonexistent");
        let commit = ReviewTarget::Commit {
            sha: "abc1234".into(),
            title: Some("fix it".into()),
        };
        assert!(commit.prompt(cwd).contains("git show abc1234"));
        assert!(commit.prompt(cwd).contains("\"fix it\""));
        let branch = ReviewTarget::BaseBranch {
            branch: "main".into(),
        };
        // No repository here: the three-dot form.
        assert!(branch.prompt(cwd).contains("git diff main...HEAD"));
        assert!(
            ReviewTarget::UncommittedChanges
                .prompt(cwd)
                .contains("git status")
        );
    }

    #[test]
    fn reviews_keep_only_looking_tools_in_both_shapes() {
        let tool = |name: &str| json!({"type": "function", "name": name});
        let mut classic = json!({"tools": [tool("shell_command"), tool("apply_patch"), tool("view_image"),
            {"type": "web_search"}, tool("lookup")]});
        ReviewRun::restrict_tools(&mut classic);
        assert_eq!(
            classic["tools"],
            json!([tool("shell_command"), tool("view_image")])
        );
        let mut lite = json!({"input": [{"type": "additional_tools", "role": "developer", "tools": [
            {"type": "namespace", "name": "functions", "description": "", "tools": [tool("exec_command"), tool("apply_patch")]},
            {"type": "namespace", "name": "crm", "description": "", "tools": [tool("get")]}]}]});
        ReviewRun::restrict_tools(&mut lite);
        assert_eq!(
            lite["input"][0]["tools"],
            json!([{"type": "namespace", "name": "functions", "description": "", "tools": [tool("exec_command")]}])
        );
    }

    #[test]
    fn review_text_from_the_answer() {
        let answer = json!({"findings": [
            {"title": "[P1] Bad thing", "body": "explain\nmore", "confidence_score": 0.8, "priority": 1,
             "code_location": {"absolute_file_path": "/r/f.txt", "line_range": {"start": 1, "end": 2}}},
            {"title": "[P2] Other", "body": "why"}],
            "overall_correctness": "patch is incorrect", "overall_explanation": "because",
            "overall_confidence_score": 0.7});
        assert_eq!(
            review_text(&answer.to_string()),
            "because\n\nFindings:\n\n- [P1] Bad thing — /r/f.txt:1-2\n  explain\n  more\n- [P2] Other\n  why"
        );
        let fenced = format!(
            "```json\n{}\n```",
            json!({"findings": [], "overall_explanation": "fine"})
        );
        assert_eq!(review_text(&fenced), "fine");
        assert_eq!(
            review_text("{\"findings\": []}"),
            "The review found no problems."
        );
        assert_eq!(review_text("  plain words  "), "plain words");
        assert_eq!(review_text("{not json}"), "{not json}");
    }
}
