//! What the model is told beyond the user's words (context.md §1–2): the project instructions
//! (AGENTS.md files) and the environment context, sent together as one user message before a
//! turn's input whenever their text differs from what the conversation already holds — at the
//! first turn of a thread, after a resume when something changed, when the cwd or a policy
//! changes, and when the date rolls over. Compaction (`compact/`) rebuilds the history around
//! them. The permissions developer message is `prompt.rs`'s;
//! the turn loop is `turn/`'s.

pub mod compact;
pub mod environment;
pub mod project_docs;
pub mod tz;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::thread::Settings;
use environment::EnvironmentContext;
use project_docs::{DocsConfig, ProjectDocs};

/// Per-thread memory of the context the model has seen, and the instructions read for the
/// current cwd in this session (read once per thread start or resume, again when the cwd
/// changes).
#[derive(Debug, Clone, Default)]
pub struct ContextState {
    /// The environment context text last sent.
    told_env: Option<String>,
    /// The instructions text last sent (without the "supersedes" note).
    told_docs: Option<String>,
    /// The instructions read for a cwd, with their warnings not yet reported.
    docs: Option<(PathBuf, ProjectDocs)>,
}

/// What a turn must add before its input.
#[derive(Debug, Default)]
pub struct ContextUpdate {
    /// The user message carrying what changed, if anything did.
    pub message: Option<Value>,
    /// Warnings for the client (cut or skipped instruction files).
    pub warnings: Vec<String>,
}

impl ContextState {
    /// What a conversation already told the model, found in its history (resume, fork): the
    /// last environment context and the last instructions message.
    pub fn from_history<'a>(items: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut state = Self::default();
        for item in items {
            if item.get("role").and_then(Value::as_str) != Some("user") {
                continue;
            }
            let parts = item.get("content").and_then(Value::as_array);
            for text in parts
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("text")?.as_str())
            {
                if text.starts_with(environment::OPEN_TAG) {
                    state.told_env = Some(text.to_string());
                } else if text.starts_with(project_docs::HEADER) {
                    state.told_docs = Some(project_docs::comparable(text));
                }
            }
        }
        state
    }

    /// Works out what must be told before a turn running with `settings`, and records it as
    /// told.
    pub fn update(&mut self, settings: &Settings) -> ContextUpdate {
        let mut update = ContextUpdate::default();
        let cwd = settings.cwd.as_path();
        if self.docs.as_ref().is_none_or(|(dir, _)| dir != cwd) {
            let config = docs_config(&settings.config);
            let mut docs = ProjectDocs::load(&settings.config.codex_home, cwd, &config);
            update.warnings = std::mem::take(&mut docs.warnings);
            self.docs = Some((cwd.to_path_buf(), docs));
        }
        let mut parts = Vec::new();
        if let Some(docs_part) = self.docs_part(cwd) {
            parts.push(docs_part);
        }
        let zone = tz::LocalZone::detect();
        let now = crate::time::unix_seconds() as i64;
        let env =
            EnvironmentContext::new(cwd, settings.approval, &settings.sandbox, &zone, now).render();
        if self.told_env.as_deref() != Some(env.as_str()) {
            self.told_env = Some(env.clone());
            parts.push(env);
        }
        if !parts.is_empty() {
            let content: Vec<Value> = parts
                .into_iter()
                .map(|text| json!({"type": "input_text", "text": text}))
                .collect();
            update.message = Some(json!({"type": "message", "role": "user", "content": content}));
        }
        update
    }

    /// Forgets what the model was told and returns the whole context message again (a
    /// compaction replaced the history that held it); `None` when there is nothing to tell.
    pub fn retell(&mut self, settings: &Settings) -> Option<Value> {
        self.told_env = None;
        self.told_docs = None;
        self.update(settings).message
    }

    /// The instructions text to send now, if it differs from what was told.
    fn docs_part(&mut self, cwd: &Path) -> Option<String> {
        let docs = self.docs.as_ref().map(|(_, d)| d)?;
        let current = docs.render(cwd, false);
        match (current, &self.told_docs) {
            (Some(text), told) if told.as_deref() != Some(text.as_str()) => {
                let replaces = told.is_some();
                self.told_docs = Some(text);
                docs.render(cwd, replaces)
            }
            (None, Some(_)) => {
                let none = project_docs::render_none(cwd);
                (self.told_docs.as_deref() != Some(none.as_str())).then(|| {
                    self.told_docs = Some(none.clone());
                    none
                })
            }
            _ => None,
        }
    }
}

/// The project-docs settings of a configuration.
pub fn docs_config(config: &crate::config::Config) -> DocsConfig {
    DocsConfig {
        max_bytes: config.project_doc_max_bytes,
        fallback_filenames: config.project_doc_fallback_filenames.clone(),
    }
}
