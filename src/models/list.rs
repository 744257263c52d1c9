//! `model/list`: the catalog's models in priority order (hidden ones only with
//! `includeHidden`), the top-priority listed one marked `isDefault`, with `limit`/`cursor`
//! paging. A configured model the catalog does not know is not listed (as the reference).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ModelInfo, Snapshot, extra_field};

/// Default page size.
const DEFAULT_PAGE: usize = 50;
/// Effort reported for a model that lists none (the schema requires one).
const NO_REASONING_EFFORT: &str = "medium";

/// `ModelListParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    include_hidden: Option<bool>,
    /// Accepted; the catalog is the login's, whatever the provider.
    #[serde(default)]
    #[allow(dead_code)]
    model_provider: Option<String>,
}

/// `ModelListResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    data: Vec<Value>,
    next_cursor: Option<String>,
}

/// `upgrade` / `upgradeInfo` from the entry's `upgrade` (a slug or an object with `model`).
fn upgrade(model: &ModelInfo) -> (Value, Value) {
    match extra_field(model, "upgrade") {
        Some(Value::String(slug)) => (json!(slug), json!({ "model": slug })),
        Some(Value::Object(info)) => match info.get("model").and_then(Value::as_str) {
            Some(slug) => (
                json!(slug),
                json!({
                    "model": slug,
                    "migrationMarkdown": info.get("migration_markdown").and_then(Value::as_str),
                    "modelLink": info.get("model_link").and_then(Value::as_str),
                    "upgradeCopy": info.get("upgrade_copy").and_then(Value::as_str),
                    "retirementAt": info.get("retirement_at").and_then(Value::as_i64),
                }),
            ),
            None => (Value::Null, Value::Null),
        },
        _ => (Value::Null, Value::Null),
    }
}

/// One `Model` of the protocol.
fn entry(model: &ModelInfo, is_default: bool) -> Value {
    let efforts: Vec<Value> = model
        .supported_reasoning_levels
        .iter()
        .map(|l| json!({"reasoningEffort": l.effort, "description": l.description}))
        .collect();
    let (upgrade, upgrade_info) = upgrade(model);
    let service_tiers: Vec<Value> = extra_field(model, "service_tiers")
        .and_then(Value::as_array)
        .map(|tiers| {
            tiers
                .iter()
                .filter(|t| t.get("id").and_then(Value::as_str).is_some())
                .map(|t| {
                    json!({
                        "id": t["id"],
                        "name": t.get("name").and_then(Value::as_str).unwrap_or_default(),
                        "description": t.get("description").and_then(Value::as_str).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let nux = extra_field(model, "availability_nux")
        .and_then(|n| n.get("message"))
        .and_then(Value::as_str)
        .map(|message| json!({ "message": message }));
    json!({
        "id": model.slug,
        "model": model.slug,
        "displayName": model.display_name.as_deref().unwrap_or(&model.slug),
        "description": model.description.as_deref().unwrap_or_default(),
        "hidden": !model.is_listed(),
        "isDefault": is_default,
        "defaultReasoningEffort": model.default_reasoning_level.as_deref().unwrap_or(NO_REASONING_EFFORT),
        "supportedReasoningEfforts": efforts,
        "inputModalities": model.input_modalities.clone().unwrap_or_else(|| vec!["text".into(), "image".into()]),
        "upgrade": upgrade,
        "upgradeInfo": upgrade_info,
        "availabilityNux": nux,
        "supportsPersonality": false,
        "additionalSpeedTiers": extra_field(model, "additional_speed_tiers").cloned().unwrap_or_else(|| json!([])),
        "serviceTiers": service_tiers,
        "defaultServiceTier": extra_field(model, "default_service_tier").and_then(Value::as_str),
        "modelSpecialty": extra_field(model, "model_specialty").and_then(Value::as_str),
    })
}

/// Answers `model/list` from `snapshot`.
pub fn list(snapshot: &Snapshot, params: ListParams) -> ListResponse {
    let default = snapshot.default_model().map(|m| m.slug.clone());
    let include_hidden = params.include_hidden.unwrap_or(false);
    let mut models: Vec<&ModelInfo> = snapshot
        .models
        .iter()
        .filter(|m| include_hidden || m.is_listed())
        .collect();
    models.sort_by_key(|m| m.priority());
    let all: Vec<Value> = models
        .iter()
        .map(|m| entry(m, default.as_deref() == Some(m.slug.as_str())))
        .collect();
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn snapshot(entries: Value) -> Snapshot {
        let models: Vec<ModelInfo> = serde_json::from_value(entries).unwrap();
        Snapshot {
            models: Arc::new(models),
            origin: super::super::Origin::Fetched,
        }
    }

    #[test]
    fn order_default_hidden_and_paging() {
        let snap = snapshot(json!([
            {"slug": "b", "priority": 2, "visibility": "list"},
            {"slug": "hidden", "priority": 0, "visibility": "hide"},
            {"slug": "a", "priority": 1, "visibility": "list",
             "upgrade": {"model": "b", "migration_markdown": "move"},
             "service_tiers": [{"id": "priority", "name": "Fast", "description": "x"}],
             "supported_reasoning_levels": [{"effort": "low", "description": "l"}],
             "default_reasoning_level": "low"},
        ]));
        let all = list(&snap, ListParams::default());
        let ids: Vec<&str> = all.data.iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(all.data[0]["isDefault"], true);
        assert_eq!(all.data[1]["isDefault"], false);
        assert_eq!(all.data[0]["upgrade"], "b");
        assert_eq!(all.data[0]["upgradeInfo"]["migrationMarkdown"], "move");
        assert_eq!(all.data[0]["serviceTiers"][0]["id"], "priority");
        assert_eq!(all.data[0]["defaultReasoningEffort"], "low");
        assert_eq!(all.data[1]["defaultReasoningEffort"], "medium");
        let with_hidden = list(
            &snap,
            ListParams {
                include_hidden: Some(true),
                ..Default::default()
            },
        );
        assert_eq!(with_hidden.data[0]["id"], "hidden");
        assert_eq!(with_hidden.data[0]["hidden"], true);
        let page = list(
            &snap,
            ListParams {
                limit: Some(1),
                ..Default::default()
            },
        );
        assert_eq!(page.data.len(), 1);
        assert_eq!(page.next_cursor.as_deref(), Some("1"));
        let rest = list(
            &snap,
            ListParams {
                cursor: Some("1".into()),
                ..Default::default()
            },
        );
        assert_eq!(rest.data[0]["id"], "b");
        assert!(rest.next_cursor.is_none());
    }
}
