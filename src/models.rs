//! `model/list`: a built-in catalog of current Codex models plus the configured model, with
//! exactly one default (the configured model) and `limit`/`cursor` paging.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;

/// Default page size.
const DEFAULT_PAGE: usize = 50;

/// `(slug, display name, description)` of the built-in catalog.
const CATALOG: &[(&str, &str, &str)] = &[
    (
        "gpt-5.1-codex",
        "GPT-5.1 Codex",
        "Optimized for agentic coding.",
    ),
    (
        "gpt-5.1-codex-mini",
        "GPT-5.1 Codex Mini",
        "Faster and cheaper, for simpler coding tasks.",
    ),
    (
        "gpt-5.1-codex-max",
        "GPT-5.1 Codex Max",
        "For long, demanding coding tasks.",
    ),
    (
        "gpt-5.1",
        "GPT-5.1",
        "General-purpose model with strong coding skills.",
    ),
    ("gpt-5-codex", "GPT-5 Codex", "The previous Codex model."),
    ("gpt-5", "GPT-5", "The previous general-purpose model."),
];

/// `ModelListParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    #[allow(dead_code)] // accepted; no model here is hidden
    include_hidden: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)] // accepted; the catalog does not depend on the provider
    model_provider: Option<String>,
}

/// `ModelListResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    data: Vec<Value>,
    next_cursor: Option<String>,
}

fn model(slug: &str, display: &str, description: &str, is_default: bool) -> Value {
    let reasoning = crate::prompt::is_reasoning_model(slug);
    let efforts: Vec<Value> = if reasoning {
        [
            ("low", "Fast, light reasoning"),
            ("medium", "Balanced (default)"),
            ("high", "Deeper reasoning for hard tasks"),
        ]
        .iter()
        .map(|(e, d)| json!({"reasoningEffort": e, "description": d}))
        .collect()
    } else {
        Vec::new()
    };
    json!({
        "id": slug,
        "model": slug,
        "displayName": display,
        "description": description,
        "hidden": false,
        "isDefault": is_default,
        "defaultReasoningEffort": "medium",
        "supportedReasoningEfforts": efforts,
        "inputModalities": ["text", "image"],
    })
}

/// Answers `model/list`.
pub fn list(config: &Config, params: ListParams) -> ListResponse {
    let mut all: Vec<Value> = CATALOG
        .iter()
        .map(|(slug, display, description)| {
            model(slug, display, description, *slug == config.model)
        })
        .collect();
    if !CATALOG.iter().any(|(slug, _, _)| *slug == config.model) {
        all.insert(
            0,
            model(
                &config.model,
                &config.model,
                "The model set in the configuration.",
                true,
            ),
        );
    }
    let start = params
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0)
        .min(all.len());
    let limit = params.limit.map_or(DEFAULT_PAGE, |l| (l as usize).max(1));
    let end = (start + limit).min(all.len());
    ListResponse {
        data: all[start..end].to_vec(),
        next_cursor: (end < all.len()).then(|| end.to_string()),
    }
}
