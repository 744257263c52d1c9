//! Overrides on top of config.toml: `-c key=value` arguments (TOML values, or plain strings),
//! `thread/start {config}` entries (JSON converted to TOML), and setting a dotted key path in a
//! table.

use anyhow::{Context, Result, anyhow, bail};

/// One `key=value` override: the key's path (`a.b` → `["a","b"]`) and its TOML value.
pub type Override = (Vec<String>, toml::Value);

/// Parses raw `-c` arguments (`key=value`). The value is TOML when it parses as TOML and a
/// plain string otherwise, so `-c model=gpt-5` and `-c 'x={a=1}'` both work.
pub fn parse_overrides(raw: &[String]) -> Result<Vec<Override>> {
    raw.iter().map(|arg| parse_override(arg)).collect()
}

/// Parses one `key=value` argument.
pub(super) fn parse_override(arg: &str) -> Result<Override> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid override `{arg}`: expected key=value"))?;
    let path = parse_key_path(key.trim())
        .with_context(|| format!("invalid override `{arg}`: bad key `{}`", key.trim()))?;
    let value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut table) => table
            .remove("v")
            .ok_or_else(|| anyhow!("invalid override `{arg}`"))?,
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    Ok((path, value))
}

/// Splits a TOML key (dotted, possibly quoted) into its segments by letting the TOML parser read
/// `key = 0` and walking the one chain of tables it produces.
fn parse_key_path(key: &str) -> Result<Vec<String>> {
    if key.is_empty() {
        bail!("empty key");
    }
    let mut table: toml::Table = toml::from_str(&format!("{key} = 0"))?;
    let mut path = Vec::new();
    loop {
        let Some((name, value)) = table.into_iter().next() else {
            bail!("empty key");
        };
        path.push(name);
        match value {
            toml::Value::Table(inner) => table = inner,
            _ => return Ok(path),
        }
    }
}

/// Sets `value` at `path` inside `table`, creating (or replacing non-table) intermediate tables.
pub(super) fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    for name in parents {
        let slot = current
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !slot.is_table() {
            *slot = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = slot else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

/// Converts a JSON value (a `thread/start` `config` entry) to TOML. `null` has no TOML image and
/// yields `None`; so do nulls inside arrays and objects, which are dropped.
pub fn json_to_toml(value: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(items.iter().filter_map(json_to_toml).collect()),
        J::Object(map) => toml::Value::Table(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// Splits a dotted override key from a JSON map (`thread/start {config}`) into its path.
pub fn override_from_json(key: &str, value: &serde_json::Value) -> Result<Option<Override>> {
    let path = parse_key_path(key).with_context(|| format!("invalid config key `{key}`"))?;
    Ok(json_to_toml(value).map(|v| (path, v)))
}
