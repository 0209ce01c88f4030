//! A plugin's `[config]` checked against the JSON Schema the plugin ships (`config_schema =
//! "config.schema.json"` in its manifest), wherever the manifest is read (`plugin check`,
//! `plugin list`, loading): a wrong value is a manifest error naming its key and the schema
//! file, before any call can trip over it.

use std::path::Path;

/// Checks `config` against the schema in `file` (relative to the plugin folder `dir`). The
/// error names the key (`config.hours_utc[0]`, or `config_schema` when the schema itself is
/// at fault) and says what is wrong.
pub(super) fn check(
    dir: &Path,
    file: &str,
    config: &serde_json::Value,
) -> Result<(), (String, String)> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        (
            "config_schema".to_owned(),
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        (
            "config_schema".to_owned(),
            format!("{file} is not JSON: {e}"),
        )
    })?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| {
        (
            "config_schema".to_owned(),
            format!("{file} is not a valid JSON Schema: {e}"),
        )
    })?;
    // The first error, by the key it concerns (the others often follow from it).
    match validator.iter_errors(config).next() {
        None => Ok(()),
        Some(e) => Err((
            key_of(e.instance_path().as_str()),
            format!("{e} (config_schema {file})"),
        )),
    }
}

/// A JSON pointer into `[config]` (`/integrations/ERP Connector/hours_utc/0`) as a TOML key
/// (`config.integrations."ERP Connector".hours_utc[0]`).
fn key_of(pointer: &str) -> String {
    let mut key = String::from("config");
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            key.push_str(&format!("[{segment}]"));
        } else if !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            key.push('.');
            key.push_str(&segment);
        } else {
            key.push_str(&format!(".{segment:?}"));
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema_dir(schema: serde_json::Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.schema.json"), schema.to_string()).unwrap();
        dir
    }

    #[test]
    fn a_wrong_value_is_named_by_its_key() {
        let dir = schema_dir(json!({
            "type": "object",
            "properties": {
                "start_hour": {"type": "integer", "minimum": 0, "maximum": 23},
                "integrations": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "properties": {"addresses": {"type": "array", "items": {"type": "string"}}}
                }}
            },
            "additionalProperties": false
        }));
        let check = |config| check(dir.path(), "config.schema.json", &config);
        assert_eq!(check(json!({"start_hour": 9})), Ok(()));
        let (key, message) = check(json!({"start_hour": "nine"})).unwrap_err();
        assert_eq!(key, "config.start_hour");
        assert!(
            message.contains("\"nine\" is not of type \"integer\"")
                && message.ends_with("(config_schema config.schema.json)"),
            "{message}"
        );
        let (key, _) = check(json!({"integrations": {"ERP Connector": {"addresses": ["ok", 7]}}}))
            .unwrap_err();
        assert_eq!(key, "config.integrations.\"ERP Connector\".addresses[1]");
        let (key, message) = check(json!({"start_houre": 9})).unwrap_err();
        assert_eq!(key, "config");
        assert!(message.contains("start_houre"), "{message}");
    }

    #[test]
    fn a_broken_schema_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (key, message) = check(dir.path(), "none.json", &json!({})).unwrap_err();
        assert_eq!(key, "config_schema");
        assert!(message.contains("cannot read"), "{message}");
        std::fs::write(dir.path().join("bad.json"), r#"{"type": 7}"#).unwrap();
        let (key, message) = check(dir.path(), "bad.json", &json!({})).unwrap_err();
        assert_eq!(key, "config_schema");
        assert!(message.contains("not a valid JSON Schema"), "{message}");
    }
}
