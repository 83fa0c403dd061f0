//! PATCH semantics shared by every editable resource: a JSON merge patch (RFC 7396)
//! onto the stored document, then the same validation as the create, so a PATCH can
//! never store what a POST would refuse.

use crate::error::AppResult;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A PATCH applied: `patch` merged onto the stored document `before`, parsed as the
/// create body `I` (so the same field errors), and the dotted paths that changed.
pub fn merged<I: DeserializeOwned>(before: &Value, patch: &Value) -> AppResult<(I, Vec<String>)> {
    let mut after = before.clone();
    merge_patch(&mut after, patch);
    let input: I = crate::error::parse_json(after.to_string().as_bytes())?;
    Ok((input, changed_paths(before, &after)))
}

/// RFC 7396: objects merge recursively, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target_fields) = target {
        for (key, value) in patch_fields {
            if value.is_null() {
                target_fields.remove(key);
            } else {
                merge_patch(
                    target_fields.entry(key.clone()).or_insert(Value::Null),
                    value,
                );
            }
        }
    }
}

/// Dotted paths of the leaves that differ between two documents.
pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
    fn walk(prefix: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<String>) {
        match (before, after) {
            (Some(Value::Object(b)), Some(Value::Object(a))) => {
                let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, b.get(key), a.get(key), out);
                }
            }
            (b, a) if b != a => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", Some(before), Some(after), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": "x"});
        merge_patch(&mut doc, &json!({"b": {"c": 5}, "e": null}));
        assert_eq!(doc, json!({"a": 1, "b": {"c": 5, "d": 3}}));
    }

    #[test]
    fn changed_paths_names_leaves() {
        let before = json!({"name": "a", "cohort": {"min_size": 4, "max_size": 12}});
        let after = json!({"name": "a", "cohort": {"min_size": 5, "max_size": 12}});
        assert_eq!(changed_paths(&before, &after), vec!["cohort.min_size"]);
    }
}
